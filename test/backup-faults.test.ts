/**
 * Backups under adverse conditions: killed mid-way, unreadable files and
 * directories, a repository of an unknown format version, a restore target
 * with a symlink planted in the way, a directory too large for one tree object.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { frameHeader } from '../lib/store/framing.js';
import { sha256 } from '../lib/crypto/hash.js';
import { baseEnv, obnam, obnamOk, OBNAM } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { assertSameTree, isRoot } from './helpers/tree.js';

const PASS = 'fault test passphrase';

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function countPacks(repo: string): number {
  return (fs.readdirSync(path.join(repo, 'packs'), { recursive: true }) as string[]).filter((n) => /[0-9a-f]{64}$/.test(n)).length;
}

describe('backup faults', () => {
  it('a backup killed mid-way leaves a repository that fsck passes and the next backup completes', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(src);
      for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, `f${String(i).padStart(2, '0')}`), randomBytes(1536 * 1024));
      const repo = path.join(tmp.path, 'repo');
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path, OBNAM_PACK_SIZE: String(1 << 20) };
      await obnamOk(['init'], { env });
      const child = spawn(process.execPath, [OBNAM, 'backup', src], { env: baseEnv(env), stdio: 'ignore' });
      const exited = new Promise((r) => child.on('exit', r));
      await waitFor(() => countPacks(repo) >= 2, 60_000);
      child.kill('SIGKILL');
      await exited;
      assert.equal(fs.readdirSync(path.join(repo, 'snapshots')).length, 0, 'no snapshot from the killed backup');
      await obnamOk(['fsck'], { env });
      const r = JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout);
      const total = 40 * 1536 * 1024;
      assert.ok(r.summary.newBytes < total, `the second backup reused the first one's work (${r.summary.newBytes} of ${total} bytes new)`);
      await obnamOk(['fsck'], { env });
      const out = path.join(tmp.path, 'out');
      await obnamOk(['restore', 'latest', out], { env });
      assertSameTree(src, path.join(out, src));
    } finally {
      await tmp.remove();
    }
  });

  it('unreadable files and directories are reported and skipped; the backup exits 3', async () => {
    const tmp = await tempDir();
    try {
      fs.chmodSync(tmp.path, 0o755);
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(path.join(src, 'locked-dir'), { recursive: true });
      fs.writeFileSync(path.join(src, 'readable.txt'), 'fine\n');
      fs.writeFileSync(path.join(src, 'secret.txt'), 'no access\n');
      fs.writeFileSync(path.join(src, 'locked-dir', 'inside.txt'), 'unreachable\n');
      fs.writeFileSync(path.join(src, 'big-secret.bin'), randomBytes(500_000));
      fs.chmodSync(path.join(src, 'secret.txt'), 0o000);
      fs.chmodSync(path.join(src, 'big-secret.bin'), 0o000);
      fs.chmodSync(path.join(src, 'locked-dir'), 0o000);
      const repo = path.join(tmp.path, 'repo');
      // Root reads everything: run the CLI as "nobody" to make the files unreadable.
      const as = isRoot ? { uid: 65534, gid: 65534 } : {};
      if (isRoot) {
        fs.mkdirSync(repo);
        fs.chownSync(repo, 65534, 65534);
      }
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env, ...as });
      const r = await obnam(['backup', '--json', src], { env, ...as });
      assert.equal(r.code, 3, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.warnings.length, 3, JSON.stringify(j.warnings));
      const ls = (await obnamOk(['ls', 'latest', src], { env, ...as })).stdout.trim().split('\n');
      assert.ok(ls.includes(path.join(src, 'readable.txt')));
      assert.ok(!ls.includes(path.join(src, 'secret.txt')));
      const text = await obnam(['backup', src], { env, ...as });
      assert.equal(text.code, 3);
      assert.match(text.stderr, /warning: .*secret\.txt/);
    } finally {
      fs.chmodSync(path.join(tmp.path, 'src', 'locked-dir'), 0o755);
      await tmp.remove();
    }
  });

  it('a repository of an unknown format version is refused with a clear message', async () => {
    const tmp = await tempDir();
    try {
      const repo = path.join(tmp.path, 'repo');
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      // Rewrite the config object as a future version would (a valid store frame around it).
      const file = path.join(repo, 'config', '0'.repeat(64));
      const framed = fs.readFileSync(file);
      const object = Buffer.from(framed.subarray(40));
      object[4] = 5;
      fs.writeFileSync(file, Buffer.concat([frameHeader(sha256(object)), object]));
      const r = await obnam(['list'], { env });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /format version 5.*reads only versions 1, 2, 3, 4.*upgrade/);
    } finally {
      await tmp.remove();
    }
  });

  it('restore refuses to write through a symlink planted in the target', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
      fs.writeFileSync(path.join(src, 'sub', 'file'), 'data');
      const env = { OBNAM_REPO: path.join(tmp.path, 'repo'), OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      await obnamOk(['backup', src], { env });
      const out = path.join(tmp.path, 'out');
      const elsewhere = path.join(tmp.path, 'elsewhere');
      fs.mkdirSync(elsewhere);
      fs.mkdirSync(path.join(out, src), { recursive: true });
      fs.symlinkSync(elsewhere, path.join(out, src, 'sub'));
      const r = await obnam(['restore', 'latest', out], { env });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /not a directory; refusing to restore through it/);
      assert.deepEqual(fs.readdirSync(elsewhere), []);
    } finally {
      await tmp.remove();
    }
  });

  it('a directory with more entries than one tree node holds round-trips (paged tree)', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(src);
      for (let i = 0; i < 9000; i++) fs.writeFileSync(path.join(src, `entry-${i}`), `${i}\n`);
      const env = { OBNAM_REPO: path.join(tmp.path, 'repo'), OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      const first = JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout);
      assert.ok(first.summary.newTrees >= 3, `a paged directory writes several tree objects (${first.summary.newTrees})`);
      fs.writeFileSync(path.join(src, 'entry-5000'), 'changed\n');
      const second = JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout);
      assert.equal(second.summary.filesRead, 1);
      assert.ok(second.summary.newTrees < first.summary.newTrees, 'only the changed page and the path above it are new');
      const out = path.join(tmp.path, 'out');
      await obnamOk(['restore', 'latest', out], { env });
      assertSameTree(src, path.join(out, src), { dirTimes: false });
      const ls = (await obnamOk(['ls', 'latest', path.join(src, 'entry-8999')], { env })).stdout.trim();
      assert.equal(ls, path.join(src, 'entry-8999'));
    } finally {
      await tmp.remove();
    }
  });
});
