/**
 * What a backup leaves out, through the real CLI and proven with `obnam ls`
 * and `obnam restore`: "~" in the config file's exclude patterns, cache
 * directories (CACHEDIR.TAG, on by default, with config and flag overrides,
 * and a note when a directory became one since the parent), --exclude-file,
 * --exclude-if-present, and --files-from.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { obnam, obnamOk, RunOptions } from './helpers/cli.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const PASS = 'selection passphrase';
const SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';

let tmp: TempDir;
let home: string;
let repo: string;
let run: RunOptions;

before(async () => {
  tmp = await tempDir('obnam-selection-');
  home = path.join(tmp.path, 'home');
  repo = path.join(tmp.path, 'repo');
  fs.mkdirSync(home);
  // No config file unless a test names one: HOME and XDG_CONFIG_HOME point into the temp dir.
  run = { env: { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: home, XDG_CONFIG_HOME: path.join(tmp.path, 'xdg') } };
  await obnamOk(['init'], run);
});

after(async () => {
  await tmp.remove();
});

/** Creates files (content given) and directories (content null) below `root`. */
function makeFiles(root: string, files: Record<string, string | null>): string {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    if (content === null) fs.mkdirSync(p, { recursive: true });
    else {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, content);
    }
  }
  return root;
}

/** Backs up with `args` and returns the snapshot's paths below `root`, relative to it. */
async function backupAndList(root: string, args: string[], opts: RunOptions = run): Promise<{ paths: string[]; json: BackupJson }> {
  const r = await obnamOk(['backup', '--json', ...args], opts);
  const json = JSON.parse(r.stdout) as BackupJson;
  return { paths: await listBelow(json.snapshot, root), json };
}

interface BackupJson {
  snapshot: string;
  parent: string | null;
  warnings: unknown[];
  newlyExcluded: { path: string; tag: string }[];
}

async function listBelow(snapshot: string, root: string): Promise<string[]> {
  const ls = JSON.parse((await obnamOk(['ls', '--json', snapshot], run)).stdout) as { entries: { path: string }[] };
  return ls.entries
    .map((e) => e.path)
    .filter((p) => p.startsWith(root + '/'))
    .map((p) => p.slice(root.length + 1))
    .sort();
}

describe('"~" in the config file', () => {
  it('is expanded in exclude patterns, as in paths', async () => {
    const data = makeFiles(path.join(home, 'tilde'), { 'keep.txt': 'k', '.cache/big.bin': 'c', 'sub/.cache/x': 'x' });
    const cfg = path.join(tmp.path, 'tilde.yaml');
    fs.writeFileSync(cfg, `paths: [~/tilde]\nexclude: ["~/tilde/.cache"]\n`);
    const { paths } = await backupAndList(data, ['--config', cfg]);
    // Only the directory the ~/ pattern names is excluded, not every .cache.
    assert.deepEqual(paths, ['keep.txt', 'sub', 'sub/.cache', 'sub/.cache/x']);
  });
});

