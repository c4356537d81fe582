/**
 * kill -9 of obnam prune (a child process) against obnam-server, on local
 * and on S3 storage (s3rver on 127.0.0.1), at random points of its mark and
 * of its sweep: fsck passes, the kept snapshot restores byte for byte, and
 * the next prune completes and collects what it should (the local-store
 * version is test/prune-faults.test.ts).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Repository } from '../lib/repo/repository.js';
import { HttpStore } from '../lib/store/http.js';
import { obnamOk } from './helpers/cli.js';
import { killPruneDuringMarkAndSweep } from './helpers/kill.js';
import { prngBytes } from './helpers/prng.js';
import { initServerOn, TestS3 } from './helpers/s3.js';
import { obnamServerOk, spawnServer } from './helpers/server.js';
import { tempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/trees.js';

const PASS = 'server prune faults';

for (const kind of ['local', 'S3'] as const) {
  describe(`obnam prune against obnam-server on ${kind} storage, killed with SIGKILL`, () => {
    it('during the mark and during the sweep, at random points: fsck passes, the kept snapshot restores, the next prune completes', async () => {
      const tmp = await tempDir();
      let s3: TestS3 | undefined;
      try {
        const dir = path.join(tmp.path, 'server');
        const made = await initServerOn(kind, dir);
        s3 = made.s3;
        const { fingerprint, aws } = made;
        const token = (await obnamServerOk(['client', 'add', 'alice', '--dir', dir], { env: aws })).stdout.trim();
        const srv = await spawnServer(dir, '127.0.0.1:0', [], aws);
        try {
          const env = { OBNAM_REPO: srv.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
          const open = async () => Repository.open(await HttpStore.open({ url: srv.url, token, fingerprint }), PASS);
          const src = path.join(tmp.path, 'src');
          await obnamOk(['init'], { env });
          // Snapshot A (kept): shared files. Snapshot B (forgotten): many files of its own.
          fs.mkdirSync(path.join(src, 'keep'), { recursive: true });
          for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, 'keep', `k${i}`), prngBytes(`keep ${i}`, 20_000));
          await obnamOk(['backup', src], { env });
          const want = path.join(tmp.path, 'want');
          fs.cpSync(src, want, { recursive: true });
          for (let d = 0; d < 10; d++) {
            fs.mkdirSync(path.join(src, 'gone', `d${d}`), { recursive: true });
            for (let i = 0; i < 25; i++) fs.writeFileSync(path.join(src, 'gone', `d${d}`, `g${i}`), prngBytes(`gone ${d} ${i}`, 18_000));
          }
          await obnamOk(['backup', src], { env });
          const list = JSON.parse((await obnamOk(['list', '--json'], { env })).stdout);
          const [a, b] = [list[0].id, list[1].id];
          await obnamOk(['forget', b], { env });

          const check = async (label: string) => {
            await obnamOk(['fsck'], { env });
            const out = path.join(tmp.path, `restore-${label}`);
            await obnamOk(['restore', a, out], { env });
            await assertSameTree(want, path.join(out, src));
            fs.rmSync(out, { recursive: true });
          };

          await killPruneDuringMarkAndSweep(env, check, async () => {
            const r = await open();
            for (const id of await r.listPlanIds()) await r.deletePlan(id);
            await r.close();
          });

          // The next prune completes: every object only B reached is gone, no plan is left.
          await obnamOk(['prune', '--exclusive', '--json'], { env });
          const after = await open();
          try {
            assert.deepEqual(await after.listPlanIds(), []);
            let chunks = 0;
            for await (const _ of after.listIds('chunk')) chunks++;
            assert.ok(chunks <= 20 && chunks >= 20 - 1, `${chunks} chunks left: only the kept snapshot's`);
          } finally {
            await after.close();
          }
          await check('final');
          const again = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], { env })).stdout);
          assert.equal(again.marked.trees + again.marked.chunks, 0);
        } finally {
          srv.child.kill('SIGTERM');
          await srv.exited;
        }
      } finally {
        await tmp.remove();
        await s3?.stop();
      }
    });
  });
}
