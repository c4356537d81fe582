/**
 * Differences between two snapshots (or one path in them), in path order:
 * added (+), removed (-), content changed (M: a file's data or a symlink's
 * target), metadata only (U: mode, owner, times, link count, xattrs, device
 * number, hardlink path) and type changed (T; the contents of a directory that
 * became something else are then listed as removed, of one that appeared as
 * added). A hardlink entry counts as a file: its content is the content of
 * the file it links to.
 *
 * Merkle skip: trees are content-addressed, so two directories with the same
 * tree id hold the same entries all the way down and are not read. The same
 * holds for the pages of a large directory (lib/format/treesplit.ts): the
 * two directories are walked as two cursors over page references and
 * entries, and a page reference present on both sides at the same position is
 * passed over unread. Diffing snapshots that differ in a few files therefore
 * reads only the tree nodes on the paths to those files.
 */
import { ObnamError, throwIfAborted } from '../errors.js';
import { addressOf, compareNames, ObjectAddress, sameChunkRefs, subtreeOf, TreeEntry, TreeNode, TreeRef } from '../format/tree.js';
import { MAX_DEPTH, NodeLoader, resolvePath, walkTree } from '../repo/treewalk.js';

export type DiffMarker = '+' | '-' | 'M' | 'U' | 'T';

/** What differs between two entries at the same path: 'content', 'type', or a metadata field name. */
export type DiffField =
  | 'content'
  | 'type'
  | 'mode'
  | 'uid'
  | 'gid'
  | 'user'
  | 'group'
  | 'mtime'
  | 'ctime'
  | 'nlink'
  | 'xattrs'
  | 'rdev'
  | 'link';

export interface DiffChange {
  marker: DiffMarker;
  /** Snapshot-relative path with a leading "/" (raw bytes). */
  path: Buffer;
  /** The entry in the first snapshot (absent for "+"). */
  before?: TreeEntry;
  /** The entry in the second snapshot (absent for "-"). */
  after?: TreeEntry;
  /** For M, U and T: what differs. */
  fields?: DiffField[];
}

export interface DiffInput {
  /** Reads one tree node of the repository (both snapshots are in the same repository). */
  load: NodeLoader;
  /** Root trees of the first and the second snapshot. */
  /** The two snapshots' root trees (with their content keys in format version 3). */
  rootBefore: TreeRef;
  rootAfter: TreeRef;
  /** Only this path (components below the root); the whole snapshot if empty. */
  path?: Buffer[];
  signal?: AbortSignal;
}

/** The type as users see it: a hardlink entry is a file. */
export function visibleType(e: TreeEntry): Exclude<TreeEntry['type'], 'hardlink'> {
  return e.type === 'hardlink' ? 'file' : e.type;
}

const SLASH = Buffer.from('/');
const join = (prefix: Buffer, name: Buffer) => Buffer.concat([prefix, SLASH, name]);

/** Every change from `rootBefore` to `rootAfter`, below `path`, in path order (a directory before its contents). */
export async function* diffSnapshots(input: DiffInput): AsyncGenerator<DiffChange> {
  const components = input.path ?? [];
  const differ = new Differ(input);
  if (components.length === 0) {
    yield* differ.directories(addressOf(input.rootBefore), addressOf(input.rootAfter), Buffer.alloc(0));
    return;
  }
  const before = await lookup(input.load, input.rootBefore, components);
  const after = await lookup(input.load, input.rootAfter, components);
  const path = Buffer.concat(components.flatMap((c) => [SLASH, c]));
  if (!before && !after) throw new ObnamError('NOT_FOUND', `${path.toString()} is in neither snapshot`);
  yield* differ.entries(path, before, after);
}

