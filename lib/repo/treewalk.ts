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
import { addressOf, ObjectAddress, subtreeOf, TreeEntry, TreeRef, TreeRefs } from '../format/tree.js';
import { directoryEntries, findEntry, NodeLoader } from '../format/treesplit.js';

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

/** Every entry below a directory tree, depth-first, each directory before its contents. */
export async function* walkTree(load: NodeLoader, tree: TreeRef, prefix: Buffer): AsyncGenerator<WalkedEntry> {
  const at = addressOf(tree);
  for await (const entry of directoryEntries(load, at.id, at.key)) {
    const path = Buffer.concat([prefix, Buffer.from('/'), entry.name]);
    yield { path, entry };
    if (entry.type === 'dir') yield* walkTree(load, subtreeOf(entry)!, path);
  }
}

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
