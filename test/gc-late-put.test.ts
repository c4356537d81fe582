/**
 * Format-spec 14.6 B5 at library level, with an injected clock: a backup's
 * snapshot put that completes more than G/4 after B2 (tc) is withdrawn, and
 * the backup starts again at B2 (which checks every id it names, B4), so a
 * slow put costs a second put, not the backup. A sweep that ran while the
 * late put was in flight (and so did not see the snapshot) deleted what the
 * snapshot names: the restart finds that and stores it again. A late
 * snapshot the store refuses to delete is put again as the same object. A store whose
 * puts are always late makes the backup fail with GC_CONFLICT, leaving no
 * snapshot.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ObnamError } from '../lib/errors.js';
import { backup } from '../lib/backup/engine.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { prngBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { createRepo, expectedContent, fsckQuick, G, Gate, openParty, restoredContent, runBackup, runPrune, TestClock } from './helpers/gc-harness.js';

const T0 = 1_800_000_000_000;

function writeFile(src: string, name: string, seed: string): void {
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, name), prngBytes(seed, 25_000)); // above inline_max: a chunk
}

describe('B5: a snapshot put later than G/4 after B2', () => {
  it('is withdrawn, and the backup starts again at B2 and writes its snapshot', async () => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      await createRepo(dir);
      writeFile(src, 'a.bin', 'a');
      writeFile(src, 'b.bin', 'b');
      const clock = new TestClock(T0);
      const party = await openParty(dir);
      let snapshotPuts = 0;
      party.store.hook = (op, kind) => {
        // The first snapshot put takes longer than G/4 of the clock.
        if (op === 'put' && kind === 'snapshot' && ++snapshotPuts === 1) clock.advance(G / 4 + 1000);
      };
      const messages: string[] = [];
      const id = await runBackup(party, src, clock, null, { onGcWait: (m) => messages.push(m) });
      party.store.hook = undefined;
      assert.ok(id, 'the backup wrote its snapshot after the late put');
      assert.equal(snapshotPuts, 2, 'the snapshot was put again');
      assert.ok(messages.some((m) => /quarter of the repository's gc grace period/.test(m)), messages.join('; '));
      const live = await party.repo.listSnapshots();
      assert.deepEqual(live.map((s) => s.id), [id], 'the late snapshot was withdrawn; only the second one is there');
      assert.deepEqual(await restoredContent(party.repo, id), expectedContent(src));
      assert.deepEqual(await fsckQuick(dir), []);
      await party.repo.close();
    } finally {
      await tmp.remove();
    }
  });

  it('a store that refuses to withdraw it (append-only): the snapshot is checked and put again as the same object, not doubled', async () => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      await createRepo(dir);
      writeFile(src, 'a.bin', 'append-only');
      const clock = new TestClock(T0);
      const party = await openParty(dir);
      let snapshotPuts = 0;
      let refused = 0;
      party.store.hook = (op, kind) => {
        if (op === 'put' && kind === 'snapshot' && ++snapshotPuts === 1) clock.advance(G / 4 + 1000);
        if (op === 'delete' && kind === 'snapshot') {
          refused++;
          throw new ObnamError('PERMISSION', 'this client may not delete');
        }
      };
      const id = await runBackup(party, src, clock, null);
      party.store.hook = undefined;
      assert.ok(id);
      assert.equal(refused, 1, 'the late snapshot was to be withdrawn');
      assert.equal(snapshotPuts, 1, 'the second put found the same object stored');
      assert.deepEqual((await party.repo.listSnapshots()).map((s) => s.id), [id], 'one snapshot: the second put was the same object');
      assert.deepEqual(await restoredContent(party.repo, id), expectedContent(src));
      await party.repo.close();
    } finally {
      await tmp.remove();
    }
  });

  it('a sweep that ran during the late put deleted what the snapshot names: the restart at B2 finds it and stores it again', async () => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      await createRepo(dir);
      writeFile(src, 'x.bin', 'x');
      writeFile(src, 'y.bin', 'y');
      const clock = new TestClock(T0);
      const backer = await openParty(dir);
      const collector = await openParty(dir);
      // X and Y are left over from a forgotten snapshot: B finds them present.
      const s1 = (await runBackup(backer, src, clock))!;
      await collector.repo.deleteSnapshot(s1);
      clock.advance(G / 8);
      // B is stopped just before B2 (its second listing of plans): its trees are written, and the
      // collector marks now, so X, Y and B's trees are all candidates of plan P.
      const gate = new Gate();
      let planLists = 0;
      let snapshotPuts = 0;
      let sweptDuringPut = 0;
      backer.store.hook = async (op, kind) => {
        if (op === 'list' && kind === 'gcplan' && ++planLists === 2) await gate.stop();
        if (op === 'put' && kind === 'snapshot' && ++snapshotPuts === 1) {
          // At B2, P was young (tc < P.created + G/2): B puts. The put takes longer than G: P's
          // sweep runs meanwhile, lists the snapshots before B's is there, and deletes X, Y and B's trees.
          clock.advance(G + 1000);
          const r = await runPrune(collector, clock);
          assert.equal(r.swept.length, 1);
          sweptDuringPut = r.deleted.chunks;
        }
      };
      const messages: string[] = [];
      const b = runBackup(backer, src, clock, null, { onGcWait: (m) => messages.push(m) });
      await gate.reached;
      const marked = await runPrune(collector, clock);
      assert.equal(marked.marked!.plans.length, 1);
      assert.ok(marked.marked!.chunks >= 2 && marked.marked!.trees >= 1, JSON.stringify(marked.marked));
      gate.release();
      const id = await b;
      backer.store.hook = undefined;
      assert.ok(sweptDuringPut >= 2, `the sweep during the put deleted X and Y (${sweptDuringPut})`);
      assert.ok(id, `the backup wrote its snapshot (${messages.join('; ')})`);
      assert.ok(messages.some((m) => m.includes('reading the files again')), messages.join('; '));
      assert.deepEqual((await backer.repo.listSnapshots()).map((s) => s.id), [id]);
      assert.deepEqual(await fsckQuick(dir), []);
      assert.deepEqual(await restoredContent(backer.repo, id), expectedContent(src));
      await backer.repo.close();
      await collector.repo.close();
    } finally {
      await tmp.remove();
    }
  });

  it('a store whose snapshot puts are always late: the backup fails with GC_CONFLICT after a bounded number of puts, leaving no snapshot', async () => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      await createRepo(dir);
      writeFile(src, 'a.bin', 'always late');
      const clock = new TestClock(T0);
      const party = await openParty(dir);
      let snapshotPuts = 0;
      party.store.hook = (op, kind) => {
        if (op === 'put' && kind === 'snapshot') {
          snapshotPuts++;
          clock.advance(G / 4 + 1000);
        }
      };
      const pool = startRepoPool(party.repo, { size: 1 });
      try {
        await assert.rejects(
          backup(party.repo, { paths: [src], pool, clock, hostname: 'late-host', username: 'late', parent: null }),
          (e) => e instanceof ObnamError && e.code === 'GC_CONFLICT' && /quarter of the repository's gc grace period/.test(e.message),
        );
      } finally {
        await pool.close();
      }
      party.store.hook = undefined;
      assert.ok(snapshotPuts >= 2 && snapshotPuts <= 4, `${snapshotPuts} puts`);
      assert.deepEqual(await party.repo.listSnapshots(), [], 'every late snapshot was withdrawn');
      await party.repo.close();
    } finally {
      await tmp.remove();
    }
  });
});
