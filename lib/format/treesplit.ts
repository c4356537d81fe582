/**
 * Large directories: how a sorted list of entries becomes tree nodes, and how
 * readers walk them.
 *
 * A directory with at most LEAF_MAX entries and at most PAGE_BYTES of entry
 * weight (inline data and chunk references) is a single leaf. A larger one is
 * cut into leaf pages after every entry whose split hash is zero in its low
 * SPLIT_BITS bits (about 1 page per 2^SPLIT_BITS entries), or when a page
 * reaches PAGE_MAX entries or PAGE_BYTES of weight. If more than LEAF_MAX
 * pages result, the page references are cut the same way (hashing each page's
 * first name at the next level) into index nodes, up to a single root. The
 * split hash is HMAC-SHA256(chunker key, "obnam-tree-split" || level byte ||
 * name); because cut points depend on names, not positions, adding or removing
 * a name rewrites only its own page and the index path above it.
 *
 * Readers accept any paging; these rules only make writers deduplicate well.
 */
import { hmacSha256 } from '../crypto/hash.js';
import { ObnamError } from '../errors.js';
import { compareNames, PageRef, ObjectAddress, TreeEntry, TreeNode } from './tree.js';

export const LEAF_MAX = 4096;
export const SPLIT_BITS = 10;
export const PAGE_MAX = 8192;
export const PAGE_BYTES = 4 << 20;
/** Deepest index nesting a reader accepts (2^13 pages of 2^13: far beyond any real directory). */
export const MAX_DEPTH = 8;

const LABEL = Buffer.from('obnam-tree-split', 'latin1');
const SPLIT_MASK = (1 << SPLIT_BITS) - 1;

export function isSplitPoint(splitKey: Uint8Array, level: number, name: Uint8Array): boolean {
  const h = hmacSha256(splitKey, LABEL, Buffer.from([level]), name);
  return (h.readUInt16BE(0) & SPLIT_MASK) === 0;
}

/**
 * An entry's share of a page's size: its inline data and 40 bytes per chunk
 * reference (72 with its content key, version 3); a bundle reference (one ref
 * with an offset, version 4) counts as one chunk reference.
 */
export function entryWeight(e: TreeEntry): number {
  const chunks = e.chunks?.length ?? 0;
  return (e.data?.length ?? 0) + (chunks && e.chunks![0]!.key ? 72 : 40) * chunks;
}

function cutPages<T>(
  items: T[],
  nameOf: (t: T) => Uint8Array,
  weightOf: (t: T) => number,
  splitKey: Uint8Array,
  level: number,
): T[][] {
  const pages: T[][] = [];
  let page: T[] = [];
  let weight = 0;
  for (const item of items) {
    page.push(item);
    weight += weightOf(item);
    if (page.length >= PAGE_MAX || weight >= PAGE_BYTES || isSplitPoint(splitKey, level, nameOf(item))) {
      pages.push(page);
      page = [];
      weight = 0;
    }
  }
  if (page.length) pages.push(page);
  return pages;
}

/** A page reference to a stored node (with its content key in version 3). */
function pageRef(first: Buffer, at: string | ObjectAddress, count: number): PageRef {
  if (typeof at === 'string') return { first, tree: at, count };
  const ref: PageRef = { first, tree: at.id, count };
  if (at.key) ref.key = at.key;
  return ref;
}

/**
 * Writes one directory's entries (sorted by name, unique) as tree nodes and
 * returns what `putNode` returned for the root node. `putNode` stores one
 * node and returns its id, or its address (id and, in format version 3,
 * content key, which page references then carry).
 */
