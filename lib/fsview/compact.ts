/**
 * Compact copies of decoded tree nodes, for the file-system view's cache.
 *
 * A decoded node's byte fields (names, inline data, targets, keys) are views
 * into the object's plaintext, so caching the node as decoded keeps the
 * whole plaintext alive, inline file contents included, although looking up
 * paths, listing directories and answering stat need none of that content.
 * A compact node copies every byte field it keeps into memory of its own,
 * leaves out the inline data of non-empty files (the entry keeps its size;
 * `hasDroppedData` tells such an entry, whose content is read from the full
 * node when the file is opened) and leaves out optional fields that are not
 * set. `compactSize` estimates what it holds, for the cache's byte budget.
 */
import type { ChunkRef, PageRef, TreeEntry, TreeNode } from '../format/tree.js';

const EMPTY = Buffer.alloc(0);
const copy = (b: Uint8Array): Buffer => Buffer.from(b);

/** An entry of a compact node without the inline content it had: read it from the full node. */
export function hasDroppedData(e: TreeEntry): boolean {
  return e.type === 'file' && e.data === undefined && e.chunks === undefined;
}

function compactRef(r: ChunkRef): ChunkRef {
  const c: ChunkRef = { id: r.id, length: r.length };
  if (r.key !== undefined) c.key = copy(r.key);
  if (r.offset !== undefined) c.offset = r.offset; // a bundle reference (format version 4)
  return c;
}

function compactEntry(e: TreeEntry): TreeEntry {
  const c: TreeEntry = { name: copy(e.name), type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, ctime: e.ctime, size: e.size };
  if (e.user !== undefined) c.user = e.user;
  if (e.group !== undefined) c.group = e.group;
  if (e.inode !== undefined) c.inode = e.inode;
  if (e.nlink !== undefined) c.nlink = e.nlink;
  if (e.rdev !== undefined) c.rdev = e.rdev;
  if (e.chunks !== undefined) c.chunks = e.chunks.map(compactRef);
  // An empty file keeps its (empty) data: nothing is dropped, so nothing needs reading again.
  if (e.data !== undefined && e.data.length === 0) c.data = EMPTY;
  if (e.subtree !== undefined) c.subtree = e.subtree;
  if (e.subtreeKey !== undefined) c.subtreeKey = copy(e.subtreeKey);
  if (e.target !== undefined) c.target = copy(e.target);
  if (e.link !== undefined) c.link = copy(e.link);
  if (e.xattrs !== undefined) c.xattrs = e.xattrs.map(([n, v]) => [copy(n), copy(v)]);
  return c;
}

function compactPage(p: PageRef): PageRef {
  const c: PageRef = { first: copy(p.first), tree: p.tree, count: p.count };
  if (p.key !== undefined) c.key = copy(p.key);
  return c;
}

/** The node without inline file contents, holding no part of its plaintext. */
export function compactTree(node: TreeNode): TreeNode {
  return node.kind === 'leaf' ? { kind: 'leaf', entries: node.entries.map(compactEntry) } : { kind: 'index', pages: node.pages.map(compactPage) };
}

/** Bytes of a JavaScript object with a few fields, a Buffer, an id string: rough, for a budget. */
const OBJECT = 64;
const BUFFER = 96;
const ID = 80;

const bytesOf = (b: Uint8Array | undefined): number => (b === undefined ? 0 : BUFFER + b.length);

/** A rough in-memory size of a tree node (compact or not), for the cache's byte budget. */
export function compactSize(node: TreeNode): number {
  let bytes = OBJECT;
  if (node.kind === 'index') {
    for (const p of node.pages) bytes += OBJECT + ID + bytesOf(p.first) + bytesOf(p.key);
    return bytes;
  }
  for (const e of node.entries) {
    bytes += 2 * OBJECT + 2 * OBJECT + bytesOf(e.name) + bytesOf(e.data) + bytesOf(e.target) + bytesOf(e.link) + bytesOf(e.subtreeKey);
    if (e.subtree !== undefined) bytes += ID;
    if (e.chunks) for (const r of e.chunks) bytes += OBJECT + ID + bytesOf(r.key);
    if (e.xattrs) for (const [n, v] of e.xattrs) bytes += OBJECT + bytesOf(n) + bytesOf(v);
  }
  return bytes;
}
