/**
 * A full disk on the server (issue 7 item 5): the server's data lives on a
 * small tmpfs (root only); an upload that does not fit gets 507, the client
 * reports it in one line without retrying, and once space is freed the same
 * server (no restart) accepts the backup, which then restores byte for byte.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { obnam, obnamOk } from './helpers/cli.js';
import { obnamServerOk, spawnServer } from './helpers/server.js';
import { tempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/trees.js';

const isRoot = process.getuid?.() === 0;

describe('server with a full disk', { skip: !isRoot && 'needs root to mount a small tmpfs' }, () => {
  it('answers 507, the client says so in one line without retrying, and it recovers without a restart once space is freed', async () => {
    const tmp = await tempDir('obnam-full-');
    const mnt = path.join(tmp.path, 'mnt');
    await fs.mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
    let srv: Awaited<ReturnType<typeof spawnServer>> | undefined;
    try {
      const dir = path.join(mnt, 'server');
      const init = await obnamServerOk(['init', dir]);
      const fingerprint = /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!;
      const token = (await obnamServerOk(['client', 'add', 'filler', '--dir', dir])).stdout.trim();
      srv = await spawnServer(dir);
      const env = { env: { OBNAM_REPO: srv.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: 'p' } };
      await obnamOk(['init'], env);
      // Leave about 1 MiB free, then back up 3 MiB of incompressible data.
      const { bavail, bsize } = await fs.statfs(mnt);
      const ballast = path.join(mnt, 'ballast');
      await fs.writeFile(ballast, Buffer.alloc(Math.max(0, bavail * bsize - (1 << 20)), 1));
      const src = path.join(tmp.path, 'src');
      await fs.mkdir(src);
      await fs.writeFile(path.join(src, 'big.bin'), randomBytes(3 << 20));
      const full = await obnam(['backup', src], env);
      assert.equal(full.code, 1, full.stderr);
      const lines = full.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line of error, got:\n${full.stderr}`);
      assert.match(lines[0]!, /no storage space left \(HTTP 507\)/);
      const refused = srv.stdout().split('\n').filter((l) => l.includes('"status":507')).length;
      assert.ok(refused >= 1 && refused <= 8, `the client stopped after the first 507s instead of retrying (${refused} refused requests)`);
      // Free the space; the same server process takes the backup now.
      await fs.rm(ballast);
      const ok = JSON.parse((await obnamOk(['backup', src, '--json'], env)).stdout) as { snapshot: string };
      assert.match((await obnamOk(['fsck'], env)).stdout, /no problems found/);
      const out = path.join(tmp.path, 'out');
      await obnamOk(['restore', ok.snapshot, out], env);
      await assertSameTree(src, path.join(out, src));
    } finally {
      if (srv && srv.child.exitCode === null) srv.child.kill('SIGTERM');
      await srv?.exited;
      execFileSync('umount', ['-l', mnt]);
      await tmp.remove();
    }
  });
});
