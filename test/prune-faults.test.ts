/**
 * kill -9 of obnam prune (a child process, local store) at random points of
 * its mark and of its sweep: fsck passes, every kept snapshot restores byte
 * for byte, and the next prune completes and collects what it should.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { obnamOk } from './helpers/cli.js';
import { killPruneDuringMarkAndSweep } from './helpers/kill.js';
import { prngBytes } from './helpers/prng.js';
import { openTestRepo } from './helpers/repo.js';
import { tempDir } from './helpers/tmp.js';

const PASS = 'prune faults passphrase';

function digestTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const p = path.join(dir, f);
    if (fs.lstatSync(p).isFile()) out[f] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  }
  return out;
}

async function counts(repo: string): Promise<{ trees: number; chunks: number; plans: number }> {
  const r = await openTestRepo(repo, PASS);
  let trees = 0;
  let chunks = 0;
  for await (const _ of r.listIds('tree')) trees++;
  for await (const _ of r.listIds('chunk')) chunks++;
  const plans = (await r.listPlanIds()).length;
  await r.close();
  return { trees, chunks, plans };
}

describe('obnam prune killed with SIGKILL', () => {
  it('during the mark and during the sweep, at random points: fsck passes, kept snapshots restore, the next prune completes', async () => {
    const tmp = await tempDir();
    try {
      const repo = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path, OBNAM_PACK_SIZE: '65536' };
      await obnamOk(['init'], { env });
      // Snapshot A (kept): shared files. Snapshot B (forgotten): many files of its own.
      fs.mkdirSync(path.join(src, 'keep'), { recursive: true });
      for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, 'keep', `k${i}`), prngBytes(`keep ${i}`, 20_000));
      await obnamOk(['backup', src], { env });
      const kept = digestTree(src);
      for (let d = 0; d < 10; d++) {
        fs.mkdirSync(path.join(src, 'gone', `d${d}`), { recursive: true });
        for (let i = 0; i < 25; i++) fs.writeFileSync(path.join(src, 'gone', `d${d}`, `g${i}`), prngBytes(`gone ${d} ${i}`, 18_000));
      }
      await obnamOk(['backup', src], { env });
      const list = JSON.parse((await obnamOk(['list', '--json'], { env })).stdout);
      const [a, b] = [list[0].id, list[1].id];
      const r = await openTestRepo(repo, PASS);
      await r.deleteSnapshot(b);
      await r.close();
      const before = await counts(repo);

      const check = async (label: string) => {
        await obnamOk(['fsck'], { env });
        const out = path.join(tmp.path, `restore-${label}`);
        await obnamOk(['restore', a, out], { env });
        assert.deepEqual(digestTree(path.join(out, src)), kept, `${label}: the kept snapshot restores`);
        fs.rmSync(out, { recursive: true });
      };

      await killPruneDuringMarkAndSweep(env, check, async () => {
        const r2 = await openTestRepo(repo, PASS);
        for (const id of await r2.listPlanIds()) await r2.deletePlan(id);
        await r2.close();
      });

      // The next prune completes: every object only B reached is gone, no plan is left.
      const done = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], { env })).stdout);
      // It finishes the plans the killed sweeps left, then marks (nothing more, or the rest) and sweeps.
      assert.ok(done.deleted.trees + done.deleted.chunks > 0);
      const after = await counts(repo);
      assert.equal(after.plans, 0);
      assert.ok(after.chunks <= 20 && after.chunks >= 20 - 1, `${after.chunks} chunks left of ${before.chunks}`);
      assert.ok(after.trees < before.trees);
      await check('final');
      const again = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], { env })).stdout);
      assert.equal(again.marked.trees + again.marked.chunks, 0);
    } finally {
      await tmp.remove();
    }
  });
});
