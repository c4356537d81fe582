/**
 * The README's "Sharing with family" walk-through, run as written: every
 * `NAME$ COMMAND` line of its code block is run by bash as that person (their
 * own HOME, identity and passphrase; `obnam` on PATH is the test entry, with
 * the suite's cheap KDF cost), in order, on one local repository. $BOB_KEY is
 * what bob's `obnam identity new` printed. Each line must succeed, and bob's
 * restore must give back alice's files byte for byte.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { OBNAM_TEST_ENTRY, ROOT, runCommand } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/tree.js';

/** The `NAME$ COMMAND` lines of the README section's code block. */
function walkThrough(): { who: string; command: string }[] {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = text.indexOf('\n## Sharing with family\n');
  assert.ok(start >= 0, 'README has a "Sharing with family" section');
  const section = text.slice(start + 1, text.indexOf('\n## ', start + 1));
  const block = /```\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the section has a code block');
  return block[1]!
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const m = /^([a-z]+)\$ (.*)$/.exec(l);
      assert.ok(m, `a line of the walk-through is "NAME$ COMMAND": ${l}`);
      return { who: m[1]!, command: m[2]! };
    });
}

describe('README: Sharing with family', () => {
  it('runs as written, and bob restores what alice shared', async () => {
    const tmp = await tempDir('obnam-readme-sharing-');
    try {
      const bin = path.join(tmp.path, 'bin');
      fs.mkdirSync(bin);
      fs.writeFileSync(path.join(bin, 'obnam'), `#!/bin/sh\nexec "${process.execPath}" "${OBNAM_TEST_ENTRY}" "$@"\n`, { mode: 0o755 });
      const repo = path.join(tmp.path, 'family-repo');
      const vars: Record<string, string> = {};
      const envOf = (who: string) => {
        const home = path.join(tmp.path, who);
        fs.mkdirSync(home, { recursive: true });
        return {
          HOME: home,
          XDG_CONFIG_HOME: path.join(home, '.config'),
          XDG_CACHE_HOME: path.join(home, '.cache'),
          OBNAM_PASSPHRASE: `${who}'s passphrase`,
          OBNAM_REPO: repo,
          PATH: `${bin}:${process.env.PATH}`,
          ...vars,
        };
      };
      const alice = envOf('alice').HOME;
      fs.mkdirSync(path.join(alice, 'Photos', 'summer'), { recursive: true });
      fs.writeFileSync(path.join(alice, 'Photos', 'summer', 'beach.jpg'), Buffer.alloc(300_000, 7));
      fs.writeFileSync(path.join(alice, 'Photos', 'cat.txt'), 'a cat\n');
      fs.mkdirSync(path.join(alice, 'Diary'));
      fs.writeFileSync(path.join(alice, 'Diary', 'today.txt'), 'dear diary\n');
      const lines = walkThrough();
      assert.ok(lines.length >= 8);
      for (const { who, command } of lines) {
        const r = await runCommand('bash', ['-c', command], { env: envOf(who) });
        assert.equal(r.code, 0, `${who}$ ${command}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
        if (who === 'bob' && /^obnam identity new/.test(command)) vars.BOB_KEY = r.stdout.trim();
      }
      assert.match(vars.BOB_KEY ?? '', /^obnam-pk1/);
      const restored = path.join(tmp.path, 'bob', 'from-alice');
      assertSameTree(path.join(alice, 'Photos'), path.join(restored, alice, 'Photos'), { owners: true });
      assertSameTree(path.join(alice, 'Diary'), path.join(restored, alice, 'Diary'), { owners: true });
    } finally {
      await tmp.remove();
    }
  });
});
