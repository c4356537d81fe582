/**
 * The diff engine (lib/diff/engine.ts) on trees written the way backups
 * write them: the Merkle skip (a real repository behind a store that counts
 * tree reads: a diff reads only the trees on the changed paths, as many for a
 * big tree as for a small one), paged directories, and random trees and
 * mutations checked against a naive diff of the two flattened snapshots.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { DiffChange, diffSnapshots, metadataChanges, visibleType } from '../lib/diff/engine.js';
import type { Kind } from '../lib/format/version.js';
import { encodeTreeNode, TreeEntry, TreeNode } from '../lib/format/tree.js';
import { LEAF_MAX, NodeLoader, writeDirectory } from '../lib/format/treesplit.js';
import { Repository } from '../lib/repo/repository.js';
import { walkTree } from '../lib/repo/treewalk.js';
import { LocalStore } from '../lib/store/local.js';
import type { ObjectStore, StoreOptions } from '../lib/store/store.js';
import { TEST_KDF } from './helpers/kdf.js';
import { tempDir, TempDir } from './helpers/tmp.js';


const T0 = { sec: 1_700_000_000, nsec: 0 };

function file(name: string, content: string, extra: Partial<TreeEntry> = {}): TreeEntry {
  const data = Buffer.from(content);
  return { name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: T0, ctime: T0, size: data.length, data, ...extra };
}

function dir(name: string, subtree: string, extra: Partial<TreeEntry> = {}): TreeEntry {
  return { name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: T0, ctime: T0, size: 0, subtree, ...extra };
}

const byName = (a: TreeEntry, b: TreeEntry) => Buffer.compare(a.name, b.name);

/** Counts the tree objects read through it; everything else passes through. */
class CountingStore implements ObjectStore {
  treeReads = 0;
  constructor(private readonly inner: ObjectStore) {}
  get location() {
    return this.inner.location;
  }
  put(kind: Kind, id: string, data: Uint8Array, opts?: StoreOptions) {
    return this.inner.put(kind, id, data, opts);
  }
  flush() {
    return this.inner.flush?.() ?? Promise.resolve();
  }
  get(kind: Kind, id: string, opts?: StoreOptions) {
    if (kind === 'tree') this.treeReads++;
    return this.inner.get(kind, id, opts);
  }
  has(kind: Kind, id: string, opts?: StoreOptions) {
    return this.inner.has(kind, id, opts);
  }
  hasMany(kind: Kind, ids: readonly string[], opts?: StoreOptions) {
    return this.inner.hasMany(kind, ids, opts);
  }
  list(kind: Kind, opts?: StoreOptions) {
    return this.inner.list(kind, opts);
  }
  delete(kind: Kind, id: string, opts?: StoreOptions) {
    return this.inner.delete(kind, id, opts);
  }
  close() {
    return this.inner.close();
  }
}

const show = (c: DiffChange) => `${c.marker} ${c.path.toString('latin1')}`;

async function collect(load: NodeLoader, rootBefore: string, rootAfter: string, p: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for await (const c of diffSnapshots({ load, rootBefore, rootAfter, path: p.map((s) => Buffer.from(s)) })) out.push(show(c));
  return out;
}

