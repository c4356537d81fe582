/**
 * Garbage collection against concurrent backups (format-spec 14.2, 14.6):
 * backups and collections on two "machines" (separate store handles of one
 * repository) interleaved at random store operations, with an injected clock,
 * over many seeds. After every step every snapshot's objects are all present
 * (fsck quick) and every snapshot restores its files byte for byte. The race
 * of 14.2 and a backup longer than G/2 are run explicitly as well.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { prngBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import {
  createRepo,
  expectedContent,
  fsckQuick,
  G,
  Gate,
  openParty,
  restoredContent,
  runBackup,
  runPrune,
  TestClock,
} from './helpers/gc-harness.js';

const T0 = 1_800_000_000_000;

/** Every snapshot in the store restores what was backed up, and fsck quick finds nothing. */
async function checkAll(dir: string, expected: Map<string, Map<string, string>>, label: string): Promise<void> {
  assert.deepEqual(await fsckQuick(dir), [], `${label}: fsck quick`);
  const p = await openParty(dir);
  try {
    const live = await p.repo.listSnapshots();
    for (const s of live) {
      const want = expected.get(s.id);
      assert.ok(want, `${label}: snapshot ${s.id} was made by a backup of this test`);
      assert.deepEqual(await restoredContent(p.repo, s.id), want, `${label}: snapshot ${s.id.slice(0, 8)} restores`);
    }
  } finally {
    await p.repo.close();
  }
}

function writeFile(src: string, name: string, seed: string): void {
  fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
  // Above inline_max: stored as a chunk.
  fs.writeFileSync(path.join(src, name), prngBytes(seed, 20_000 + (seed.length % 7) * 1000));
}

