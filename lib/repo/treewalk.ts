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
import type { TreeEntry } from '../format/tree.js';
import { directoryEntries, findEntry, NodeLoader } from '../format/treesplit.js';

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
  | { found: true; tree?: string; entry?: TreeEntry }
  | { found: false; depth: number; notDir: boolean };

/** Looks up `components` below the root tree, loading only the nodes on the path. */
export async function lookupPath(load: NodeLoader, rootTree: string, components: readonly Uint8Array[]): Promise<PathLookup> {
  let tree = rootTree;
  let entry: TreeEntry | undefined;
  for (let i = 0; i < components.length; i++) {
    entry = await findEntry(load, tree, components[i]!);
    if (!entry) return { found: false, depth: i, notDir: false };
    if (entry.type === 'dir') tree = entry.subtree!;
    else if (i < components.length - 1) return { found: false, depth: i, notDir: true };
  }
  return { found: true, tree: entry === undefined || entry.type === 'dir' ? tree : undefined, entry };
}

/** The entry at `components` below the root tree, or undefined for the root itself; NOT_FOUND naming the path otherwise. */
export async function resolvePath(
  load: NodeLoader,
  rootTree: string,
  components: Buffer[],
): Promise<{ tree?: string; entry?: TreeEntry }> {
  const r = await lookupPath(load, rootTree, components);
  if (r.found) return { tree: r.tree, entry: r.entry };
  if (r.notDir) throw new ObnamError('NOT_FOUND', `/${components.slice(0, r.depth + 1).map(String).join('/')} is not a directory`);
  throw new ObnamError('NOT_FOUND', `/${components.map(String).join('/')} is not in this snapshot`);
}

/** Every entry below a directory tree, depth-first, each directory before its contents. */
export async function* walkTree(load: NodeLoader, tree: string, prefix: Buffer): AsyncGenerator<WalkedEntry> {
  for await (const entry of directoryEntries(load, tree)) {
    const path = Buffer.concat([prefix, Buffer.from('/'), entry.name]);
    yield { path, entry };
    if (entry.type === 'dir') yield* walkTree(load, entry.subtree!, path);
  }
}

/** The objects reachable from trees: tree nodes (pages included) and chunks. */
export interface Reachable {
  trees: IdMembership;
  chunks: IdMembership;
}

/**
 * Adds to `reach` every tree node and chunk reachable from the tree `root`,
 * each directory once: directories already in reach.trees are not walked
 * again (what they reach was added with them). A node that cannot be loaded
 * throws, unless `skipMissing` and it is NOT_FOUND (then it is left out).
 */
export async function addReachable(load: NodeLoader, root: string, reach: Reachable, skipMissing = false): Promise<void> {
  if (reach.trees.has(root)) return;
  const recordingLoad: NodeLoader = (id) => {
    reach.trees.add(id);
    return load(id);
  };
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    try {
      for await (const e of directoryEntries(recordingLoad, dir)) {
        for (const c of e.chunks ?? []) reach.chunks.add(c.id);
        if (e.type === 'dir' && e.subtree && !reach.trees.has(e.subtree)) stack.push(e.subtree);
      }
    } catch (e) {
      if (!(skipMissing && e instanceof ObnamError && e.code === 'NOT_FOUND')) throw e;
    }
  }
}
