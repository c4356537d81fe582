/**
 * The file-system view's small parts on their own: the chunk map's binary
 * search, the object cache (merging concurrent loads, its size bound, not
 * keeping failures), compact tree nodes (no plaintext, no inline contents
 * kept), the inode table's bound, snapshot directory names, and
 * /proc mountinfo parsing.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import type { SnapshotInfo } from '../lib/repo/repository.js';
import { encodeTreeNode, TreeEntry, TreeNode } from '../lib/format/tree.js';
import { ObjectCache } from '../lib/fsview/cache.js';
import { compactSize, compactTree, hasDroppedData } from '../lib/fsview/compact.js';
import { decodeTreeObject } from '../lib/repo/views.js';
import { ChunkMap } from '../lib/fsview/chunkmap.js';
import { InodeTable } from '../lib/fsview/inodes.js';
import { nameSnapshots } from '../lib/fsview/snapshots.js';
import { parseMountinfo } from '../mount/mountinfo.js';

describe('ChunkMap', () => {
  it('finds the chunk holding every offset, as a linear scan does', () => {
    const lengths = Array.from({ length: 200 }, () => randomInt(1, 5000));
    const map = new ChunkMap(lengths.map((length, i) => ({ id: String(i), length })));
    const size = lengths.reduce((a, b) => a + b, 0);
    assert.equal(map.size, size);
    const linear = (off: number) => {
      let start = 0;
      for (let i = 0; i < lengths.length; i++) {
        if (off < start + lengths[i]!) return i;
        start += lengths[i]!;
      }
      return -1;
    };
    for (let i = 0; i < 2000; i++) {
      const off = randomInt(size);
      assert.equal(map.indexAt(off), linear(off), `offset ${off}`);
    }
    // Boundaries: the first byte of each chunk belongs to it, the byte before to the previous one.
    for (let i = 1; i < lengths.length; i++) {
      assert.equal(map.indexAt(map.start(i)), i);
      assert.equal(map.indexAt(map.start(i) - 1), i - 1);
    }
    assert.deepEqual(map.range(0, size), [0, lengths.length - 1]);
    assert.deepEqual(map.range(map.start(5), map.start(6)), [5, 5]);
  });

  it('handles a single chunk', () => {
    const map = new ChunkMap([{ id: 'a', length: 10 }]);
    assert.equal(map.indexAt(0), 0);
    assert.equal(map.indexAt(9), 0);
    assert.deepEqual(map.range(3, 7), [0, 0]);
  });
});

describe('ObjectCache', () => {
  const value = (n: number) => Buffer.alloc(n);

  it('merges concurrent loads of one key into one', async () => {
    const cache = new ObjectCache(1000);
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const load = async () => {
      loads++;
      await gate;
      return value(10);
    };
    const all = Promise.all(Array.from({ length: 5 }, () => cache.get('k', load, (b) => b.length)));
    release();
    const got = await all;
    assert.equal(loads, 1);
    assert.ok(got.every((b) => b === got[0]));
    assert.deepEqual(cache.stats(), { hits: 0, joined: 4, loads: 1, bytes: 10 });
    await cache.get('k', load, (b) => b.length);
    assert.equal(cache.stats().hits, 1);
  });

  it('does not keep failures: the next request loads again', async () => {
    const cache = new ObjectCache(1000);
    let calls = 0;
    const load = async () => {
      if (++calls === 1) throw new Error('transient');
      return value(1);
    };
    await assert.rejects(cache.get('k', load, (b) => b.length), /transient/);
    assert.equal((await cache.get('k', load, (b) => b.length)).length, 1);
    assert.equal(calls, 2);
  });

  it('stays within its byte budget, evicting the least recently used', async () => {
    const cache = new ObjectCache(100);
    for (let i = 0; i < 10; i++) await cache.get(`k${i}`, async () => value(30), (b) => b.length);
    assert.ok(cache.stats().bytes <= 100);
    assert.ok(cache.has('k9') && !cache.has('k0'));
    // Something bigger than the whole cache is returned, not kept.
    assert.equal((await cache.get('huge', async () => value(500), (b) => b.length)).length, 500);
    assert.ok(!cache.has('huge'));
  });
});

describe('compact tree nodes', () => {
  const t = { sec: 1_700_000_000, nsec: 5 };
  const base = { mode: 0o644, uid: 1, gid: 2, mtime: t, ctime: t };
  const entries: TreeEntry[] = [
    ...Array.from({ length: 50 }, (_, i): TreeEntry => ({ ...base, name: Buffer.from(`f${String(i).padStart(3, '0')}`), type: 'file', size: 3000, data: Buffer.alloc(3000, i) })),
    { ...base, name: Buffer.from('g-chunked'), type: 'file', size: 10, chunks: [{ id: 'ab'.repeat(32), length: 10 }] },
    { ...base, name: Buffer.from('h-empty'), type: 'file', size: 0, data: Buffer.alloc(0) },
    { ...base, name: Buffer.from('i-link'), type: 'symlink', size: 0, target: Buffer.from('f000'), xattrs: [[Buffer.from('user.a'), Buffer.from('v')]] },
    { ...base, name: Buffer.from('j-dir'), type: 'dir', size: 0, subtree: 'cd'.repeat(32), mode: 0o755 },
  ];

  it('hold none of the plaintext and no inline contents, and keep everything else', () => {
    const plaintext = encodeTreeNode({ kind: 'leaf', entries });
    const decoded = decodeTreeObject('t', plaintext);
    const leaf = (n: TreeNode) => (n.kind === 'leaf' ? n.entries : assert.fail('not a leaf'));
    // As decoded, byte fields are views of the plaintext (what a cache of decoded nodes kept alive).
    assert.equal(leaf(decoded)[0]!.name.buffer, plaintext.buffer);
    const compact = leaf(compactTree(decoded));
    assert.equal(compact.length, entries.length);
    for (const e of compact) {
      for (const b of [e.name, e.data, e.target, e.link, ...(e.xattrs ?? []).flat()]) {
        if (b && b.length) assert.notEqual(b.buffer, plaintext.buffer, `${e.name.toString()}: a byte field shares the plaintext`);
      }
    }
    for (let i = 0; i < 50; i++) {
      assert.equal(compact[i]!.data, undefined);
      assert.ok(hasDroppedData(compact[i]!));
      const { data: _d, ...rest } = entries[i]!;
      assert.deepEqual({ ...compact[i]!, name: Buffer.from(compact[i]!.name) }, rest);
    }
    assert.deepEqual(compact.slice(50), entries.slice(50).map((e) => (e.name.toString() === 'h-empty' ? { ...e, data: Buffer.alloc(0) } : e)));
    assert.ok(!compact.slice(50).some(hasDroppedData));
    // The estimate of what it holds is a fraction of the 150 KB of inline contents it left out.
    assert.ok(compactSize(compactTree(decoded)) < 50 * 3000 / 4, `compact size ${compactSize(compactTree(decoded))}`);
    assert.ok(compactSize(decoded) > 50 * 3000);
  });
});

describe('InodeTable', () => {
  const p = (s: string) => Buffer.from(s);

  it('remembers at most its capacity, the most recently used, and never gives two paths one number', () => {
    const t = new InodeTable({ capacity: 3, linkedCapacity: 2 });
    const a = t.of(0, p('a'));
    assert.equal(t.of(0, p('a')), a);
    assert.notEqual(t.of(1, p('a')), a, 'the same path in another snapshot is another file');
    const seen = new Set<number>([a, t.of(1, p('a'))]);
    t.of(0, p('a')); // used again: the most recent
    for (const n of ['b', 'c']) {
      const ino = t.of(0, p(n));
      assert.ok(!seen.has(ino));
      seen.add(ino);
    }
    assert.equal(t.size, 3);
    assert.equal(t.of(0, p('a')), a, 'recently used: kept');
    const b2 = t.of(1, p('a'));
    assert.ok(!seen.has(b2), 'forgotten, then seen again: a new number, not one in use');
    assert.equal(t.size, 3);
  });

  it('keeps files with several links apart, so a walk of plain files does not push them out', () => {
    const t = new InodeTable({ capacity: 2, linkedCapacity: 2 });
    const link = t.of(0, p('d/hard1'), true);
    for (let i = 0; i < 100; i++) t.of(0, p(`f${i}`));
    assert.equal(t.of(0, p('d/hard1'), true), link);
    assert.equal(t.size, 3);
  });

  it('remembers everything when unbounded', () => {
    const t = new InodeTable({ capacity: Infinity });
    for (let i = 0; i < 1000; i++) t.of(0, p(`f${i}`));
    assert.equal(t.size, 1000);
    assert.throws(() => new InodeTable({ capacity: 0 }), RangeError);
  });
});

describe('snapshot names', () => {
  const snap = (id: string, sec: number, nsec = 0) => ({ id, time: { sec, nsec } }) as SnapshotInfo;

  it('are UTC times to the second, oldest first, with short ids only where two share a second', () => {
    const t = Date.UTC(2026, 10, 29, 10, 14, 32) / 1000;
    const names = nameSnapshots([snap('c'.repeat(64), t + 60), snap('b'.repeat(64), t, 5), snap('a'.repeat(64), t, 900)]);
    assert.deepEqual(
      names.map((n) => n.name),
      ['2026-11-29T10:14:32Z-bbbbbbbb', '2026-11-29T10:14:32Z-aaaaaaaa', '2026-11-29T10:15:32Z'],
    );
    assert.deepEqual(
      names.map((n) => n.index),
      [0, 1, 2],
    );
  });

  it('stay unique even when short ids collide', () => {
    const names = nameSnapshots([snap('ab'.repeat(32), 0), snap('ab'.repeat(31) + 'cd', 0)]).map((n) => n.name);
    assert.equal(new Set(names).size, 2);
  });
});

describe('mountinfo', () => {
  it('parses mount points with escaped characters and the file system type', () => {
    const text =
      '36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - ext4 /dev/root rw\n' +
      '90 36 0:39 / /tmp/m ro,nosuid,nodev,relatime - fuse.obnam obnam ro,user_id=0,group_id=0\n';
    assert.deepEqual(parseMountinfo(text), [
      { id: 36, mountpoint: '/mnt/with space', fstype: 'ext4', source: '/dev/root' },
      { id: 90, mountpoint: '/tmp/m', fstype: 'fuse.obnam', source: 'obnam' },
    ]);
  });
});
