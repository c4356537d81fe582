/**
 * The collector's path of bench/gc-memory.ts, small enough to check every
 * answer: the real mark, sweep and prune (lib/gc/) over the synthetic
 * repository of test/helpers/synthetic-gc-repo.ts (200 000 reachable chunks
 * from two snapshots sharing half their trees, 500 000 garbage chunks, half
 * of them under a forgotten snapshot's trees). The mark's plans hold exactly
 * the garbage (split into plans of at most MAX_PLAN_CANDIDATES); the sweep
 * deletes exactly that, except what a tree written after the mark names;
 * every reachable id is kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PLAN_CANDIDATES } from '../lib/format/gcplan.js';
import { mark } from '../lib/gc/mark.js';
import { prune } from '../lib/gc/prune.js';
import { sweep } from '../lib/gc/sweep.js';
import { parseId, SyntheticGcRepo, Tag } from './helpers/synthetic-gc-repo.js';

const SHAPE = { reachableChunks: 200_000, garbageChunks: 500_000, snapshots: 2 };
const T0 = 1_800_000_000_000;

/** Every object of the synthetic repository is deleted exactly when `shouldGo` says so. */
function assertDeleted(repo: SyntheticGcRepo, shouldGo: (tag: Tag, n: number) => boolean): void {
  const wrong: string[] = [];
  const check = (tag: Tag, count: number) => {
    for (let n = 0; n < count && wrong.length < 5; n++) {
      if (repo.isDeleted(tag, n) !== shouldGo(tag, n)) wrong.push(`${tag}/${n}: ${repo.isDeleted(tag, n) ? 'deleted' : 'kept'}`);
    }
  };
  check(Tag.Chunk, repo.totalChunks);
  check(Tag.Leaf, repo.leaves);
  check(Tag.Mid, repo.mids);
  check(Tag.Root, repo.snapshots);
  check(Tag.GarbageLeaf, repo.garbageLeaves);
  check(Tag.GarbageRoot, 1);
  assert.deepEqual(wrong, []);
}

const isGarbage = (repo: SyntheticGcRepo) => (tag: Tag, n: number) =>
  tag === Tag.Chunk ? n >= repo.reachableChunks : tag === Tag.GarbageLeaf || tag === Tag.GarbageRoot;

describe('the collector over a synthetic repository of 700 000 chunks', () => {
  it('mark: its plans hold exactly the unreachable trees and chunks; sweep: deletes them, keeps every reachable id and what a tree written after the mark names', async () => {
    const repo = new SyntheticGcRepo(SHAPE);
    let now = T0;
    const clock = { now: () => now };
    const m = await mark(repo, { clock, hostname: 'scale' });
    assert.equal(m.snapshots, 2);
    assert.equal(m.chunks, SHAPE.garbageChunks);
    assert.equal(m.trees, repo.garbageLeaves + 1);
    assert.equal(m.plans.length, Math.ceil((m.chunks + m.trees) / MAX_PLAN_CANDIDATES));
    assert.ok(m.plans.length >= 2, 'the candidates span several plans');
    // Exactly the garbage, each once, each list sorted.
    const seen = new Set<string>();
    const plans = [];
    for (const id of m.plans) {
      const p = await repo.getPlan(id);
      plans.push(p);
      for (const list of [p.trees, p.chunks]) {
        for (let i = 1; i < list.length; i++) assert.ok(list[i - 1]! < list[i]!, 'candidates sorted ascending');
        for (const c of list) {
          assert.ok(!seen.has(c), `${c} in two plans`);
          seen.add(c);
          const { tag, n } = parseId(c);
          assert.ok(isGarbage(repo)(tag, n), `candidate ${tag}/${n} is garbage`);
        }
      }
    }
    assert.equal(seen.size, m.chunks + m.trees);
    assert.equal(repo.counts.deletes, 0, 'the mark deletes nothing');
    // A backup that started after the mark writes a tree naming 1000 garbage chunks: 500 also named
    // by the forgotten snapshot's trees, 500 named by no tree.
    const lateFrom = repo.namedGarbageEnd - 500;
    const lateTo = repo.namedGarbageEnd + 500;
    repo.addLateTree(lateFrom, lateTo);
    now += repo.config.gcGrace! * 1000;
    let kept = 0;
    let chunks = 0;
    let trees = 0;
    for (const p of plans) {
      const r = await sweep(repo, p, { clock });
      kept += r.kept;
      chunks += r.chunks;
      trees += r.trees;
    }
    assert.equal(kept, lateTo - lateFrom, 'the late tree keeps what it names');
    assert.equal(chunks, SHAPE.garbageChunks - (lateTo - lateFrom));
    assert.equal(trees, repo.garbageLeaves + 1);
    assert.deepEqual(await repo.listPlanIds(), [], 'every plan is deleted last');
    assertDeleted(repo, (tag, n) => isGarbage(repo)(tag, n) && !(tag === Tag.Chunk && n >= lateFrom && n < lateTo));
  });

  it('prune --exclusive (the benchmark path): deletes exactly the unreachable trees and chunks; a second run finds nothing', async () => {
    const repo = new SyntheticGcRepo(SHAPE);
    const clock = { now: () => T0 };
    const r = await prune(repo, { clock, exclusive: true, hostname: 'scale' });
    assert.equal(r.marked!.chunks, SHAPE.garbageChunks);
    assert.equal(r.deleted.chunks, SHAPE.garbageChunks);
    assert.equal(r.deleted.trees, repo.garbageLeaves + 1);
    assert.equal(r.deleted.bytes, SHAPE.garbageChunks * 4096 + (repo.garbageLeaves + 1) * 1024);
    assertDeleted(repo, isGarbage(repo));
    // Each directory is read once per walk (mark, then sweep per plan), shared subtrees included.
    const treesReachable = repo.leaves + repo.mids + repo.snapshots;
    assert.equal(repo.counts.treeReads, treesReachable * (1 + r.swept.length));
    const again = await prune(repo, { clock, exclusive: true, hostname: 'scale' });
    assert.equal(again.marked!.chunks + again.marked!.trees, 0);
    assert.equal(again.deleted.chunks, 0);
  });
});