describe('cache directories (CACHEDIR.TAG)', () => {
  let data: string;

  before(() => {
    data = makeFiles(path.join(tmp.path, 'caches'), {
      'keep.txt': 'keep',
      'cache/CACHEDIR.TAG': `${SIGNATURE}\n# This file is a cache directory tag.\n`,
      'cache/blob.bin': 'cached',
      'cache/deep/more.bin': 'more',
      'bad-signature/CACHEDIR.TAG': 'Signature: 00000000000000000000000000000000\n',
      'bad-signature/kept.txt': 'kept',
      'short-tag/CACHEDIR.TAG': SIGNATURE.slice(0, 20),
      'short-tag/kept.txt': 'kept',
      'tag-is-a-dir/CACHEDIR.TAG/inner': 'inner',
      'tag-is-a-dir/kept.txt': 'kept',
      'symlinked-tag/kept.txt': 'kept',
    });
    fs.symlinkSync(path.join(data, 'cache', 'CACHEDIR.TAG'), path.join(data, 'symlinked-tag', 'CACHEDIR.TAG'));
  });

  const kept = [
    'bad-signature',
    'bad-signature/CACHEDIR.TAG',
    'bad-signature/kept.txt',
    'keep.txt',
    'short-tag',
    'short-tag/CACHEDIR.TAG',
    'short-tag/kept.txt',
    'symlinked-tag',
    'symlinked-tag/CACHEDIR.TAG',
    'symlinked-tag/kept.txt',
    'tag-is-a-dir',
    'tag-is-a-dir/CACHEDIR.TAG',
    'tag-is-a-dir/CACHEDIR.TAG/inner',
    'tag-is-a-dir/kept.txt',
  ];

  it('are skipped by default, keeping the directory and its tag file; invalid tags are ordinary files', async () => {
    const { paths, json } = await backupAndList(data, [data]);
    assert.deepEqual(paths, [...kept, 'cache', 'cache/CACHEDIR.TAG'].sort());
    assert.deepEqual(json.newlyExcluded, []);
    // The tag file comes back byte for byte.
    const out = path.join(tmp.path, 'restored-cache');
    await obnamOk(['restore', json.snapshot, out], run);
    assert.equal(fs.readFileSync(path.join(out, data, 'cache', 'CACHEDIR.TAG'), 'utf8'), fs.readFileSync(path.join(data, 'cache', 'CACHEDIR.TAG'), 'utf8'));
    assert.deepEqual(fs.readdirSync(path.join(out, data, 'cache')), ['CACHEDIR.TAG']);
  });

  it('--no-exclude-caches and config exclude_caches: false keep them; --exclude-caches overrides the config', async () => {
    const all = [...kept, 'cache', 'cache/CACHEDIR.TAG', 'cache/blob.bin', 'cache/deep', 'cache/deep/more.bin'].sort();
    assert.deepEqual((await backupAndList(data, ['--no-exclude-caches', data])).paths, all);
    const cfg = path.join(tmp.path, 'no-caches.yaml');
    fs.writeFileSync(cfg, 'exclude_caches: false\n');
    assert.deepEqual((await backupAndList(data, ['--config', cfg, data])).paths, all);
    assert.deepEqual((await backupAndList(data, ['--config', cfg, '--exclude-caches', data])).paths, [...kept, 'cache', 'cache/CACHEDIR.TAG'].sort());
    const bad = path.join(tmp.path, 'bad-caches.yaml');
    fs.writeFileSync(bad, 'exclude_caches: "no"\n');
    const r = await obnam(['backup', '--config', bad, data], run);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /exclude_caches must be true or false/);
  });

  it('an explicitly given path inside a cache directory is backed up; a cache directory given is still a cache', async () => {
    const { paths } = await backupAndList(data, [path.join(data, 'cache', 'deep')]);
    assert.deepEqual(paths, ['cache', 'cache/deep', 'cache/deep/more.bin']);
    // A given path that is itself a cache directory is reduced to its tag, as restic does.
    assert.deepEqual((await backupAndList(data, [path.join(data, 'cache')])).paths, ['cache', 'cache/CACHEDIR.TAG']);
  });

  it('a directory that became a cache since the parent snapshot is named, once', async () => {
    const d = makeFiles(path.join(tmp.path, 'becomes-cache'), { 'work/a.txt': 'a', 'work/b.txt': 'b', 'other.txt': 'o' });
    const first = await backupAndList(d, [d]);
    assert.deepEqual(first.paths, ['other.txt', 'work', 'work/a.txt', 'work/b.txt']);
    fs.writeFileSync(path.join(d, 'work', 'CACHEDIR.TAG'), SIGNATURE + '\n');
    const r = await obnamOk(['backup', d], run);
    assert.match(r.stderr, new RegExp(`^obnam: ${path.join(d, 'work')} is now a cache directory \\(CACHEDIR\\.TAG\\): its contents, in the parent snapshot, are no longer backed up\\n$`));
    assert.deepEqual(await listBelow('latest', d), ['other.txt', 'work', 'work/CACHEDIR.TAG']);
    // --json says it in its own field (not a warning: the exit status stays 0).
    fs.rmSync(path.join(d, 'work', 'CACHEDIR.TAG'));
    await obnamOk(['backup', d], run);
    fs.writeFileSync(path.join(d, 'work', 'CACHEDIR.TAG'), SIGNATURE + '\n');
    const j = await backupAndList(d, [d]);
    assert.deepEqual(j.json.newlyExcluded, [{ path: path.join(d, 'work'), tag: 'CACHEDIR.TAG' }]);
    assert.deepEqual(j.json.warnings, []);
    // Already a cache in the parent: nothing to say.
    const again = await obnamOk(['backup', d], run);
    assert.equal(again.stderr, '');
  });
});