/** The entry at a path, or undefined if the path is not in the snapshot. */
async function lookup(load: NodeLoader, root: TreeRef, components: Buffer[]): Promise<TreeEntry | undefined> {
  try {
    return (await resolvePath(load, root, components)).entry;
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
}

class Differ {
  private readonly linkContent = [new Map<string, TreeEntry | null>(), new Map<string, TreeEntry | null>()];

  constructor(private readonly input: DiffInput) {}

  /** The changes at `path` (entries of the same name on both sides, either may be absent) and below. */
  async *entries(path: Buffer, before: TreeEntry | undefined, after: TreeEntry | undefined): AsyncGenerator<DiffChange> {
    throwIfAborted(this.input.signal);
    if (!before) return yield* this.all('+', path, after!);
    if (!after) return yield* this.all('-', path, before);
    const typeBefore = visibleType(before);
    const typeAfter = visibleType(after);
    if (typeBefore !== typeAfter) {
      yield { marker: 'T', path, before, after, fields: ['type'] };
      if (before.type === 'dir') yield* this.below('-', path, subtreeOf(before)!);
      if (after.type === 'dir') yield* this.below('+', path, subtreeOf(after)!);
      return;
    }
    const fields = metadataChanges(before, after);
    if (typeBefore === 'dir') {
      if (fields.length) yield { marker: 'U', path, before, after, fields };
      if (before.subtree !== after.subtree) yield* this.directories(subtreeOf(before)!, subtreeOf(after)!, path);
      return;
    }
    if (!(await this.sameContent(before, after))) yield { marker: 'M', path, before, after, fields: ['content', ...fields] };
    else if (fields.length) yield { marker: 'U', path, before, after, fields };
  }

  /** An entry that is on one side only, and for a directory everything below it. */
  private async *all(marker: '+' | '-', path: Buffer, e: TreeEntry): AsyncGenerator<DiffChange> {
    yield marker === '+' ? { marker, path, after: e } : { marker, path, before: e };
    if (e.type === 'dir') yield* this.below(marker, path, subtreeOf(e)!);
  }

  private async *below(marker: '+' | '-', path: Buffer, tree: ObjectAddress): AsyncGenerator<DiffChange> {
    for await (const w of walkTree(this.input.load, tree, path)) {
      throwIfAborted(this.input.signal);
      yield marker === '+' ? { marker, path: w.path, after: w.entry } : { marker, path: w.path, before: w.entry };
    }
  }

  /** The changes between two directory trees (different ids), merging their entries by name. */
  async *directories(treeBefore: ObjectAddress, treeAfter: ObjectAddress, prefix: Buffer): AsyncGenerator<DiffChange> {
    const a = new DirCursor(this.input.load, treeBefore);
    const b = new DirCursor(this.input.load, treeAfter);
    for (;;) {
      throwIfAborted(this.input.signal);
      const x = a.head();
      const y = b.head();
      if (!x && !y) return;
      if (x?.kind === 'node' && y?.kind === 'node' && x.id === y.id) {
        // The same page on both sides: the same entries, unread.
        a.skip();
        b.skip();
        continue;
      }
      if (x?.kind === 'entry' && y?.kind === 'entry') {
        const c = compareNames(x.entry.name, y.entry.name);
        if (c < 0) yield* this.entries(join(prefix, a.take().name), x.entry, undefined);
        else if (c > 0) yield* this.entries(join(prefix, b.take().name), undefined, y.entry);
        else {
          a.take();
          b.take();
          yield* this.entries(join(prefix, x.entry.name), x.entry, y.entry);
        }
        continue;
      }
      // At least one side is an unread node. Everything that side still holds
      // starts at the node's first name, so an entry of the other side before
      // that name is on one side only; otherwise the node must be read.
      if (x?.kind === 'node' && y?.kind === 'node') {
        const c = compareFirst(x.first, y.first);
        if (c < 0) await a.expand();
        else if (c > 0) await b.expand();
        else {
          // Same first name, different content: read both, and open an index
          // on one side before a leaf on the other, so pages can still match.
          const [nx, ny] = await Promise.all([a.read(), b.read()]);
          if (nx.kind === 'index' && ny.kind === 'leaf') await a.expand();
          else if (ny.kind === 'index' && nx.kind === 'leaf') await b.expand();
          else await Promise.all([a.expand(), b.expand()]);
        }
      } else if (x?.kind === 'node') {
        if (!y || compareFirst(x.first, (y as EntrySeg).entry.name) <= 0) await a.expand();
        else yield* this.entries(join(prefix, b.take().name), undefined, (y as EntrySeg).entry);
      } else if (y?.kind === 'node') {
        if (!x || compareFirst(y.first, x.entry.name) <= 0) await b.expand();
        else yield* this.entries(join(prefix, a.take().name), x.entry, undefined);
      } else if (x) {
        yield* this.entries(join(prefix, a.take().name), x.entry, undefined);
      } else {
        yield* this.entries(join(prefix, b.take().name), undefined, (y as EntrySeg).entry);
      }
    }
  }

  private async sameContent(before: TreeEntry, after: TreeEntry): Promise<boolean> {
    if (before.type === 'symlink') return Buffer.compare(before.target!, after.target!) === 0;
    if (visibleType(before) !== 'file') return true;
    const x = before.type === 'hardlink' ? await this.holder(0, before.link!) : before;
    const y = after.type === 'hardlink' ? await this.holder(1, after.link!) : after;
    return x === null || y === null ? x === y : sameFileData(x, y);
  }

  /** The file entry a hardlink entry names, in the first (0) or second (1) snapshot; null if it is not a file there. */
  private async holder(side: 0 | 1, link: Buffer): Promise<TreeEntry | null> {
    const cache = this.linkContent[side]!;
    const key = link.toString('latin1');
    const known = cache.get(key);
    if (known !== undefined) return known;
    const root = side === 0 ? this.input.rootBefore : this.input.rootAfter;
    const components = key.split('/').map((c) => Buffer.from(c, 'latin1'));
    const e = await lookup(this.input.load, root, components);
    const found = e && e.type === 'file' ? e : null;
    cache.set(key, found);
    return found;
  }
}

function sameFileData(x: TreeEntry, y: TreeEntry): boolean {
  if (x.size !== y.size) return false;
  if (x.data || y.data) return !!x.data && !!y.data && x.data.equals(y.data);
  return sameChunkRefs(x.chunks, y.chunks);
}

const sameTime = (a: TreeEntry['mtime'], b: TreeEntry['mtime']) => a.sec === b.sec && a.nsec === b.nsec;

function sameXattrs(a: TreeEntry['xattrs'], b: TreeEntry['xattrs']): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every(([n, v], i) => n.equals(y[i]![0]) && v.equals(y[i]![1]));
}

