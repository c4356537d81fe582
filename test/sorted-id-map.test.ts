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
});
