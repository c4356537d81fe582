/**
 * The one tree walker: every engine that reads a snapshot's trees (ls,
 * restore, fsck, diff, dump, the file-system view, the collector) walks them
 * with what is here, over a NodeLoader (usually an ObjectReader's getTree,
 * cached or counted as the engine needs). A directory's entries in name
 * order across its pages (directoryEntries), a path resolved to its entry
 * (lookupPath: the only place paths are resolved; resolvePath for the
 * commands), everything below a directory depth-first (walkTree), and what
 * trees reach (addReachable: garbage collection's mark and sweep).
 */
import { ObnamError } from '../errors.js';
import { addressOf, ObjectAddress, subtreeOf, TreeEntry, TreeNode, TreeRef, TreeRefs } from '../format/tree.js';
import { directoryPages, findEntry, NodeLoader } from '../format/treesplit.js';

export type { ObjectAddress, TreeRef } from '../format/tree.js';

export { directoryEntries, MAX_DEPTH } from '../format/treesplit.js';
export type { NodeLoader } from '../format/treesplit.js';
/** What a reachable set needs: the exact IdSet or an IdPrefixSet. */
interface IdMembership {
  add(id: string | Uint8Array): boolean;
  has(id: string | Uint8Array): boolean;
}

/** Splits a snapshot path (absolute or relative to the root) into components; USAGE error for "..". */
export function snapshotPathComponents(p: string): Buffer[] {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new ObnamError('USAGE', `path ${p} must not contain ".."`);
  return parts.map((c) => Buffer.from(c, 'utf8'));
}

export interface WalkedEntry {
  /** Snapshot-relative path with a leading "/". */
  path: Buffer;
  entry: TreeEntry;
}

/**
 * Where a path lookup ended: at its entry (none for the root itself; `tree`
 * is the directory's tree when it is one), or short of it: component
 * `depth` is absent, or (notDir) is not a directory but has components
 * below it. A hardlink is an entry like any other (not followed).
 */
export type PathLookup =
  | { found: true; tree?: ObjectAddress; entry?: TreeEntry }
  | { found: false; depth: number; notDir: boolean };

/** Looks up `components` below the root tree, loading only the nodes on the path. */
export async function lookupPath(load: NodeLoader, rootTree: TreeRef, components: readonly Uint8Array[]): Promise<PathLookup> {
  let tree = addressOf(rootTree);
  let entry: TreeEntry | undefined;
  for (let i = 0; i < components.length; i++) {
    entry = await findEntry(load, tree.id, components[i]!, tree.key);
    if (!entry) return { found: false, depth: i, notDir: false };
    if (entry.type === 'dir') tree = subtreeOf(entry)!;
    else if (i < components.length - 1) return { found: false, depth: i, notDir: true };
  }
  return { found: true, tree: entry === undefined || entry.type === 'dir' ? tree : undefined, entry };
}

/** The entry at `components` below the root tree, or undefined for the root itself; NOT_FOUND naming the path otherwise. */
export async function resolvePath(
  load: NodeLoader,
  rootTree: TreeRef,
  components: Buffer[],
): Promise<{ tree?: ObjectAddress; entry?: TreeEntry }> {
  const r = await lookupPath(load, rootTree, components);
  if (r.found) return { tree: r.tree, entry: r.entry };
  if (r.notDir) throw new ObnamError('NOT_FOUND', `/${components.slice(0, r.depth + 1).map(String).join('/')} is not a directory`);
  throw new ObnamError('NOT_FOUND', `/${components.map(String).join('/')} is not in this snapshot`);
}

/** Subdirectory trees a walk loads ahead of its position, at most: overlaps the reads (a round trip each on a remote store) with the walk. */
export const WALK_READ_AHEAD = 16;
/** Loaded-ahead trees a walk holds at most, over all open directories (a design number: each a decoded node of at most a page). */
export const WALK_HELD_MAX = 8 * WALK_READ_AHEAD;