describe('--exclude-file', () => {
  it('reads patterns one a line, ignoring comments and blank lines, with ~ and $VARS expanded', async () => {
    const d = makeFiles(path.join(home, 'exfile'), {
      'a.tmp': 't',
      'b.txt': 'b',
      'logs/x.log': 'l',
      'keep/#not-a-comment': 'k',
      'secret/key': 's',
      'var/v.txt': 'v',
      'spaced/s.txt': 's',
    });
    const f = path.join(tmp.path, 'excludes.txt');
    fs.writeFileSync(f, `# temporary files\n*.tmp\n\n   \n  logs  \n~/exfile/secret\n$EXDIR/var\n\${EXDIR}/nothing\n`);
    const { paths } = await backupAndList(d, ['--exclude-file', f, d], { env: { ...run.env, EXDIR: d } });
    assert.deepEqual(paths, ['b.txt', 'keep', 'keep/#not-a-comment', 'spaced', 'spaced/s.txt']);
  });

  it('combines with --exclude and the config (exclude_files, relative to the config file)', async () => {
    const d = makeFiles(path.join(tmp.path, 'exfile2'), { 'a.one': '1', 'b.two': '2', 'c.three': '3', 'd.four': '4' });
    fs.mkdirSync(path.join(tmp.path, 'conf'));
    fs.writeFileSync(path.join(tmp.path, 'conf', 'ex1'), '*.one\n');
    fs.writeFileSync(path.join(tmp.path, 'ex2'), '*.two\n');
    const cfg = path.join(tmp.path, 'conf', 'exfiles.yaml');
    fs.writeFileSync(cfg, 'exclude_files: [ex1]\n');
    const { paths } = await backupAndList(d, ['--config', cfg, '--exclude-file', path.join(tmp.path, 'ex2'), '-e', '*.three', d]);
    assert.deepEqual(paths, ['d.four']);
  });

  it("patterns mean what they mean to restic: classes, escapes, a relative a/b at any depth, ** as whole components", async () => {
    const d = makeFiles(path.join(tmp.path, 'restic-patterns'), {
      'f.c': 'c',
      'f.h': 'h',
      'f.o': 'o',
      'lit*': 'l',
      litx: 'l',
      'a/b/c/z': 'z',
      'a/b/keep': 'k',
      'a/z': 'z',
      'xb/z': 'z',
      xz: 'x',
    });
    const f = path.join(tmp.path, 'restic-excludes.txt');
    fs.writeFileSync(f, ['*.[ch]', 'lit\\*', 'b/c', `${d}/**/z`].join('\n') + '\n');
    const { paths } = await backupAndList(d, ['--exclude-file', f, d]);
    // What restic 0.14 keeps of the same tree with the same --exclude-file.
    assert.deepEqual(paths, ['a', 'a/b', 'a/b/keep', 'f.o', 'litx', 'xb', 'xz']);
    fs.writeFileSync(f, '*.[ch\n');
    const r = await obnam(['backup', '--exclude-file', f, d], run);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^obnam: exclude pattern "\*\.\[ch": malformed/);
  });

  it('a missing exclude file is an error and no snapshot', async () => {
    const before = (await obnamOk(['list', '--json'], run)).stdout;
    const r = await obnam(['backup', '--exclude-file', path.join(tmp.path, 'missing.txt'), tmp.path], run);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^obnam: cannot read exclude file .*missing\.txt: ENOENT/);
    assert.equal((await obnamOk(['list', '--json'], run)).stdout, before);
  });
});

describe('--exclude-if-present', () => {
  it('keeps a tagged directory and the tag file, nothing else in it', async () => {
    const d = makeFiles(path.join(tmp.path, 'ifpresent'), {
      'plain/p.txt': 'p',
      'tagged/.nobackup': '',
      'tagged/data.bin': 'd',
      'tagged/sub/x': 'x',
      'headed/.marker': 'MARK: yes\n',
      'headed/h.txt': 'h',
      'wrong-header/.marker': 'something else\n',
      'wrong-header/w.txt': 'w',
      'both/.nobackup': '',
      'both/CACHEDIR.TAG': SIGNATURE,
      'both/b.txt': 'b',
    });
    const { paths } = await backupAndList(d, ['--exclude-if-present', '.nobackup', '--exclude-if-present', '.marker:MARK:', d]);
    assert.deepEqual(paths, [
      'both',
      'both/.nobackup',
      'both/CACHEDIR.TAG',
      'headed',
      'headed/.marker',
      'plain',
      'plain/p.txt',
      'tagged',
      'tagged/.nobackup',
      'wrong-header',
      'wrong-header/.marker',
      'wrong-header/w.txt',
    ]);
  });

  it('comes from the config too (exclude_if_present), and is named when new since the parent', async () => {
    const d = makeFiles(path.join(tmp.path, 'ifpresent-config'), { 'dir/f.txt': 'f' });
    const cfg = path.join(tmp.path, 'ifpresent.yaml');
    fs.writeFileSync(cfg, 'exclude_if_present: [.skip-me]\n');
    await obnamOk(['backup', '--config', cfg, d], run);
    fs.writeFileSync(path.join(d, 'dir', '.skip-me'), '');
    const r = await obnamOk(['backup', '--config', cfg, d], run);
    assert.match(r.stderr, /dir is now tagged with \.skip-me: its contents, in the parent snapshot, are no longer backed up/);
    assert.deepEqual(await listBelow('latest', d), ['dir', 'dir/.skip-me']);
  });

  it('a name with a slash is a usage error', async () => {
    const r = await obnam(['backup', '--exclude-if-present', 'a/b', tmp.path], run);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--exclude-if-present "a\/b": expected a file name/);
  });
});