describe('diff engine: Merkle skip in a real repository', () => {
  let tmp: TempDir;
  let store: CountingStore;
  let repo: Repository;

  before(async () => {
    tmp = await tempDir();
    const dirPath = path.join(tmp.path, 'repo');
    store = new CountingStore(await LocalStore.create(dirPath));
    repo = await Repository.init(store, { type: 'local', dir: dirPath }, 'pass', undefined, { kdf: TEST_KDF });
  });
  after(async () => {
    await repo?.close();
    await tmp?.remove();
  });

  const put = async (entries: TreeEntry[]) =>
    writeDirectory([...entries].sort(byName), repo.keys.chunker, async (node) => (await repo.putTree(node)).id);

  /**
   * A tree `depth` directories deep with `fanout` subdirectories per level,
   * `files` files in each bottom directory, and a directory of `bigDir`
   * entries (paged) at the top; `changed` replaces the content of the file
   * d0/d0/.../f0 and of one entry in the big directory.
   */
  async function build(depth: number, fanout: number, files: number, bigDir: number, changed: boolean): Promise<string> {
    const level = async (d: number, onPath: boolean): Promise<string> => {
      if (d === depth) {
        return put(Array.from({ length: files }, (_, i) => file(`f${i}`, onPath && changed && i === 0 ? 'changed' : `content ${i}`)));
      }
      const subs: TreeEntry[] = [];
      for (let i = 0; i < fanout; i++) subs.push(dir(`d${i}`, await level(d + 1, onPath && i === 0)));
      return put(subs);
    };
    const big = Array.from({ length: bigDir }, (_, i) => file(`e${String(i).padStart(6, '0')}`, changed && i === 7777 ? 'new' : 'old'));
    const top = await level(0, true);
    return put([dir('tree', top), dir('big', await put(big))]);
  }

  async function countedDiff(rootA: string, rootB: string): Promise<{ changes: string[]; reads: number }> {
    store.treeReads = 0;
    const changes = await collect((id) => repo.getTree(id), rootA, rootB);
    return { changes, reads: store.treeReads };
  }

  it('reads only the trees on the changed paths, as many for a big tree as for a small one', async () => {
    const depth = 4;
    const small = await countedDiff(await build(depth, 2, 5, 3 * LEAF_MAX, false), await build(depth, 2, 5, 3 * LEAF_MAX, true));
    const big = await countedDiff(await build(depth, 6, 30, 6 * LEAF_MAX, false), await build(depth, 6, 30, 6 * LEAF_MAX, true));
    const expected = ['M /big/e007777', 'M /tree/d0/d0/d0/d0/f0'];
    assert.deepEqual(small.changes, expected);
    assert.deepEqual(big.changes, expected);
    // Both sides: root, the depth+1 directories down to the file, and the big
    // directory's index and the one page holding the changed entry.
    const onPaths = 2 * (1 + (depth + 1) + 2);
    assert.equal(small.reads, onPaths);
    assert.equal(big.reads, onPaths, 'the same reads whatever the size (6^4 directories, 38,880 files, 24,576 paged entries)');
    // A walk of one side of the big tree reads every one of its trees.
    store.treeReads = 0;
    let n = 0;
    for await (const _ of walkTree((id) => repo.getTree(id), await build(depth, 6, 30, 6 * LEAF_MAX, false), Buffer.alloc(0))) n++;
    assert.ok(n > 60_000, `${n} entries`);
    assert.ok(store.treeReads > 1500, `a full walk reads ${store.treeReads} trees`);
  });

  it('reads nothing below the roots when the snapshots are the same', async () => {
    const root = await build(3, 3, 3, 10, false);
    const r = await countedDiff(root, root);
    assert.deepEqual(r.changes, []);
    assert.equal(r.reads, 0);
  });
});

// ---- random trees against a naive diff ----

/** Trees in memory, ids as a content hash; `load` counts reads. */
class NodeMap {
  readonly nodes = new Map<string, TreeNode>();
  reads = 0;
  readonly splitKey = Buffer.alloc(32, 7);
  put = async (n: TreeNode) => {
    const id = createHash('sha256').update(encodeTreeNode(n)).digest('hex');
    this.nodes.set(id, n);
    return id;
  };
  load: NodeLoader = async (id) => {
    this.reads++;
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  };
}

/** A directory as plain data: name -> file content | symlink | fifo | subdirectory. */
type Spec = Map<string, { kind: 'file'; content: string; mode: number } | { kind: 'symlink'; target: string } | { kind: 'fifo' } | { kind: 'dir'; dir: Spec; mode: number }>;

async function writeSpec(m: NodeMap, spec: Spec): Promise<string> {
  const entries: TreeEntry[] = [];
  for (const [name, v] of spec) {
    const base = { name: Buffer.from(name, 'latin1'), uid: 0, gid: 0, mtime: T0, ctime: T0, size: 0 };
    if (v.kind === 'file') entries.push(file(name, v.content, { name: base.name, mode: v.mode }));
    else if (v.kind === 'dir') entries.push({ ...base, type: 'dir', mode: v.mode, subtree: await writeSpec(m, v.dir) });
    else if (v.kind === 'symlink') entries.push({ ...base, type: 'symlink', mode: 0o777, target: Buffer.from(v.target), size: v.target.length });
    else entries.push({ ...base, type: 'fifo', mode: 0o644 });
  }
  return writeDirectory(entries.sort(byName), m.splitKey, m.put);
}

function cloneSpec(s: Spec): Spec {
  const out: Spec = new Map();
  for (const [k, v] of s) out.set(k, v.kind === 'dir' ? { ...v, dir: cloneSpec(v.dir) } : { ...v });
  return out;
}