/**
 * Every entry below a directory tree, depth-first, each directory before its
 * contents. Iterative (a stack of directories being listed, each a page at a
 * time), so an entry costs no more at depth 20 than at depth 1. The next
 * WALK_READ_AHEAD subdirectories of the directory being listed are loaded
 * ahead, so their reads overlap with the walk instead of coming one by one.
 */
export async function* walkTree(load: NodeLoader, tree: TreeRef, prefix: Buffer): AsyncGenerator<WalkedEntry> {
  interface Listing {
    pages: AsyncGenerator<readonly TreeEntry[]>;
    prefix: Buffer;
    entries: readonly TreeEntry[];
    at: number;
    /** Entries before this index of `entries` were considered for loading ahead. */
    scanned: number;
  }
  const ahead = new Map<string, Promise<TreeNode>>();
  const loadThrough: NodeLoader = (id, key) => {
    const p = ahead.get(id);
    if (!p) return load(id, key);
    ahead.delete(id);
    return p;
  };
  const open = (t: TreeRef, p: Buffer): Listing => {
    const a = addressOf(t);
    return { pages: directoryPages(loadThrough, a.id, a.key), prefix: p, entries: [], at: 0, scanned: 0 };
  };
  /** Loads ahead the next subdirectories of `l`, the listing being walked, up to WALK_READ_AHEAD beyond its position. */
  const readAhead = (l: Listing) => {
    const end = Math.min(l.entries.length, l.at + WALK_READ_AHEAD);
    for (; l.scanned < end && ahead.size < WALK_HELD_MAX; l.scanned++) {
      const e = l.entries[l.scanned]!;
      if (e.type !== 'dir') continue;
      const a = subtreeOf(e)!;
      if (ahead.has(a.id)) continue;
      const p = load(a.id, a.key);
      p.catch(() => undefined); // reported where it is used, if it is
      ahead.set(a.id, p);
    }
  };
  const stack: Listing[] = [open(tree, prefix)];
  try {
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.at === top.entries.length) {
        const r = await top.pages.next();
        if (r.done) stack.pop();
        else {
          top.entries = r.value;
          top.at = top.scanned = 0;
        }
        continue;
      }
      if (top.scanned < top.at + WALK_READ_AHEAD) readAhead(top);
      const entry = top.entries[top.at++]!;
      const path = Buffer.concat([top.prefix, SLASH, entry.name]);
      yield { path, entry };
      if (entry.type === 'dir') stack.push(open(subtreeOf(entry)!, path));
    }
  } finally {
    // A walk stopped early (a consumer's break, an error) closes the listings still open.
    for (const l of stack) await l.pages.return(undefined);
  }
}

const SLASH = Buffer.from('/');

/** The objects reachable from trees: tree nodes (pages included) and chunks. */
export interface Reachable {
  trees: IdMembership;
  chunks: IdMembership;
}

/** The ids one tree node names (garbage collection reads only these: format-spec/sharing.md 10.5). */
export type RefsLoader = (id: string) => Promise<TreeRefs>;

/**
 * Adds to `reach` every tree node and chunk reachable from the tree `root`,
 * each node once: nodes already in reach.trees are not read again (what they
 * reach was added with them). A node that cannot be loaded throws, unless
 * `skipMissing` and it is NOT_FOUND (then it is left out, and the rest of
 * what the nodes above it name is still added).
 */
export async function addReachable(loadRefs: RefsLoader, root: string, reach: Reachable, skipMissing = false): Promise<void> {
  if (reach.trees.has(root)) return;
  reach.trees.add(root);
  const stack = [root];
  while (stack.length) {
    const id = stack.pop()!;
    let refs: TreeRefs;
    try {
      refs = await loadRefs(id);
    } catch (e) {
      if (skipMissing && e instanceof ObnamError && e.code === 'NOT_FOUND') continue;
      throw e;
    }
    for (const c of refs.chunks) reach.chunks.add(c);
    for (const t of refs.trees) {
      if (reach.trees.has(t)) continue;
      reach.trees.add(t);
      stack.push(t);
    }
  }
}
