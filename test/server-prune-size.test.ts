/**
 * Space comes back on obnam-server to what a fresh repository needs (issue
 * 9, "Proof: Deletion"), on local and on S3 storage (s3rver on 127.0.0.1),
 * through the real command lines: five snapshots of a mutated tree, forget
 * all but the last, prune; the namespace is then within 10% of the size of a
 * fresh namespace holding only that snapshot, fsck passes and the snapshot
 * restores byte for byte. (One of three: test/server-repack-proof.test.ts;
 * local repositories: test/prune-repack.test.ts.)
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { obnamOk } from './helpers/cli.js';
import { prngBytes } from './helpers/prng.js';
import { initServerOn, TestS3 } from './helpers/s3.js';
import { bytesUnder, namespaceDirOf, obnamServerOk, ServerProcess, spawnServer } from './helpers/server.js';
import { tempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/trees.js';


for (const kind of ['local', 'S3'] as const) {
  describe(`obnam prune against obnam-server on ${kind} storage`, () => {
    it('forget all but the last of five snapshots of a mutated tree, prune: within 10% of a fresh namespace holding only it', async (t) => {
      const tmp = await tempDir('obnam-server-prune-size-');
      let s3: TestS3 | undefined;
      let srv: ServerProcess | undefined;
      try {
        const dir = path.join(tmp.path, 'server');
        const made = await initServerOn(kind, dir);
        s3 = made.s3;
        const { fingerprint, aws } = made;
        const size = async (client: string): Promise<number> => {
          const storage = path.basename(await namespaceDirOf(dir, client));
          if (!s3) return bytesUnder(path.join(dir, 'data', storage));
          let n = 0;
          for await (const b of s3.backend(`obnam/data/${storage}`).list('')) n += b.size;
          return n;
        };
        const alice = (await obnamServerOk(['client', 'add', 'alice', '--dir', dir], { env: aws })).stdout.trim();
        const fresh = (await obnamServerOk(['client', 'add', 'fresh', '--dir', dir], { env: aws })).stdout.trim();
        srv = await spawnServer(dir, '127.0.0.1:0', [], aws);
        const env = (token: string) => ({ env: { OBNAM_REPO: srv!.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: 'size', HOME: tmp.path } });
        await obnamOk(['init'], env(alice));
        const src = path.join(tmp.path, 'src');
        fs.mkdirSync(path.join(src, 'd'), { recursive: true });
        for (let i = 0; i < 5; i++) {
          // Each round rewrites a third of the files and adds new ones: most bytes are only in older snapshots.
          for (let j = 0; j < 30; j++) {
            if (i === 0 || j % 3 === i % 3) fs.writeFileSync(path.join(src, 'd', `f${j}.bin`), prngBytes(`file ${j} round ${i}`, 40_000));
          }
          fs.writeFileSync(path.join(src, `new${i}.bin`), prngBytes(`new ${i}`, 100_000));
          if (i > 0) fs.rmSync(path.join(src, `new${i - 1}.bin`));
          await obnamOk(['backup', src], env(alice));
        }
        const before = await size('alice');
        await obnamOk(['forget', '--keep-last', '1'], env(alice));
        const report = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], env(alice))).stdout);
        assert.equal(report.repack.done, true, JSON.stringify(report.repack));
        const after = await size('alice');
        await obnamOk(['init'], env(fresh));
        await obnamOk(['backup', src], env(fresh));
        const freshBytes = await size('fresh');
        t.diagnostic(`before ${before} bytes, after prune ${after}, a fresh namespace ${freshBytes}`);
        assert.ok(Math.abs(after - freshBytes) <= freshBytes * 0.1, `after prune ${after} bytes (before ${before}), a fresh namespace ${freshBytes}`);
        assert.ok(after < before * 0.6, `${after} of ${before}`);
        await obnamOk(['fsck'], env(alice));
        const target = path.join(tmp.path, 'restore');
        await obnamOk(['restore', 'latest', target], env(alice));
        await assertSameTree(src, path.join(target, src));
      } finally {
        if (srv && srv.child.exitCode === null) srv.child.kill('SIGTERM');
        await srv?.exited;
        await tmp.remove();
        await s3?.stop();
      }
    });
  });
}