/** A small PRNG (mulberry32), so a failing seed reproduces. */
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

function randomSpec(r: () => number, depth: number, bigDir: boolean): Spec {
  const s: Spec = new Map();
  const n = 1 + Math.floor(r() * 6);
  for (let i = 0; i < n; i++) {
    // Names with bytes that are not UTF-8, and names that sort around "/" and "-".
    const name = ['a', 'a-b', 'a.b', 'b', 'caf\xe9', 'z', `n${i}`][Math.floor(r() * 7)]!;
    const x = r();
    if (x < 0.35 && depth > 0) s.set(name, { kind: 'dir', dir: randomSpec(r, depth - 1, false), mode: 0o755 });
    else if (x < 0.8) s.set(name, { kind: 'file', content: `c${Math.floor(r() * 3)}`, mode: 0o644 });
    else if (x < 0.9) s.set(name, { kind: 'symlink', target: `t${Math.floor(r() * 2)}` });
    else s.set(name, { kind: 'fifo' });
  }
  if (bigDir) {
    const big: Spec = new Map();
    for (let i = 0; i < LEAF_MAX + 1500; i++) big.set(`e${String(i).padStart(5, '0')}`, { kind: 'file', content: 'x', mode: 0o644 });
    s.set('big', { kind: 'dir', dir: big, mode: 0o755 });
  }
  return s;
}

function mutate(r: () => number, s: Spec, depth = 0): void {
  for (const [k, v] of [...s]) {
    const x = r();
    if (v.kind === 'dir' && k === 'big') {
      // A few changes in the paged directory: removed, added, changed entries.
      for (let j = 0; j < 3; j++) {
        const i = Math.floor(r() * (LEAF_MAX + 1500));
        const name = `e${String(i).padStart(5, '0')}`;
        const y = r();
        if (y < 0.3) v.dir.delete(name);
        else if (y < 0.6) v.dir.set(`${name}x`, { kind: 'file', content: 'added', mode: 0o644 });
        else v.dir.set(name, { kind: 'file', content: 'changed', mode: 0o644 });
      }
      continue;
    }
    if (x < 0.1) s.delete(k);
    else if (x < 0.2 && v.kind === 'file') v.content += '!';
    else if (x < 0.3 && (v.kind === 'file' || v.kind === 'dir')) v.mode = 0o600;
    else if (x < 0.35) s.set(k, { kind: 'symlink', target: 'now a link' });
    else if (x < 0.4 && v.kind !== 'dir') s.set(k, { kind: 'dir', dir: randomSpec(r, 1, false), mode: 0o755 });
    else if (v.kind === 'dir' && x < 0.8 && depth < 4) mutate(r, v.dir, depth + 1);
  }
  if (r() < 0.3) s.set(`new${Math.floor(r() * 100)}`, { kind: 'file', content: 'new', mode: 0o644 });
}

/** The same rules as the engine, computed from two complete listings. */
async function naiveDiff(m: NodeMap, a: string, b: string): Promise<string[]> {
  const flat = async (root: string) => {
    const out = new Map<string, TreeEntry>();
    for await (const w of walkTree(m.load, root, Buffer.alloc(0))) out.set(w.path.toString('latin1'), w.entry);
    return out;
  };
  const [x, y] = [await flat(a), await flat(b)];
  const out: string[] = [];
  for (const p of new Set([...x.keys(), ...y.keys()])) {
    const e = x.get(p);
    const f = y.get(p);
    if (!e) out.push(`+ ${p}`);
    else if (!f) out.push(`- ${p}`);
    else if (visibleType(e) !== visibleType(f)) out.push(`T ${p}`);
    else {
      const content =
        (e.type === 'symlink' && !e.target!.equals(f.target!)) || (e.type === 'file' && !e.data!.equals(f.data!));
      if (content) out.push(`M ${p}`);
      else if (metadataChanges(e, f).length) out.push(`U ${p}`);
    }
  }
  return out.sort();
}

