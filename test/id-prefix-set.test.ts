/**
 * IdPrefixSet and IdList, garbage collection's compact id collections: the
 * set agrees with a JS Set of hex strings on random ids (the all-zero id
 * included) across growth, exact at width 32, by 16-byte prefixes by
 * default and by 8-byte ones at width 8; the list keeps every id in order,
 * and drain() reads it once, emptying it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { IdList, IdPrefixSet } from '../lib/util/id-prefix-set.js';

describe('IdPrefixSet and IdList', () => {
  it('adds, finds and lists like a Set of hex ids, through growth', () => {
    const set = new IdPrefixSet(4, { width: 32 });
    const ref = new Set<string>();
    const ids = Array.from({ length: 5000 }, () => randomBytes(32).toString('hex'));
    ids.push('0'.repeat(64), 'ff'.repeat(32));
    for (const [i, id] of ids.entries()) {
      assert.equal(set.add(i % 2 ? id : Buffer.from(id, 'hex')), true);
      ref.add(id);
      if (i % 7 === 0) assert.equal(set.add(id), false, 'a second add reports it present');
    }
    assert.equal(set.size, ref.size);
    for (const id of ids) assert.ok(set.has(id));
    for (let i = 0; i < 2000; i++) assert.equal(set.has(randomBytes(32)), false);
    // Ids sharing their first four bytes (the hash) collide and must still be told apart.
    const prefix = randomBytes(4);
    const twins = Array.from({ length: 50 }, () => Buffer.concat([prefix, randomBytes(28)]));
    for (const t of twins) set.add(t);
    for (const t of twins) assert.ok(set.has(t));
    assert.equal(set.has(Buffer.concat([prefix, randomBytes(28)])), false);
    const listed = [...set];
    assert.equal(listed.length, ref.size + twins.length);
    assert.equal(new Set(listed).size, listed.length);
    assert.deepEqual(set.sorted(), [...listed].sort());
    for (const id of ref) assert.ok(listed.includes(id));
  });

  it('keeps 16-byte prefixes for membership only, and refuses to list them', () => {
    const set = new IdPrefixSet(10);
    const ids = Array.from({ length: 3000 }, () => randomBytes(32));
    for (const id of ids) set.add(id);
    for (const id of ids) assert.ok(set.has(id));
    for (let i = 0; i < 2000; i++) assert.equal(set.has(randomBytes(32)), false);
    assert.equal(set.size, 3000);
    assert.throws(() => [...set]);
  });

  it('keeps 8-byte prefixes: finds every id added, and ids differing only after byte 8 count as present', () => {
    const set = new IdPrefixSet(10, { width: 8 });
    const ids = Array.from({ length: 3000 }, () => randomBytes(32));
    for (const id of ids) set.add(id);
    for (const id of ids) assert.ok(set.has(id) && set.has(id.toString('hex')));
    for (let i = 0; i < 2000; i++) assert.equal(set.has(randomBytes(32)), false);
    assert.ok(set.has(Buffer.concat([ids[0]!.subarray(0, 8), randomBytes(24)])), 'membership is by the first 8 bytes');
    assert.equal(set.add(Buffer.concat([ids[1]!.subarray(0, 8), randomBytes(24)])), false);
    assert.equal(set.size, 3000);
  });

  it('IdList.drain yields every id once, in order, and leaves the list empty (also when stopped early)', () => {
    const ids = Array.from({ length: 140_000 }, () => randomBytes(32).toString('hex'));
    const list = new IdList();
    for (const id of ids) list.push(id);
    const out: string[] = [];
    for (const b of list.drain()) out.push(Buffer.from(b).toString('hex'));
    assert.deepEqual(out, ids);
    assert.equal(list.size, 0);
    assert.throws(() => list.push(ids[0]!), /drained/);
    const early = new IdList();
    for (const id of ids) early.push(id);
    for (const b of early.drain()) if (b[0]! > 0) break;
    assert.equal(early.size, 0);
  });

  it('IdList keeps every id in order across blocks', () => {
    const list = new IdList();
    const ids = Array.from({ length: 70_000 }, (_, i) => Buffer.alloc(32, i % 251).toString('hex').slice(0, 56) + i.toString(16).padStart(8, '0'));
    for (const id of ids) list.push(id);
    assert.equal(list.size, ids.length);
    assert.deepEqual([...list], ids);
  });
});