export async function writeDirectory<A extends string | ObjectAddress>(
  entries: TreeEntry[],
  splitKey: Uint8Array,
  putNode: (node: TreeNode) => Promise<A>,
): Promise<A> {
  if (entries.length <= LEAF_MAX && entries.reduce((n, e) => n + entryWeight(e), 0) <= PAGE_BYTES) {
    return putNode({ kind: 'leaf', entries });
  }
  let refs: PageRef[] = [];
  for (const page of cutPages(entries, (e) => e.name, entryWeight, splitKey, 0)) {
    refs.push(pageRef(page[0]!.name, await putNode({ kind: 'leaf', entries: page }), page.length));
  }
  for (let level = 1; refs.length > LEAF_MAX; level++) {
    const next: PageRef[] = [];
    for (const group of cutPages(refs, (r) => r.first, () => 0, splitKey, level)) {
      const count = group.reduce((n, r) => n + r.count, 0);
      next.push(pageRef(group[0]!.first, await putNode({ kind: 'index', pages: group }), count));
    }
    refs = next;
  }
  return putNode({ kind: 'index', pages: refs });
}

/**
 * Loads one tree node by id; `key` is its content key (format version 3,
 * taken from the reference that named it; undefined in versions 1 and 2).
 */
export type NodeLoader = (id: string, key?: Uint8Array) => Promise<TreeNode>;

/**
 * Every entry of a directory, in name order, loading pages as it goes. Pages
 * are checked against their index entries (first name, order, count), so a
 * damaged or hostile index cannot duplicate or reorder entries.
 */
export async function* directoryEntries(load: NodeLoader, id: string, key?: Uint8Array): AsyncGenerator<TreeEntry> {
  for await (const page of directoryPages(load, id, key)) yield* page;
}

/**
 * A directory's entries a leaf page at a time (what directoryEntries yields
 * one by one), checked the same way: for walks over millions of entries,
 * one await per page rather than per entry.
 */
export async function* directoryPages(load: NodeLoader, id: string, key?: Uint8Array): AsyncGenerator<readonly TreeEntry[]> {
  yield* leafPages(load, id, key, 0, undefined, undefined);
}

async function* leafPages(
  load: NodeLoader,
  id: string,
  key: Uint8Array | undefined,
  depth: number,
  first: Uint8Array | undefined,
  next: Uint8Array | undefined,
): AsyncGenerator<readonly TreeEntry[]> {
  if (depth > MAX_DEPTH) throw new ObnamError('CORRUPT', `tree ${id}: index nodes nested too deep`);
  const node = await load(id, key);
  const bad = (why: string) => new ObnamError('CORRUPT', `tree ${id}: ${why}`);
  if (node.kind === 'leaf') {
    if (first && (node.entries.length === 0 || compareNames(node.entries[0]!.name, first) !== 0)) throw bad('page does not start with its index name');
    if (next && node.entries.length && compareNames(node.entries[node.entries.length - 1]!.name, next) >= 0) throw bad('page overlaps the next one');
    if (node.entries.length) yield node.entries;
    return;
  }
  if (first && compareNames(node.pages[0]!.first, first) !== 0) throw bad('index does not start with its name');
  for (let i = 0; i < node.pages.length; i++) {
    const page = node.pages[i]!;
    const limit = node.pages[i + 1]?.first ?? next;
    let count = 0;
    for await (const entries of leafPages(load, page.tree, page.key, depth + 1, page.first, limit)) {
      count += entries.length;
      yield entries;
    }
    if (count !== page.count) throw bad(`page ${page.tree} holds ${count} entries, the index says ${page.count}`);
  }
}

/** The entry named `name` in a directory, loading only the pages on its path. */
export async function findEntry(load: NodeLoader, id: string, name: Uint8Array, key?: Uint8Array): Promise<TreeEntry | undefined> {
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    const node = await load(id, key);
    if (node.kind === 'leaf') {
      let lo = 0;
      let hi = node.entries.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const c = compareNames(node.entries[mid]!.name, name);
        if (c === 0) return node.entries[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
      }
      return undefined;
    }
    // The last page whose first name is <= name.
    let lo = 0;
    let hi = node.pages.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (compareNames(node.pages[mid]!.first, name) <= 0) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    id = node.pages[found]!.tree;
    key = node.pages[found]!.key;
  }
  throw new ObnamError('CORRUPT', `tree ${id}: index nodes nested too deep`);
}