describe('diff engine against a naive diff', () => {
  it('random trees and changes, with paged directories and non-UTF-8 names', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.boolean(), async (seed, bigDir) => {
        const r = rng(seed);
        const m = new NodeMap();
        const before = randomSpec(r, 3, bigDir);
        const afterSpec = cloneSpec(before);
        mutate(r, afterSpec);
        const a = await writeSpec(m, before);
        const b = await writeSpec(m, afterSpec);
        const got: string[] = [];
        let last: Buffer | undefined;
        for await (const c of diffSnapshots({ load: m.load, rootBefore: a, rootAfter: b })) {
          got.push(show(c));
          // Depth-first in name order: each path after the previous one, component by component.
          if (last) assert.ok(comparePaths(last, c.path) < 0, `${show(c)} after ${last.toString('latin1')}`);
          last = c.path;
        }
        assert.deepEqual([...got].sort(), await naiveDiff(m, a, b));
      }),
      { numRuns: 30 },
    );
  });

  it('a paged directory against the same entries in one leaf, and a path inside it', async () => {
    const m = new NodeMap();
    const names = Array.from({ length: LEAF_MAX + 10 }, (_, i) => `e${String(i).padStart(5, '0')}`);
    const paged = await writeDirectory(names.map((n) => file(n, 'x')), m.splitKey, m.put);
    assert.equal(m.nodes.get(paged)!.kind, 'index');
    const small = await writeDirectory(names.slice(0, 9).map((n) => file(n, 'x')), m.splitKey, m.put);
    const rootA = await writeDirectory([dir('d', paged)], m.splitKey, m.put);
    const rootB = await writeDirectory([dir('d', small)], m.splitKey, m.put);
    const removed = names.slice(9).map((n) => `- /d/${n}`);
    assert.deepEqual(await collect(m.load, rootA, rootB), removed);
    assert.deepEqual(
      await collect(m.load, rootB, rootA),
      removed.map((l) => l.replace('-', '+')),
    );
    assert.deepEqual(await collect(m.load, rootA, rootB, ['d', 'e04000']), ['- /d/e04000']);
    assert.deepEqual(await collect(m.load, rootA, rootB, ['d', 'e00001']), []);
    await assert.rejects(collect(m.load, rootA, rootB, ['nothing']), /in neither snapshot/);
  });

  it('a damaged index (overlapping pages, wrong first names, nested too deep) is CORRUPT, not a wrong answer', async () => {
    const m = new NodeMap();
    const leaf = async (names: string[]) => m.put({ kind: 'leaf', entries: names.map((n) => file(n, 'x')) });
    const p1 = await leaf(['a', 'c']);
    const p2 = await leaf(['b', 'd']); // overlaps p1
    const overlapping = await m.put({ kind: 'index', pages: [{ first: Buffer.from('a'), tree: p1, count: 2 }, { first: Buffer.from('b'), tree: p2, count: 2 }] });
    const misnamed = await m.put({ kind: 'index', pages: [{ first: Buffer.from('x'), tree: p1, count: 2 }] });
    const other = await leaf(['a']);
    // Index nodes nested deeper than any writer makes them (ids are hashes: a cycle cannot be built).
    let chain = p1;
    for (let i = 0; i < 12; i++) chain = await m.put({ kind: 'index', pages: [{ first: Buffer.from('a'), tree: chain, count: 2 }] });
    for (const bad of [overlapping, misnamed, chain]) {
      const root = await writeDirectory([dir('d', bad)], m.splitKey, m.put);
      const good = await writeDirectory([dir('d', other)], m.splitKey, m.put);
      await assert.rejects(collect(m.load, good, root), (e: Error & { code?: string }) => e.code === 'CORRUPT');
    }
  });

  it('a hardlink counts as a file with the content of the file it links to', async () => {
    const m = new NodeMap();
    const link = (name: string, to: string): TreeEntry => ({ ...file(name, ''), type: 'hardlink', data: undefined, link: Buffer.from(to), nlink: 2 });
    const a = await writeDirectory([file('a', 'one', { nlink: 2 }), link('b', 'a'), file('c', 'same')], m.splitKey, m.put);
    // b becomes the file holding the content and a the link (same content): no content change for either.
    const b = await writeDirectory([link('a', 'b'), file('b', 'one', { nlink: 2 }), link('c', 'b')], m.splitKey, m.put);
    assert.deepEqual(await collect(m.load, a, b), ['M /c']);
  });
});

/** Depth-first order: component by component, bytewise. */
function comparePaths(a: Buffer, b: Buffer): number {
  const x = a.toString('latin1').split('/');
  const y = b.toString('latin1').split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = Buffer.compare(Buffer.from(x[i]!, 'latin1'), Buffer.from(y[i]!, 'latin1'));
    if (c) return c;
  }
  return x.length - y.length;
}