/** A tiny deterministic PRNG for the schedule. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

describe('garbage collection and concurrent backups', () => {
  it('the race of format-spec 14.2: a backup relying on a candidate found present never writes a snapshot naming a deleted object; it waits for the sweep (B3), stores again what it deleted, and its snapshot restores', async () => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      await createRepo(dir);
      const clock = new TestClock(T0);
      const backer = await openParty(dir);
      const collector = await openParty(dir);
      const expected = new Map<string, Map<string, string>>();
      const variants = ['sweep finished before the snapshot', 'sweep imminent at the snapshot, never runs', 'sweep imminent at the snapshot, runs while the backup waits'] as const;
      for (const variant of variants) {
        // S1 holds X; S1 is forgotten; the collector marks: X's chunk is a candidate of plan P.
        fs.rmSync(src, { recursive: true, force: true });
        writeFile(src, 'x.bin', `X ${variant}`);
        writeFile(src, 'y.bin', `Y ${variant}`); // same directory: B's first tree check comes after both chunks' checks
        const s1 = (await runBackup(backer, src, clock))!;
        await collector.repo.deleteSnapshot(s1);
        let markedAt = clock.now();
        const mark = async () => {
          markedAt = clock.now();
          const marked = await runPrune(collector, clock);
          assert.equal(marked.marked!.plans.length, 1);
          assert.ok(marked.marked!.chunks >= 2);
        };
        // The collector marks: X and Y are candidates. For the sweep that runs while B waits, the
        // mark comes once B has written its trees (they are candidates too, so nothing protects X
        // and Y from the sweep: trees written after a mark would, 14.5 S2).
        if (variant !== variants[2]) await mark();
        // B starts soon after and finds X present (has). It is stopped at its first check for a tree
        // (14.2's picture: the collector deletes X, then B puts a tree naming X), or, for the
        // imminent sweep, just before its B2 listing of plans.
        clock.advance(G / 8);
        const gate = new Gate();
        let planLists = 0;
        backer.store.hook = async (op, kind) => {
          if (variant === variants[0] ? (op === 'has' || op === 'hasMany') && kind === 'tree' : op === 'list' && kind === 'gcplan' && ++planLists === 2) {
            await gate.stop();
          }
        };
        const messages: string[] = [];
        let sweptWhileWaiting = 0;
        clock.onSleep =
          variant === variants[2]
            ? async () => {
                // The collector's run comes once the plan's grace period has passed.
                if (sweptWhileWaiting || clock.now() < markedAt + G) return;
                const r = await runPrune(collector, clock);
                assert.equal(r.swept.length, 1);
                sweptWhileWaiting = r.deleted.chunks;
              }
            : undefined;
        const sleptBefore = clock.slept;
        const b = runBackup(backer, src, clock, null, { onGcWait: (m) => messages.push(m) });
        await gate.reached;
        if (variant === variants[2]) {
          clock.advance(G / 8);
          await mark();
        }
        if (variant === variants[0]) {
          // The collector's sweep deletes X while B waits.
          clock.advance(G);
          const swept = await runPrune(collector, clock);
          assert.equal(swept.swept.length, 1);
          assert.ok(swept.deleted.chunks >= 2, JSON.stringify(swept));
        } else {
          // Past P.created + G/2: P's sweep may be running; B must not name P's candidates.
          clock.advance(variant === variants[2] ? (3 * G) / 4 : G / 2);
        }
        gate.release();
        const id = await b;
        backer.store.hook = undefined;
        clock.onSleep = undefined;
        const waited = clock.slept - sleptBefore;
        if (variant === variants[1]) {
          assert.equal(id, undefined, `${variant}: the backup is refused once its waiting time (G/2) is over`);
          assert.ok(waited >= G / 2, `${variant}: waited ${waited} ms`);
          assert.equal((await backer.repo.listSnapshots()).length, 0, `${variant}: no snapshot was written`);
        } else {
          // B4 (the sweep finished) or B3 after the wait: B reads X and Y again and stores them anew.
          assert.ok(id, `${variant}: the snapshot is written (${messages.join('; ')})`);
          assert.ok(messages.some((m) => m.includes('reading the files again')), messages.join('; '));
          if (variant === variants[2]) {
            assert.ok(sweptWhileWaiting >= 2, 'the sweep ran while the backup waited and deleted X and Y');
            assert.ok(messages.some((m) => m.includes('waiting for its sweep')), messages.join('; '));
            assert.ok(waited > 0 && waited < G / 2, `waited ${waited} ms`);
          }
          expected.set(id, expectedContent(src));
          assert.equal(expected.get(id)!.size, 2);
        }
        await checkAll(dir, expected, variant);
        // Let the pending plans be swept before the next variant; the written snapshot stays whole.
        clock.advance(2 * G);
        await runPrune(collector, clock);
        clock.advance(2 * G);
        await runPrune(collector, clock);
        await checkAll(dir, expected, `${variant}, swept`);
        for (const live of await backer.repo.listSnapshots()) await backer.repo.deleteSnapshot(live.id);
        expected.clear();
      }
      // The refused backup, run again: X is uploaded anew, the snapshot restores.
      const s2 = await runBackup(backer, src, clock, null);
      assert.ok(s2);
      expected.set(s2, expectedContent(src));
      await checkAll(dir, expected, 'after the re-run');
      await backer.repo.close();
      await collector.repo.close();
    } finally {
      await tmp.remove();
    }
  });

  it('a backup longer than G/2: refused if it names a candidate of a plan made while it ran, written (after checking presence) if not', async () => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      const other = path.join(tmp.path, 'other');
      await createRepo(dir);
      const clock = new TestClock(T0);
      const backer = await openParty(dir);
      const collector = await openParty(dir);
      const expected = new Map<string, Map<string, string>>();
      writeFile(other, 'shared.bin', 'shared');
      const old = (await runBackup(collector, other, clock))!;
      await collector.repo.deleteSnapshot(old);
      writeFile(src, 'shared.bin', 'shared'); // same content: B finds its chunk present
      writeFile(src, 'own.bin', 'own');

      for (const names of [true, false]) {
        if (!names) {
          // New content only: the refused run's objects are candidates too (a mark ran while it wrote them).
          fs.rmSync(src, { recursive: true });
          writeFile(src, 'own2.bin', 'own, second run');
        }
        // B starts; it is stopped at its first tree put (its chunks are stored or found present).
        const gate = new Gate();
        backer.store.hook = async (op, kind) => {
          if (op === 'put' && kind === 'tree') await gate.stop();
        };
        // (gcWaitMs 0: no waiting for the sweep, which this test never runs: refused at once.)
        const b = runBackup(backer, src, clock, null, { gcWaitMs: 0 });
        await gate.reached;
        // Meanwhile a collection marks: the forgotten snapshot's objects are candidates.
        clock.advance(60_000);
        const m = await runPrune(collector, clock);
        assert.ok(names ? m.marked!.chunks >= 1 : m.waiting.length >= 1);
        clock.advance(0.6 * G); // B now runs for longer than G/2
        gate.release();
        const id = await b;
        backer.store.hook = undefined;
        if (names) {
          assert.equal(id, undefined, 'B names a candidate of a plan due for its sweep: refused');
        } else {
          assert.ok(id, 'B names no candidate: its snapshot is written');
          expected.set(id, expectedContent(src));
        }
        await checkAll(dir, expected, `names a candidate: ${names}`);
      }
      // Later collections delete the forgotten objects (the refused runs' trees, written after
      // the mark, protect what they name from that mark's sweep: 14.5 S2), and B's snapshot still restores.
      let deleted = 0;
      for (let round = 0; round < 3; round++) {
        clock.advance(1.1 * G);
        deleted += (await runPrune(collector, clock)).deleted.chunks;
        await checkAll(dir, expected, `collection round ${round}`);
      }
      assert.ok(deleted >= 2, `${deleted} chunks collected`);
      await backer.repo.close();
      await collector.repo.close();
    } finally {
      await tmp.remove();
    }
  });

  it('random interleavings of backups, forgets and collections keep every snapshot whole (property, many seeds)', async () => {
    const deadline = Date.now() + 12_000;
    let seeds = 0;
    let refused = 0;
    let walkedAgain = 0;
    let deletedChunks = 0;
    for (let seed = 1; seed <= 12 && (seed <= 3 || Date.now() < deadline); seed++) {
      const rand = rng(seed * 7919);
      const tmp = await tempDir();
      try {
        const dir = path.join(tmp.path, 'repo');
        const src = path.join(tmp.path, 'src');
        await createRepo(dir);
        const clock = new TestClock(T0);
        const backer = await openParty(dir);
        const collector = await openParty(dir);
        const expected = new Map<string, Map<string, string>>();
        for (let i = 0; i < 4; i++) writeFile(src, `f${i}.bin`, `seed ${seed} file ${i} v0`);
        for (let step = 0; step < 7; step++) {
          const r = rand();
          const label = `seed ${seed} step ${step}`;
          // Mutate the source a little (new, changed, removed files; some content comes back).
          const n = Math.floor(rand() * 6);
          const name = `${rand() < 0.5 ? 'd/' : ''}f${n}.bin`;
          if (rand() < 0.2 && fs.existsSync(path.join(src, name))) fs.rmSync(path.join(src, name));
          else writeFile(src, name, `seed ${seed} file ${n} v${Math.floor(rand() * 3)}`);
          if (r < 0.45) {
            // A backup with a collection (and clock jumps) at a random store operation.
            const stopAt = Math.floor(rand() * 40);
            const jump = Math.floor(rand() * 1.3 * G);
            const exclusive = false;
            let ops = 0;
            const gate = new Gate();
            backer.store.hook = async () => {
              if (ops++ === stopAt) await gate.stop();
            };
            const before = expectedContent(src);
            // Half the time a collection sweeps while the backup waits for a sweep (B3).
            let sweptInWait = false;
            clock.onSleep =
              rand() < 0.5
                ? async () => {
                    if (sweptInWait) return;
                    sweptInWait = true;
                    clock.advance(G);
                    deletedChunks += (await runPrune(collector, clock)).deleted.chunks;
                  }
                : undefined;
            const b = runBackup(backer, src, clock, rand() < 0.5 ? null : undefined, {
              onGcWait: (m) => {
                if (m.includes('reading the files again')) walkedAgain++;
              },
            });
            await Promise.race([gate.reached, b.catch(() => undefined)]);
            if (gate.wasReached) {
              // Maybe forget a snapshot first, then one or two collections (mark, then its sweep).
              const live = await collector.repo.listSnapshots();
              if (live.length && rand() < 0.5) await collector.repo.deleteSnapshot(live[Math.floor(rand() * live.length)]!.id);
              clock.advance(jump);
              deletedChunks += (await runPrune(collector, clock, exclusive)).deleted.chunks;
              if (rand() < 0.5) {
                clock.advance(G + Math.floor(rand() * 0.2 * G));
                deletedChunks += (await runPrune(collector, clock, exclusive)).deleted.chunks;
              }
              gate.release();
            }
            const id = await b;
            backer.store.hook = undefined;
            clock.onSleep = undefined;
            if (id) expected.set(id, before);
            else refused++;
          } else if (r < 0.65) {
            // A collection with a backup run at a random point of it.
            const stopAt = Math.floor(rand() * 30);
            let ops = 0;
            const gate = new Gate();
            collector.store.hook = async () => {
              if (ops++ === stopAt) await gate.stop();
            };
            clock.advance(Math.floor(rand() * 0.6 * G));
            const p = runPrune(collector, clock);
            await Promise.race([gate.reached, p.catch(() => undefined)]);
            if (gate.wasReached) {
              const before = expectedContent(src);
              const id = await runBackup(backer, src, clock);
              if (id) expected.set(id, before);
              else refused++;
              clock.advance(Math.floor(rand() * 0.3 * G));
              gate.release();
            }
            deletedChunks += (await p).deleted.chunks;
            collector.store.hook = undefined;
          } else if (r < 0.85) {
            const live = await collector.repo.listSnapshots();
            if (live.length) await collector.repo.deleteSnapshot(live[Math.floor(rand() * live.length)]!.id);
          } else {
            clock.advance(Math.floor(rand() * 1.5 * G));
            deletedChunks += (await runPrune(collector, clock)).deleted.chunks;
          }
          await checkAll(dir, expected, label);
        }
        // Forget all but the newest snapshot; a few collections later their objects are gone.
        const live = await collector.repo.listSnapshots();
        for (const snap of live.slice(0, -1)) await collector.repo.deleteSnapshot(snap.id);
        for (let round = 0; round < 3; round++) {
          clock.advance(1.1 * G);
          deletedChunks += (await runPrune(collector, clock)).deleted.chunks;
        }
        await checkAll(dir, expected, `seed ${seed}: after forgetting all but the newest`);
        await backer.repo.close();
        await collector.repo.close();
        seeds++;
      } finally {
        await tmp.remove();
      }
    }
    assert.ok(seeds >= 3, `${seeds} seeds run`);
    assert.ok(deletedChunks > 0, 'the collections deleted something');
    process.stdout.write(
      `# gc race: ${seeds} seeds, ${refused} backups refused by the gc rules, ${walkedAgain} walked again to store what a sweep deleted, ${deletedChunks} chunks collected\n`,
    );
  });
});
