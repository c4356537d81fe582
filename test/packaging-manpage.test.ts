/**
 * The man pages the Debian package ships are made from the programs' own
 * --help (packaging/manpage.ts): every command of the real obnam and
 * obnam-server, subcommands included, with its options, rendered by groff
 * without a warning; yargs' wrapped columns and nested tags parse back; the
 * EXIT STATUS of obnam(1) names every exit status cli/exit.ts defines.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as exit from '../cli/exit.js';
import { OBNAM_EXTRA } from '../packaging/build-deb.js';
import { collectHelp, parseHelp, renderManPage } from '../packaging/manpage.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const runner = (prog: string) => (args: string[]) => execFileSync(process.execPath, [path.join(ROOT, 'bin', prog), ...args], { encoding: 'utf8' });
const OPTS = { version: '9.9.9', date: '2026-12-01', summary: 'test', extra: [{ title: 'EXIT STATUS', body: '.TP\n0\nsuccess' }] };

function groff(page: string, args: string[]): { out: string; err: string } {
  const r = spawnSync('groff', ['-man', ...args], { input: page, encoding: 'utf8' });
  return { out: r.stdout, err: r.stderr };
}

describe('man pages from --help', () => {
  it('parses wrapped descriptions, aliases and nested tags', () => {
    const h = parseHelp(
      [
        'prog backup [paths..]',
        '',
        'back up paths',
        '',
        'Positionals:',
        '  paths  files and directories to back up                  [array] [default: []]',
        '',
        'Options:',
        '  -r, --repo         repository: a directory or https://HOST:PORT',
        '                     (env OBNAM_REPO)                                 [string]',
        '      --config       config file                                      [string]',
        '                                                                    [required]',
      ].join('\n'),
    );
    assert.equal(h.usage, 'prog backup [paths..]');
    assert.deepEqual(h.description, ['back up paths']);
    assert.deepEqual(h.positionals, [{ name: 'paths', description: 'files and directories to back up', tags: ['array', 'default: []'] }]);
    assert.deepEqual(h.options, [
      { name: '-r, --repo', description: 'repository: a directory or https://HOST:PORT (env OBNAM_REPO)', tags: ['string'] },
      { name: '--config', description: 'config file', tags: ['string', 'required'] },
    ]);
  });

  it('obnam(1) EXIT STATUS lists every exit status of cli/exit.ts, each with its meaning', () => {
    const codes = Object.entries(exit).filter(([name, v]) => name.startsWith('EXIT_') && typeof v === 'number').map(([, v]) => v as number);
    assert.ok(codes.length >= 4, `${codes.length} exit statuses`);
    const body = OBNAM_EXTRA.find((s) => s.title === 'EXIT STATUS')!.body;
    const listed = [...body.matchAll(/^\.TP\n(\d+)\n(.+)$/gm)].map((m) => ({ code: Number(m[1]), meaning: m[2]! }));
    assert.deepEqual(listed.map((l) => l.code).sort((a, b) => a - b), [...new Set(codes)].sort((a, b) => a - b));
    for (const l of listed) assert.ok(l.meaning.trim().length > 5, `exit ${l.code} has no meaning`);
    const page = `.TH OBNAM 1\n.SH EXIT STATUS\n${body}\n`;
    assert.equal(groff(page, ['-ww', '-z']).err, '', 'groff warnings');
    const text = groff(page, ['-Tascii', '-P-cbou']).out.replace(/\s+/g, ' ');
    for (const e of exit.EXIT_STATUSES) assert.ok(text.includes(e.meaning), `exit ${e.code}: ${e.meaning}`);
  });

  for (const [prog, section] of [
    ['obnam', 1],
    ['obnam-server', 8],
  ] as const) {
    it(`${prog}(${section}) has every command and option of the real --help, and groff accepts it`, () => {
      const help = collectHelp(runner(prog));
      const page = renderManPage(help, { ...OPTS, program: prog, section });
      assert.equal(groff(page, ['-ww', '-z']).err, '', 'groff warnings');
      const text = groff(page, ['-Tascii', '-P-cbou']).out;
      const top = runner(prog)(['--help']);
      const commands = [...top.matchAll(new RegExp(`^  ${prog} (\\S+)`, 'gm'))].map((m) => m[1]!);
      assert.ok(commands.length >= 4);
      for (const c of commands) assert.match(text, new RegExp(`^ {3}${prog} ${c}\\b`, 'm'), `command ${c}`);
      for (const c of help.commands) {
        for (const o of c.help.options) assert.ok(text.includes(o.name.split(', ').pop()!), `${c.words.join(' ')}: option ${o.name}`);
      }
      assert.match(text, /EXIT STATUS/);
      assert.match(text, /9\.9\.9/);
      if (prog === 'obnam') {
        const key = help.commands.filter((c) => c.words[0] === 'key').map((c) => c.words.join(' '));
        assert.deepEqual(key, ['key', 'key add', 'key list', 'key remove']);
      }
    });
  }
});