/** Which metadata fields differ between two entries of the same visible type. */
export function metadataChanges(a: TreeEntry, b: TreeEntry): DiffField[] {
  const out: DiffField[] = [];
  if (a.mode !== b.mode) out.push('mode');
  if (a.uid !== b.uid) out.push('uid');
  if (a.gid !== b.gid) out.push('gid');
  if (a.user !== b.user) out.push('user');
  if (a.group !== b.group) out.push('group');
  if (!sameTime(a.mtime, b.mtime)) out.push('mtime');
  if (!sameTime(a.ctime, b.ctime)) out.push('ctime');
  if ((a.nlink ?? 1) !== (b.nlink ?? 1)) out.push('nlink');
  if (!sameXattrs(a.xattrs, b.xattrs)) out.push('xattrs');
  if (a.rdev !== b.rdev) out.push('rdev');
  if (a.type === 'hardlink' && b.type === 'hardlink' && !a.link!.equals(b.link!)) out.push('link');
  return out;
}

// ---- one directory as a sequence of unread nodes and entries ----

interface NodeSeg {
  kind: 'node';
  id: string;
  /** Its content key (format version 3). */
  key?: Uint8Array;
  /** The first name below this node; null for a directory's root node (before every name). */
  first: Buffer | null;
  depth: number;
  node?: TreeNode;
}
interface EntrySeg {
  kind: 'entry';
  entry: TreeEntry;
}
type Seg = NodeSeg | EntrySeg;

/** null (a root node) sorts before every name. */
function compareFirst(a: Buffer | null, b: Buffer | null): number {
  if (a === null) return b === null ? 0 : -1;
  if (b === null) return 1;
  return compareNames(a, b);
}

/**
 * A directory's remaining content, front first: unread page references
 * (nodes) and entries, in name order. Reading a node replaces it by its
 * pages or entries; order and page boundaries are checked as they are read,
 * so a damaged or hostile index cannot make entries repeat or go backwards.
 */
class DirCursor {
  /** Reversed: the head is the last element. */
  private readonly segs: Seg[];
  /** The last name passed (taken, or the first name of a skipped page). */
  private last: Buffer | null = null;

  constructor(
    private readonly load: NodeLoader,
    root: ObjectAddress,
  ) {
    this.segs = [{ kind: 'node', id: root.id, key: root.key, first: null, depth: 0 }];
  }

  head(): Seg | undefined {
    return this.segs[this.segs.length - 1];
  }

  /** Loads the head node (without expanding it). */
  async read(): Promise<TreeNode> {
    const seg = this.head() as NodeSeg;
    seg.node ??= await this.load(seg.id, seg.key);
    return seg.node;
  }

  /** Replaces the head node by its content. */
  async expand(): Promise<void> {
    const seg = this.head() as NodeSeg;
    if (seg.depth > MAX_DEPTH) throw new ObnamError('CORRUPT', `tree ${seg.id}: index nodes nested too deep`);
    const node = await this.read();
    this.segs.pop();
    const bad = (why: string) => new ObnamError('CORRUPT', `tree ${seg.id}: ${why}`);
    if (node.kind === 'leaf') {
      if (seg.first && (node.entries.length === 0 || compareNames(node.entries[0]!.name, seg.first) !== 0)) {
        throw bad('page does not start with its index name');
      }
      for (let i = node.entries.length - 1; i >= 0; i--) this.segs.push({ kind: 'entry', entry: node.entries[i]! });
    } else {
      if (seg.first && compareNames(node.pages[0]!.first, seg.first) !== 0) throw bad('index does not start with its name');
      for (let i = node.pages.length - 1; i >= 0; i--) {
        const p = node.pages[i]!;
        this.segs.push({ kind: 'node', id: p.tree, key: p.key, first: p.first, depth: seg.depth + 1 });
      }
    }
  }

  /** Removes the head entry and returns it. */
  take(): TreeEntry {
    const seg = this.segs.pop() as EntrySeg;
    this.advance(seg.entry.name);
    return seg.entry;
  }

  /** Passes over the head node unread. */
  skip(): void {
    const seg = this.segs.pop() as NodeSeg;
    if (seg.first) this.advance(seg.first);
  }

  private advance(name: Buffer): void {
    if (this.last && compareNames(name, this.last) <= 0) {
      throw new ObnamError('CORRUPT', `directory pages overlap or are out of order at ${JSON.stringify(name.toString('latin1').slice(0, 80))}`);
    }
    this.last = name;
  }
}