describe('--files-from', () => {
  let d: string;

  before(() => {
    d = makeFiles(path.join(tmp.path, 'filesfrom'), { 'one/1.txt': '1', 'two/2.txt': '2', 'three/3.txt': '3', 'four/4.txt': '4' });
  });

  it('backs up the listed paths with those on the command line', async () => {
    const list = path.join(tmp.path, 'list.txt');
    fs.writeFileSync(list, `# what to back up\n${path.join(d, 'one')}\n\n  ${path.join(d, 'two')}  \n`);
    const r = await obnamOk(['backup', '--json', '--files-from', list, path.join(d, 'three')], run);
    const json = JSON.parse(r.stdout) as BackupJson;
    assert.deepEqual(await listBelow(json.snapshot, d), ['one', 'one/1.txt', 'three', 'three/3.txt', 'two', 'two/2.txt']);
    const snap = (JSON.parse((await obnamOk(['list', '--json'], run)).stdout) as { id: string; paths: string[] }[]).find((s) => s.id === json.snapshot)!;
    assert.deepEqual(snap.paths, ['one', 'three', 'two'].map((n) => path.join(d, n)));
  });

  it('reads stdin for "-"; relative paths are relative to the working directory', async () => {
    const r = await obnamOk(['backup', '--json', '--files-from', '-'], { ...run, input: 'four\n#three\n', cwd: d });
    assert.deepEqual(await listBelow(JSON.parse(r.stdout).snapshot, d), ['four', 'four/4.txt']);
  });

  it('lines are glob patterns, expanded as restic expands them; one that matches nothing is named and skipped', async () => {
    const g = makeFiles(path.join(tmp.path, 'globs'), {
      'a1/x': 'x',
      'a2/y': 'y',
      'b1/z': 'z',
      'c3/w': 'w',
      '.hidden': 'h',
      '[lit]': 'l',
      'star*': 's',
    });
    const list = path.join(tmp.path, 'globs.txt');
    const lines = [`${g}/a*`, `${g}/?1`, `${g}/*/z`, `${g}/.h*`, `${g}/\\[lit]`, `${g}/star\\*`, `${g}/[^ab][0-9]`, `${g}/none*`, `${g}/missing`, `${g}/a*/`];
    fs.writeFileSync(list, lines.join('\n') + '\n');
    const r = await obnamOk(['backup', '--json', '--files-from', list], run);
    const json = JSON.parse(r.stdout) as BackupJson;
    assert.deepEqual(await listBelow(json.snapshot, g), ['.hidden', '[lit]', 'a1', 'a1/x', 'a2', 'a2/y', 'b1', 'b1/z', 'c3', 'c3/w', 'star*']);
    // As restic 0.14 says it: a pattern that matches nothing (a trailing "/" included) is skipped, exit 0.
    assert.deepEqual(
      r.stderr.split('\n').filter(Boolean),
      [`${g}/none*`, `${g}/missing`, `${g}/a*/`].map((p) => `obnam: warning: ${p} (in ${list}) matches no file: skipped`),
    );
    assert.deepEqual(json.warnings, []);
    fs.writeFileSync(list, `${g}/[a\n`);
    const bad = await obnam(['backup', '--files-from', list], run);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^obnam: --files-from pattern ".*\/\[a": malformed/);
  });

  it('takes the place of the config paths; a list of nothing is an error', async () => {
    const cfg = path.join(tmp.path, 'filesfrom.yaml');
    fs.writeFileSync(cfg, `paths: [${path.join(d, 'one')}]\n`);
    const list = path.join(tmp.path, 'list2.txt');
    fs.writeFileSync(list, path.join(d, 'two') + '\n');
    const r = await obnamOk(['backup', '--json', '--config', cfg, '--files-from', list], run);
    assert.deepEqual(await listBelow(JSON.parse(r.stdout).snapshot, d), ['two', 'two/2.txt']);
    const empty = path.join(tmp.path, 'empty-list.txt');
    fs.writeFileSync(empty, '# nothing\n\n');
    const e = await obnam(['backup', '--config', cfg, '--files-from', empty], run);
    assert.equal(e.code, 1);
    assert.match(e.stderr, /^obnam: nothing to back up: .*empty-list\.txt lists no paths/);
    const m = await obnam(['backup', '--files-from', path.join(tmp.path, 'no-list.txt')], run);
    assert.equal(m.code, 1);
    assert.match(m.stderr, /^obnam: cannot read file list .*no-list\.txt/);
  });
});
