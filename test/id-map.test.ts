/** IdMap and IdSet (lib/util/id-map.ts) against a plain Map, by property tests, and their size per id. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IdMap, IdSet } from '../lib/util/id-map.js';

// Ids whose first bytes collide often, so probe chains and backward-shift deletion are exercised.
const idArb = fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 40 })).map(([h, t]) => {
  const b = Buffer.alloc(32);
  b[0] = h;
  b[31] = t;
  return b.toString('hex');
});

describe('IdMap', () => {
  it('behaves as a Map under any sequence of adds and deletes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), idArb, fc.nat()), { maxLength: 400 }), (ops) => {
        const m = new IdMap(2);
        const ref = new Map<string, number>();
        for (const [add, id, v] of ops) {
          if (add) {
            const pos = m.add(id, v, v + 1);
            assert.equal(pos >= 0, !ref.has(id));
            if (!ref.has(id)) ref.set(id, v);
          } else {
            assert.equal(m.delete(id), ref.delete(id));
          }
          assert.equal(m.size, ref.size);
        }
        for (const [id, v] of ref) {
          const p = m.find(id);
          assert.ok(p >= 0, id);
          assert.equal(m.field(p, 0), v);
          assert.equal(m.field(p, 1), v + 1);
          assert.equal(m.idHex(p), id);
        }
        const live = [...m.positions()].map((p) => m.idHex(p)).sort();
        assert.deepEqual(live, [...ref.keys()].sort());
        assert.deepEqual(
          [...m.sortedPositions()].map((p) => m.idHex(p)),
          [...ref.keys()].sort(),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('holds 100,000 random ids in at most 64 bytes each (3 fields)', () => {
    const m = new IdMap(3);
    const ids = Array.from({ length: 100_000 }, () => randomBytes(32));
    for (const [i, id] of ids.entries()) m.add(id, i, i, i);
    for (const [i, id] of ids.entries()) assert.equal(m.field(m.find(id), 2), i);
    assert.ok(m.bytes / ids.length <= 64, `${(m.bytes / ids.length).toFixed(1)} bytes per id`);
  });
});

describe('IdSet', () => {
  it('adds, finds, deletes and iterates hex ids', () => {
    const s = new IdSet();
    const a = randomBytes(32).toString('hex');
    const b = randomBytes(32).toString('hex');
    assert.equal(s.add(a), true);
    assert.equal(s.add(a), false);
    s.add(b);
    assert.equal(s.has(b), true);
    assert.equal(s.delete(a), true);
    assert.deepEqual([...s], [b]);
    assert.equal(s.size, 1);
  });
});
