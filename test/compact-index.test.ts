/**
 * CompactPackIndex (lib/store/compact-index.ts) with entries appended in
 * bulk by addPack: copies of an object in several packs are kept in the
 * order their packs were added (the first is the one reads use), whether
 * the maps settle after each pack or once after all, and every reader of
 * the copies sees them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompactPackIndex, type PackedEntry } from '../lib/store/compact-index.js';

const id = (n: number) => n.toString(16).padStart(64, '0');
const pack = (c: string) => c.repeat(64);
const e = (n: number, offset: number): PackedEntry => ({ kind: 'chunk', id: id(n), offset, length: 10 + n });

function build(settleEach: boolean): CompactPackIndex {
  const ix = new CompactPackIndex();
  const none = new Set<string>();
  ix.addPack(pack('c'), [e(1, 0), e(2, 100)], none, 1000);
  if (settleEach) ix.has('chunk', id(1));
  ix.addPack(pack('a'), [e(1, 200), e(3, 300), e(3, 301)], none, 1000);
  if (settleEach) ix.has('chunk', id(1));
  ix.addPack(pack('b'), [e(1, 400), e(2, 500)], new Set(), 1000);
  return ix;
}

describe('CompactPackIndex with bulk-appended packs', () => {
  for (const settleEach of [false, true]) {
    it(`keeps copies in the order packs were added (settled ${settleEach ? 'after each pack' : 'once'})`, () => {
      const ix = build(settleEach);
      assert.deepEqual(
        ix.locations('chunk', id(1)).map((l) => [l.pack[0], l.offset]),
        [
          ['c', 0],
          ['a', 200],
          ['b', 400],
        ],
      );
      assert.deepEqual(
        ix.locations('chunk', id(3)).map((l) => l.offset),
        [300, 301],
      );
      assert.equal(ix.objects, 3);
      // entriesOf lists every copy in its pack.
      assert.deepEqual(
        ix.entriesOf(new Set([pack('b')])).get(pack('b'))!.map((x) => x.offset).sort(),
        [400, 500],
      );
    });

    it(`settleCopies and forgetPacks see appended copies (settled ${settleEach ? 'after each pack' : 'once'})`, () => {
      const ix = build(settleEach);
      ix.settleCopies(new Set([pack('c')]));
      assert.equal(ix.get('chunk', id(1))!.pack, pack('a'));
      assert.equal(ix.get('chunk', id(2))!.pack, pack('b'));
      const iy = build(settleEach);
      iy.forgetPacks(new Set([pack('c')]));
      assert.deepEqual(
        iy.locations('chunk', id(1)).map((l) => l.pack[0]),
        ['a', 'b'],
      );
      assert.equal(iy.get('chunk', id(2))!.offset, 500);
    });
  }
});
