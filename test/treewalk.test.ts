/**
 * The tree walker (lib/repo/treewalk.ts walkTree) over real encoded tree
 * nodes (lib/format/treesplit.ts writeDirectory, directories of several
 * pages included): the same entries in the same depth-first order as a
 * plain recursive walk over directoryEntries; every node read once; reads of
 * subdirectories overlap (read-ahead) but stay within WALK_HELD_MAX; a
 * walk stopped early closes cleanly; a missing subtree fails the walk where
 * it is reached, after everything before it was yielded.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { encodeTreeNode, TreeEntry, TreeNode } from '../lib/format/tree.js';
import { directoryEntries, LEAF_MAX, NodeLoader, writeDirectory } from '../lib/format/treesplit.js';
import { walkTree, WALK_HELD_MAX } from '../lib/repo/treewalk.js';

const T0 = { sec: 1_700_000_000, nsec: 0 };
const SPLIT_KEY = Buffer.alloc(32, 7);

function file(name: string): TreeEntry {
  const data = Buffer.from(name);
  return { name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: T0, ctime: T0, size: data.length, data };
}

function dir(name: string, subtree: string): TreeEntry {
  return { name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: T0, ctime: T0, size: 0, subtree };
}

const byName = (a: TreeEntry, b: TreeEntry) => Buffer.compare(a.name, b.name);

class Nodes {
  readonly nodes = new Map<string, TreeNode>();
  reads = new Map<string, number>();
  inFlight = 0;
  maxInFlight = 0;
  delayMs = 0;
  put = async (n: TreeNode) => {
    const id = createHash('sha256').update(encodeTreeNode(n)).digest('hex');
    this.nodes.set(id, n);
    return id;
  };
  load: NodeLoader = async (id) => {
    this.reads.set(id, (this.reads.get(id) ?? 0) + 1);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      const n = this.nodes.get(id);
      if (!n) throw new Error(`no node ${id}`);
      return n;
    } finally {
      this.inFlight--;
    }
  };
}

/** root: 40 directories d00..d39 of 30 files and 3 subdirectories of 5 files each, one directory of LEAF_MAX + 500 files (several pages), a few files. */
async function buildTree(m: Nodes): Promise<string> {
  const top: TreeEntry[] = [];
  for (let d = 0; d < 40; d++) {
    const entries: TreeEntry[] = [];
    for (let f = 0; f < 30; f++) entries.push(file(`f${d}-${f}`));
    for (let s = 0; s < 3; s++) {
      const leaf: TreeEntry[] = [];
      for (let f = 0; f < 5; f++) leaf.push(file(`g${d}-${s}-${f}`));
      entries.push(dir(`sub${s}`, await writeDirectory(leaf.sort(byName), SPLIT_KEY, m.put)));
    }
    top.push(dir(`d${String(d).padStart(2, '0')}`, await writeDirectory(entries.sort(byName), SPLIT_KEY, m.put)));
  }
  const big: TreeEntry[] = [];
  for (let f = 0; f < LEAF_MAX + 500; f++) big.push(file(`big${String(f).padStart(5, '0')}`));
  top.push(dir('large', await writeDirectory(big.sort(byName), SPLIT_KEY, m.put)));
  for (const n of ['a', 'zz']) top.push(file(n));
  return writeDirectory(top.sort(byName), SPLIT_KEY, m.put);
}

/** The walk as a plain recursion: the order walkTree must keep. */
async function referenceWalk(load: NodeLoader, id: string, prefix: string, out: string[]): Promise<void> {
  for await (const e of directoryEntries(load, id)) {
    const p = `${prefix}/${e.name.toString()}`;
    out.push(p);
    if (e.type === 'dir') await referenceWalk(load, e.subtree!, p, out);
  }
}

describe('walkTree', () => {
  it('yields every entry depth-first in the order of a recursive walk, reading each node once, with bounded overlapping reads', async () => {
    const m = new Nodes();
    const root = await buildTree(m);
    const want: string[] = [];
    await referenceWalk(m.load, root, '', want);
    assert.equal(want.length, 40 * (1 + 30 + 3 + 15) + 1 + LEAF_MAX + 500 + 2);
    assert.ok(m.nodes.get([...m.nodes.keys()].find((id) => m.nodes.get(id)!.kind === 'index')!), 'the large directory has an index node');

    m.reads.clear();
    m.delayMs = 2;
    const got: string[] = [];
    for await (const w of walkTree(m.load, root, Buffer.alloc(0))) got.push(w.path.toString());
    assert.deepEqual(got, want);
    assert.equal(m.reads.size, m.nodes.size, 'every node read');
    for (const [id, n] of m.reads) assert.equal(n, 1, `node ${id} read once`);
    assert.ok(m.maxInFlight > 1, `reads overlap (at most ${m.maxInFlight} in flight)`);
    assert.ok(m.maxInFlight <= WALK_HELD_MAX + 1, `${m.maxInFlight} reads in flight`);
  });

  it('a walk stopped early closes cleanly; a missing subtree fails where it is reached', async () => {
    const m = new Nodes();
    const root = await buildTree(m);
    let n = 0;
    for await (const _ of walkTree(m.load, root, Buffer.alloc(0))) if (++n === 100) break;
    assert.equal(n, 100);

    // Remove d05's tree: the walk yields everything up to and including d05's entry, then fails.
    const rootNode = m.nodes.get(root)!;
    assert.equal(rootNode.kind, 'leaf');
    const d05 = rootNode.kind === 'leaf' ? rootNode.entries.find((e) => e.name.toString() === 'd05') : undefined;
    assert.ok(d05?.subtree);
    m.nodes.delete(d05.subtree);
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const w of walkTree(m.load, root, Buffer.alloc(0))) seen.push(w.path.toString());
      })(),
      /no node/,
    );
    assert.equal(seen[seen.length - 1], '/d05');
    assert.equal(seen.filter((p) => p.startsWith('/d04/')).length, 48, 'd04 was walked whole before');
  });
});
