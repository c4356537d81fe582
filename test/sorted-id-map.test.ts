/**
 * SortedIdMap (lib/util/sorted-id-map.ts) against a plain Map, by property
 * tests with merges every few operations: the map keeps full ids, so ids
 * that share all but their last byte, or their first 16 bytes, are told
 * apart, and an absent id with a present prefix is absent. Also: fields of
 * any 32-bit value survive the bit packing, listings in order, and its
 * size per id.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SortedIdMap } from '../lib/util/sorted-id-map.js';

// Ids that share long prefixes often: few first bytes (so one directory bucket holds many), and
// a middle and last byte that vary (so ids share 16 and 31 bytes).
const idArb = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 5 })).map(([h, m, t]) => {
  const b = Buffer.alloc(32, 0xab);
  b[0] = h;
  b[1] = 0;
  b[20] = m;
  b[31] = t;
  return b.toString('hex');
});
const fieldArb = fc.oneof(fc.nat({ max: 9 }), fc.nat(), fc.constant(0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));

type Op = { op: 'add'; id: string; f: [number, number, number] } | { op: 'delete'; id: string } | { op: 'compact' } | { op: 'page'; after?: string; limit: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('add' as const), id: idArb, f: fc.tuple(fieldArb, fieldArb, fieldArb) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), id: idArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('compact' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('page' as const), after: fc.option(idArb, { nil: undefined }), limit: fc.integer({ min: 1, max: 20 }) }) },
);

function check(m: SortedIdMap, ref: Map<string, [number, number, number]>, probe: readonly string[]): void {
  assert.equal(m.size, ref.size);
  for (const id of probe) {
    assert.equal(m.has(id), ref.has(id), id);
    assert.deepEqual(m.get(id), ref.get(id), id);
  }
  const seen = new Map<string, number[]>();
  m.forEach((id, a, b, c) => seen.set(id.toString('hex'), [a, b, c]));
  assert.deepEqual(new Map([...seen].sort()), new Map([...ref].sort()));
  assert.deepEqual([...m.ids()].sort(), [...ref.keys()].sort());
}

describe('SortedIdMap', () => {
  it('behaves as a Map under any sequence of adds, deletes, merges and paged listings', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), fc.integer({ min: 1, max: 6 }), (ops, minDelta) => {
        const m = new SortedIdMap(minDelta);
        const ref = new Map<string, [number, number, number]>();
        const probe = new Set<string>();
        for (const o of ops) {
          if (o.op === 'add') {
            probe.add(o.id);
            assert.equal(m.add(o.id, ...o.f), !ref.has(o.id));
            if (!ref.has(o.id)) ref.set(o.id, o.f);
          } else if (o.op === 'delete') {
            probe.add(o.id);
            assert.equal(m.delete(o.id), ref.delete(o.id));
          } else if (o.op === 'compact') m.compact();
          else {
            const want = [...ref.keys()].filter((id) => o.after === undefined || id > o.after).sort().slice(0, o.limit);
            assert.deepEqual(m.page(o.after, o.limit), want);
          }
        }
        check(m, ref, [...probe]);
        m.compact();
        check(m, ref, [...probe]);
      }),
      { numRuns: 300 },
    );
  });

  it('tells apart ids that share their first 16 bytes, and says absent for an absent id with a present prefix', () => {
    const m = new SortedIdMap(2);
    const prefix = randomBytes(16);
    const ids = Array.from({ length: 40 }, () => Buffer.concat([prefix, randomBytes(16)]).toString('hex'));
    ids.forEach((id, i) => assert.ok(m.add(id, i, i * 1000, i + 7)));
    const absent = Buffer.concat([prefix, randomBytes(16)]).toString('hex');
    // Only its last byte differs from a present id.
    const near = ids[3]!.slice(0, 62) + ((parseInt(ids[3]!.slice(62), 16) + 1) % 256).toString(16).padStart(2, '0');
    for (const merged of [false, true]) {
      if (merged) m.compact();
      ids.forEach((id, i) => assert.deepEqual(m.get(id), [i, i * 1000, i + 7], `${id} (merged: ${merged})`));
      assert.equal(m.has(absent), false);
      assert.equal(m.get(absent), undefined);
      if (!ids.includes(near)) {
        assert.equal(m.has(near), false);
        assert.equal(m.delete(near), false);
      }
      assert.deepEqual(m.page(undefined, 100), [...ids].sort());
    }
  });

  it('a listing in progress gives every id present from start to end once, across merges, deletes and moves', () => {
    const m = new SortedIdMap(4);
    const ids = Array.from({ length: 5000 }, () => randomBytes(32).toString('hex'));
    ids.forEach((id, i) => m.add(id, i, 0, 0));
    m.compact();
    const moved = new Set(ids.filter((_, i) => i % 7 === 0));
    const gone = new Set(ids.filter((_, i) => i % 7 === 1));
    const got: string[] = [];
    let n = 0;
    for (const id of m.ids()) {
      got.push(id);
      if (++n === 100) {
        // Moves (delete and add again, as a hidden copy does), deletes, and enough adds to force merges.
        for (const x of moved) {
          m.delete(x);
          m.add(x, 1, 2, 3);
        }
        for (const x of gone) m.delete(x);
        for (let k = 0; k < 30_000; k++) m.add(randomBytes(32).toString('hex'), 9, 9, 9);
      }
    }
    const counts = new Map<string, number>();
    for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const id of ids) if (!gone.has(id)) assert.ok((counts.get(id) ?? 0) >= 1, `${id} listed`);
    for (const id of ids) if (!gone.has(id) && !moved.has(id)) assert.equal(counts.get(id), 1, `${id} listed once`);
  });

  it('a run of over a million ids (with the finer lookup directory) finds each of them and no absent one', () => {
    const n = 1_100_000;
    const all = randomBytes(n * 32);
    const id = (i: number) => all.subarray(i * 32, i * 32 + 32);
    const m = new SortedIdMap();
    for (let i = 0; i < n; i++) m.add(id(i), i, i * 3, i % 1000);
    m.compact();
    for (let i = 0; i < n; i += 3) assert.deepEqual(m.get(id(i)), [i, i * 3, i % 1000]);
    for (let k = 0; k < 20_000; k++) {
      const near = Buffer.from(id(k * 13));
      near[31] ^= 1;
      assert.equal(m.has(near), false);
      assert.equal(m.has(randomBytes(32)), false);
    }
    for (let i = 0; i < n; i += 5) assert.ok(m.delete(id(i)));
    m.compact();
    for (let i = 0; i < n; i += 3) assert.equal(m.has(id(i)), i % 5 !== 0);
    assert.equal(m.size, n - Math.ceil(n / 5));
  });

  it('holds under 40 bytes per id at 200,000 ids with a terabyte\'s field widths', () => {
    const m = new SortedIdMap();
    const n = 200_000;
    // 65,536 packs of 16 MiB, objects up to 8 MiB: 16 + 25 + 23 bits of fields.
    for (let i = 0; i < n; i++) m.add(randomBytes(32), i % 65_536, (i * 40_503) % (1 << 25), (i * 7919) % (1 << 23));
    m.compact();
    assert.ok(m.bytes / n < 40, `${(m.bytes / n).toFixed(1)} B per id`);
  });

  describe('append (bulk adds, settled by one sort and merge)', () => {
    /** A small PRNG with a fixed seed (mulberry32), so that a failure repeats. */
    function rng(seed: number): () => number {
      let a = seed >>> 0;
      return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }
    /** Ids that collide often (a pool of 200, few two-byte prefixes, shared middles) or are fresh. */
    function idSource(rand: () => number): () => string {
      const pool = Array.from({ length: 200 }, (_, i) => {
        const b = Buffer.alloc(32, 0x5c);
        b[0] = i % 3;
        b[1] = i % 2;
        b[17] = (i * 7) % 5;
        b[31] = i;
        return b.toString('hex');
      });
      return () => {
        if (rand() < 0.6) return pool[Math.floor(rand() * pool.length)]!;
        const b = Buffer.alloc(32);
        for (let j = 0; j < 32; j++) b[j] = Math.floor(rand() * 256);
        if (rand() < 0.5) b[0] = b[1] = 0;
        return b.toString('hex');
      };
    }
    const fields = (rand: () => number): [number, number, number] => [Math.floor(rand() * 2 ** 32), Math.floor(rand() * 1000), Math.floor(rand() * 2 ** 20)];

    /** The reference: a Map (the first entry of an id wins) and the list of rejected appends, in order. */
    class Model {
      readonly map = new Map<string, [number, number, number]>();
      readonly rejected: [string, number, number, number][] = [];
      add(id: string, f: [number, number, number]): boolean {
        if (this.map.has(id)) return false;
        this.map.set(id, f);
        return true;
      }
      append(id: string, f: [number, number, number]): void {
        if (!this.add(id, f)) this.rejected.push([id, ...f]);
      }
    }
    function mapWith(minDelta?: number, minTail?: number): { m: SortedIdMap; dups: [string, number, number, number][] } {
      const dups: [string, number, number, number][] = [];
      const m = new SortedIdMap(minDelta, (id, a, b, c) => dups.push([id.toString('hex'), a, b, c]), minTail);
      return { m, dups };
    }
    /** Every id of the model and some absent ones looked up; full listings in id order. */
    function same(m: SortedIdMap, ref: Model, dups: unknown[], rand: () => number, ctx: string): void {
      assert.equal(m.size, ref.map.size, `${ctx}: size`);
      assert.deepEqual(dups, ref.rejected, `${ctx}: duplicates`);
      for (const [id, f] of ref.map) assert.deepEqual(m.get(id), f, `${ctx}: get ${id}`);
      for (let k = 0; k < 50; k++) {
        const b = Buffer.alloc(32);
        for (let j = 0; j < 32; j++) b[j] = Math.floor(rand() * 256);
        assert.equal(m.has(b), ref.map.has(b.toString('hex')), `${ctx}: absent`);
      }
      const sorted = [...ref.map.keys()].sort();
      assert.deepEqual([...m.ids()], sorted, `${ctx}: ids in order`);
      assert.deepEqual(m.page(undefined, sorted.length + 1), sorted, `${ctx}: page`);
      const seen = new Map<string, [number, number, number]>();
      m.forEach((id, a, b, c) => seen.set(id.toString('hex'), [a, b, c]));
      assert.deepEqual(new Map([...seen].sort()), new Map([...ref.map].sort()), `${ctx}: forEach`);
    }

    it('append then lookup: one large tail into an empty map, and into a map with a run and a delta', () => {
      const rand = rng(12);
      const next = idSource(rand);
      for (const [before, n, minTail] of [
        [0, 50_000, 1 << 20],
        [20_000, 60_000, 1 << 20],
        [3_000, 5, 1 << 20],
        [0, 50_000, 1000],
        [20_000, 60_000, 7000],
      ] as const) {
        const { m, dups } = mapWith(undefined, minTail);
        const ref = new Model();
        for (let i = 0; i < before; i++) {
          const id = next();
          const f = fields(rand);
          assert.equal(m.add(id, ...f), ref.add(id, f));
        }
        if (before) m.compact();
        // Some in the delta too (added after the merge).
        for (let i = 0; i < before / 10; i++) {
          const id = next();
          const f = fields(rand);
          assert.equal(m.add(id, ...f), ref.add(id, f));
        }
        for (let i = 0; i < n; i++) {
          const id = next();
          const f = fields(rand);
          m.append(id, ...f);
          ref.append(id, f);
        }
        same(m, ref, dups, rand, `${before} then ${n} appended (minTail ${minTail})`);
      }
    });

    it('appended duplicates of present, deleted and earlier appended ids: the first entry wins, the rest are reported in order', () => {
      const rand = rng(7);
      for (const [minDelta, minTail] of [
        [1, 1 << 20],
        [3, 5],
        [16, 1 << 20],
        [1 << 14, 40],
      ] as const) {
        const { m, dups } = mapWith(minDelta, minTail);
        const ref = new Model();
        const ids = Array.from({ length: 300 }, (_, i) => {
          const b = Buffer.alloc(32, 0x11);
          b[0] = i % 2;
          b[1] = 0;
          b[31] = i % 256;
          b[30] = i >> 8;
          return b.toString('hex');
        });
        for (let i = 0; i < 300; i += 2) {
          const f = fields(rand);
          assert.equal(m.add(ids[i]!, ...f), ref.add(ids[i]!, f));
        }
        m.compact();
        // Deleted ids of the run: appending them adds them again.
        for (let i = 0; i < 300; i += 6) assert.equal(m.delete(ids[i]!), ref.map.delete(ids[i]!));
        // Every id three times, in a shuffled order: present, deleted, absent, and appended twice before.
        const order = [...ids, ...ids, ...ids];
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        for (const id of order) {
          const f = fields(rand);
          m.append(id, ...f);
          ref.append(id, f);
        }
        same(m, ref, dups, rand, `minDelta ${minDelta}, minTail ${minTail}`);
        assert.equal(dups.length, 600 + 150 - 50);
      }
    });

    it('interleaved add, append, delete, lookups, listings and merges behave as the reference', () => {
      for (const seed of [1, 2, 3, 4, 5, 6]) {
        const rand = rng(seed);
        const next = idSource(rand);
        const minDelta = [1, 2, 5, 40, 300, 1 << 14][seed - 1]!;
        // Tails settled by append itself once as large as the run (and minTail), or only by other calls.
        const minTail = [1, 7, 1 << 20, 64, 1000, 3][seed - 1]!;
        const { m, dups } = mapWith(minDelta, minTail);
        const ref = new Model();
        for (let step = 0; step < 4000; step++) {
          const r = rand();
          if (r < 0.02) {
            // A burst of appends, as an open reads a pack.
            const n = Math.floor(rand() * 2000);
            for (let i = 0; i < n; i++) {
              const id = next();
              const f = fields(rand);
              m.append(id, ...f);
              ref.append(id, f);
            }
          } else if (r < 0.45) {
            const id = next();
            const f = fields(rand);
            m.append(id, ...f);
            ref.append(id, f);
          } else if (r < 0.6) {
            const id = next();
            const f = fields(rand);
            assert.equal(m.add(id, ...f), ref.add(id, f), `seed ${seed} step ${step}: add`);
          } else if (r < 0.75) {
            const id = next();
            assert.equal(m.delete(id), ref.map.delete(id), `seed ${seed} step ${step}: delete`);
          } else if (r < 0.9) {
            const id = next();
            assert.deepEqual(m.get(id), ref.map.get(id), `seed ${seed} step ${step}: get`);
          } else if (r < 0.93) m.compact();
          else if (r < 0.96) assert.equal(m.size, ref.map.size, `seed ${seed} step ${step}: size`);
          else if (r < 0.98) {
            const after = rand() < 0.3 ? undefined : next();
            const want = [...ref.map.keys()].filter((id) => after === undefined || id > after).sort().slice(0, 20);
            assert.deepEqual(m.page(after, 20), want, `seed ${seed} step ${step}: page`);
          } else m.settle();
        }
        same(m, ref, dups, rand, `seed ${seed}`);
      }
    });

    it('appends while a listing is open are settled without disturbing it, and listed in order after', () => {
      const rand = rng(99);
      const next = idSource(rand);
      const { m, dups } = mapWith(8);
      const ref = new Model();
      for (let i = 0; i < 5000; i++) {
        const id = next();
        const f = fields(rand);
        m.append(id, ...f);
        ref.append(id, f);
      }
      const start = [...ref.map.keys()];
      const got: string[] = [];
      for (const id of m.ids()) {
        got.push(id);
        if (got.length % 500 === 0) {
          for (let i = 0; i < 3000; i++) {
            const x = next();
            const f = fields(rand);
            m.append(x, ...f);
            ref.append(x, f);
          }
          assert.equal(m.has(start[0]!), true);
        }
      }
      for (const id of start) assert.ok(got.includes(id), `${id} listed`);
      same(m, ref, dups, rand, 'after the listing');
    });
  });
});
