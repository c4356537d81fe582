/**
 * A read-only file-system view of a repository: every snapshot as a directory
 * tree, with path lookup, attributes, directory listings, symlinks, extended
 * attributes and reads at any offset. The FUSE adapter (mount/) is a thin
 * layer over this; tests drive it directly.
 *
 *   /snapshots/<UTC time>/...   each snapshot (see snapshots.ts for names)
 *   /ids/<snapshot id>/...      the same snapshots by full id
 *   /latest                     symlink to the newest snapshots/<time>
 *
 * Paths are raw bytes ("/"-separated). Trees are cached without the inline
 * contents of their files (objects.ts); opening such a file reads its
 * directory's node again, in full. Everything is lazy: opening the view
 * reads only the snapshot objects; a lookup or listing fetches only the tree
 * nodes on its path; a read fetches only the chunks it covers. A hardlink
 * shows its target's content and attributes under its own name.
 *
 * The snapshot list follows the repository (snapshotlist.ts): listing or
 * looking up /, snapshots/, ids/, latest or a snapshot's own directory reads
 * it again when it is older than the refresh interval. A snapshot that is
 * gone can no longer be looked up or opened, but files already open in it
 * keep reading for as long as their chunks can be fetched: each read of such
 * a file reads the snapshot list again if it is older than the interval (so
 * the store sees the repository's deletions afresh) and fetches its chunks
 * from the repository, never from the view's cache. Once garbage collection
 * has deleted a chunk, a read that needs it fails (UNREADABLE: EIO) within
 * one interval, never answering bytes the repository no longer holds and
 * never other bytes (the kernel may still answer ranges it has cached).
 */
import { describeError } from '../errors.js';
import { ObjectAddress, subtreeOf, Timestamp, TreeEntry } from '../format/tree.js';
import { directoryEntries, lookupPath } from '../repo/treewalk.js';
import { ObjectInventory, ObjectReader, SnapshotCatalog, snapshotRoot } from '../repo/views.js';
import type { CacheStats } from './cache.js';
import { hasDroppedData } from './compact.js';
import { FsError } from './errors.js';
import { IDS_INO, InodeTable, InodeTableOptions, LATEST_INO, ROOT_INO, SNAPSHOTS_INO } from './inodes.js';
import { RepoObjects } from './objects.js';
import { FileReader } from './reader.js';
import { DEFAULT_REFRESH_MS, ShownSnapshots, SnapshotList } from './snapshotlist.js';
import type { SnapshotDir } from './snapshots.js';
import { entryStat, FsStat, S_IFDIR, S_IFLNK, syntheticStat, typeBits } from './stat.js';

export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_READ_AHEAD = 4;

/**
 * What the view reads: the snapshot ids (listed again at each refresh) and
 * the objects, verified and decoded (a Repository, or in the mount the
 * worker pool's poolReader beside the repository's listing), and
 * optionally refresh (ObjectInventory.refresh): called before each read of
 * the snapshot list, so the store sees what other processes stored and
 * deleted since.
 */
export type FsViewSource = Pick<SnapshotCatalog, 'listSnapshotIds'> & ObjectReader & Partial<Pick<ObjectInventory, 'refresh'>>;

export interface FsViewOptions {
  /** Bytes of decrypted chunks and decoded trees to keep (default 256 MiB; trees get a quarter, objects.ts). */
  cacheBytes?: number;
  /** Chunks to fetch ahead of sequential reads (default 4). */
  readAhead?: number;
  /** Owner of the view's own directories (default: this process's uid and gid). */
  owner?: { uid: number; gid: number };
  /** Told about snapshots that could not be read (they are left out), and listings that failed. */
  onWarning?: (message: string) => void;
  /**
   * Milliseconds the snapshot list is shown before it is read again (default
   * 5000; 0: at every use; Infinity: never after opening).
   */
  refreshMs?: number;
  /** The clock for refreshes, monotonic milliseconds (default performance.now; tests inject one). */
  now?: () => number;
  /** How many paths' inode numbers to remember (see inodes.ts). */
  inodes?: InodeTableOptions;
}

export interface DirEntry {
  name: Buffer;
  ino: number;
  /** st_mode type bits; 0 when not known without more fetching (a hardlink's). */
  mode: number;
}

export interface FsViewStats {
  cache: CacheStats;
  inodes: number;
  openFiles: number;
}

type Node =
  | { kind: 'root'; shown: ShownSnapshots }
  | { kind: 'snapshots'; shown: ShownSnapshots }
  | { kind: 'ids'; shown: ShownSnapshots }
  | { kind: 'latest'; shown: ShownSnapshots; snap: SnapshotDir }
  | { kind: 'snapshot'; snap: SnapshotDir }
  /** A path inside a snapshot; `entry` is never a hardlink (resolved), `key` is the path its inode is known by. */
  | { kind: 'entry'; snap: SnapshotDir; key: Buffer; entry: TreeEntry };

const SLASH = 0x2f;

function components(path: Uint8Array): Buffer[] {
  const b = Buffer.from(path.buffer, path.byteOffset, path.byteLength);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= b.length; i++) {
    if (i === b.length || b[i] === SLASH) {
      if (i > start) out.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

const SLASH_BUF = Buffer.from('/');
const join = (prefix: Buffer, name: Buffer): Buffer => (prefix.length ? Buffer.concat([prefix, SLASH_BUF, name]) : name);
const joinAll = (parts: Buffer[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i ? [SLASH_BUF, p] : [p])));
const show = (b: Uint8Array): string => JSON.stringify(Buffer.from(b).toString('utf8'));

export class FsView {
  private readonly inodes: InodeTable;
  /** Open files, with the id of the snapshot each was opened in. */
  private readonly handles = new Map<number, { reader: FileReader; snapshot: string }>();
  private readonly background = new Set<Promise<void>>();
  private nextHandle = 1;
  private readonly owner: { uid: number; gid: number };
  private readonly readAhead: number;
  private readonly refreshInterval: number;
  private readonly loadTree = (id: string, key?: Uint8Array) => this.objects.tree(id, key);
  private readonly loadFullTree = (id: string, key?: Uint8Array) => this.objects.fullTree(id, key);

  private constructor(
    private readonly objects: RepoObjects,
    private readonly snapshotList: SnapshotList,
    opts: FsViewOptions,
  ) {
    this.inodes = new InodeTable(opts.inodes);
    this.owner = opts.owner ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    this.readAhead = opts.readAhead ?? DEFAULT_READ_AHEAD;
    this.refreshInterval = opts.refreshMs ?? DEFAULT_REFRESH_MS;
  }

  /**
   * Reads the snapshot list (and nothing else) and returns the view. Some
   * unreadable snapshots are left out (and named through onWarning); none
   * readable at all is a failure, not an empty view.
   */
  static async open(source: FsViewSource, opts: FsViewOptions = {}): Promise<FsView> {
    const objects = new RepoObjects(source, opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
    const list = await SnapshotList.open({
      listIds: () => source.listSnapshotIds(),
      refreshStore: source.refresh ? () => source.refresh!() : undefined,
      objects,
      refreshMs: opts.refreshMs ?? DEFAULT_REFRESH_MS,
      now: opts.now ?? (() => performance.now()),
      onWarning: opts.onWarning,
    });
    return new FsView(objects, list, opts);
  }

  /** The snapshots shown now, oldest first (as last read: no refresh). */
  get snapshots(): readonly SnapshotDir[] {
    return this.snapshotList.snapshots.all;
  }

  get latest(): SnapshotDir | undefined {
    return this.snapshotList.snapshots.latest;
  }

  /** Milliseconds the snapshot list is shown before it is read again. */
  get refreshMs(): number {
    return this.refreshInterval;
  }

  async getattr(path: Uint8Array): Promise<FsStat> {
    return this.stat(await this.lookup(path));
  }

  async readdir(path: Uint8Array): Promise<DirEntry[]> {
    const node = await this.lookup(path);
    const dir = (s: SnapshotDir, name: string): DirEntry => ({
      name: Buffer.from(name),
      ino: this.inodes.of(s.serial, Buffer.alloc(0)),
      mode: S_IFDIR,
    });
    switch (node.kind) {
      case 'root': {
        const out: DirEntry[] = [
          { name: Buffer.from('snapshots'), ino: SNAPSHOTS_INO, mode: S_IFDIR },
          { name: Buffer.from('ids'), ino: IDS_INO, mode: S_IFDIR },
        ];
        if (node.shown.latest) out.push({ name: Buffer.from('latest'), ino: LATEST_INO, mode: S_IFLNK });
        return out;
      }
      case 'snapshots':
        return node.shown.all.map((s) => dir(s, s.name));
      case 'ids':
        return node.shown.all.map((s) => dir(s, s.info.id));
      case 'snapshot':
        return this.list(node.snap, snapshotRoot(node.snap.info), Buffer.alloc(0));
      case 'entry':
        if (node.entry.type !== 'dir') throw new FsError('NOT_DIR', `${show(path)} is not a directory`);
        return this.list(node.snap, subtreeOf(node.entry)!, node.key);
      case 'latest':
        throw new FsError('NOT_DIR', `${show(path)} is not a directory`);
    }
  }

  async readlink(path: Uint8Array): Promise<Buffer> {
    const node = await this.lookup(path);
    if (node.kind === 'latest') return Buffer.from(latestTarget(node.snap));
    if (node.kind === 'entry' && node.entry.type === 'symlink') return node.entry.target!;
    throw new FsError('NOT_LINK', `${show(path)} is not a symlink`);
  }

  async listxattr(path: Uint8Array): Promise<Buffer[]> {
    const node = await this.lookup(path);
    return node.kind === 'entry' ? (node.entry.xattrs ?? []).map(([name]) => name) : [];
  }

  async getxattr(path: Uint8Array, name: Uint8Array): Promise<Buffer> {
    const node = await this.lookup(path);
    const found = node.kind === 'entry' ? node.entry.xattrs?.find(([n]) => n.equals(name)) : undefined;
    if (!found) throw new FsError('NO_ATTR', `${show(path)} has no extended attribute ${show(name)}`);
    return found[1];
  }

  /** Opens a file for reading; returns a handle (a positive 32-bit number) for read() and release(). */
  async open(path: Uint8Array): Promise<number> {
    const node = await this.lookup(path);
    if (node.kind !== 'entry' || node.entry.type !== 'file') {
      const isDir = node.kind !== 'latest' && (node.kind !== 'entry' || node.entry.type === 'dir');
      throw new FsError(isDir ? 'IS_DIR' : 'NOT_FILE', `${show(path)} is not a regular file`);
    }
    const entry = hasDroppedData(node.entry) ? await this.withContent(node.snap, node.key, path) : node.entry;
    const reader = new FileReader(entry, this.objects, this.readAhead, (p) => {
      this.background.add(p);
      void p.then(() => this.background.delete(p));
    });
    let h = this.nextHandle;
    while (this.handles.has(h)) h = h >= 0xfffffffe ? 1 : h + 1;
    this.nextHandle = h >= 0xfffffffe ? 1 : h + 1;
    this.handles.set(h, { reader, snapshot: node.snap.info.id });
    return h;
  }

  /** Reads up to target.length bytes at `offset` into `target`; the count read (0 at the end). */
  async readInto(handle: number, target: Buffer, offset: number): Promise<number> {
    const open = this.handles.get(handle);
    if (!open) throw new FsError('BAD_HANDLE', `no open file with handle ${handle}`);
    if (this.snapshotList.snapshots.byId.has(open.snapshot)) return open.reader.readInto(target, offset);
    // Its snapshot is gone (forgotten): its chunks may be collected at any time, so none comes from the cache.
    const shown = await this.snapshotList.fresh();
    return open.reader.readInto(target, offset, !shown.byId.has(open.snapshot));
  }

  /** Reads up to `length` bytes at `offset`. */
  async read(handle: number, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    return buf.subarray(0, await this.readInto(handle, buf, offset));
  }

  release(handle: number): void {
    this.handles.delete(handle);
  }

  /** Resolves once every fetch started ahead of reads has finished. */
  async idle(): Promise<void> {
    while (this.background.size) await Promise.all([...this.background]);
  }

  stats(): FsViewStats {
    return { cache: this.objects.stats(), inodes: this.inodes.size, openFiles: this.handles.size };
  }

  private stat(node: Node): FsStat {
    const dirMode = S_IFDIR | 0o555;
    const newest = (shown: ShownSnapshots): Timestamp => shown.latest?.info.time ?? { sec: 0, nsec: 0 };
    switch (node.kind) {
      case 'root':
        return syntheticStat(ROOT_INO, dirMode, this.owner, newest(node.shown), { nlink: 4 });
      case 'snapshots':
        return syntheticStat(SNAPSHOTS_INO, dirMode, this.owner, newest(node.shown), { nlink: 2 + node.shown.all.length });
      case 'ids':
        return syntheticStat(IDS_INO, dirMode, this.owner, newest(node.shown), { nlink: 2 + node.shown.all.length });
      case 'latest':
        return syntheticStat(LATEST_INO, S_IFLNK | 0o777, this.owner, newest(node.shown), { size: latestTarget(node.snap).length });
      case 'snapshot':
        // nlink 1: "subdirectories not counted" (knowing would mean fetching the root tree).
        return syntheticStat(this.inodes.of(node.snap.serial, Buffer.alloc(0)), dirMode, this.owner, node.snap.info.time);
      case 'entry':
        return entryStat(node.entry, this.inodes.of(node.snap.serial, node.key, isLinked(node.entry)));
    }
  }

  private async lookup(path: Uint8Array): Promise<Node> {
    const parts = components(path);
    // The top of the mount and the snapshots' own directories follow the repository; paths inside a snapshot do not wait for that.
    const shown = parts.length <= 2 ? await this.snapshotList.fresh() : this.snapshotList.snapshots;
    if (parts.length === 0) return { kind: 'root', shown };
    const [top, name, ...rest] = parts as [Buffer, ...Buffer[]];
    const topName = top.toString('latin1');
    let snap: SnapshotDir | undefined;
    if (topName === 'latest' && shown.latest) {
      // The kernel follows the symlink itself; a path through it never gets here.
      if (name) throw new FsError('NOT_DIR', `${show(path)}: latest is a symlink`);
      return { kind: 'latest', shown, snap: shown.latest };
    } else if (topName === 'snapshots') {
      if (!name) return { kind: 'snapshots', shown };
      snap = shown.byName.get(name.toString('latin1'));
    } else if (topName === 'ids') {
      if (!name) return { kind: 'ids', shown };
      snap = shown.byId.get(name.toString('latin1'));
    }
    if (!snap) throw new FsError('NO_ENTRY', `no ${show(path)}`);
    if (rest.length === 0) return { kind: 'snapshot', snap };
    return this.resolve(snap, rest, path);
  }

  /** The entry at `parts` in a snapshot, with a hardlink replaced by the entry it links to. */
  private async resolve(snap: SnapshotDir, parts: Buffer[], path: Uint8Array): Promise<Node> {
    const entry = await this.walk(snap, parts, path);
    if (entry.type !== 'hardlink') return { kind: 'entry', snap, key: joinAll(parts), entry };
    const link = entry.link!;
    let target: TreeEntry;
    try {
      target = await this.walk(snap, components(link), link);
    } catch (e) {
      if (e instanceof FsError && (e.code === 'NO_ENTRY' || e.code === 'NOT_DIR')) {
        throw new FsError('UNREADABLE', `${show(path)}: hardlink to ${show(link)}, which is not in the snapshot`);
      }
      throw e;
    }
    if (target.type === 'hardlink' || target.type === 'dir') {
      throw new FsError('UNREADABLE', `${show(path)}: hardlink to ${show(link)}, which is a ${target.type}`);
    }
    return { kind: 'entry', snap, key: link, entry: target };
  }

  /** The entry at `parts` (at least one) in a snapshot, resolved by the shared walker. */
  private async walk(snap: SnapshotDir, parts: Buffer[], path: Uint8Array): Promise<TreeEntry> {
    let r;
    try {
      r = await lookupPath(this.loadTree, snapshotRoot(snap.info), parts);
    } catch (e) {
      throw asUnreadable(e, show(path));
    }
    if (!r.found) {
      if (r.notDir) throw new FsError('NOT_DIR', `${show(path)}: a component is not a directory`);
      throw new FsError('NO_ENTRY', `no ${show(path)}`);
    }
    return r.entry!;
  }

  /**
   * The file at snapshot path `key` with its inline content, from the full
   * node of its directory (the cached, compact nodes leave contents out).
   */
  private async withContent(snap: SnapshotDir, key: Buffer, path: Uint8Array): Promise<TreeEntry> {
    const parts = components(key);
    const name = parts.pop()!;
    let r;
    try {
      const dir = await lookupPath(this.loadTree, snapshotRoot(snap.info), parts);
      if (!dir.found || !dir.tree) throw new FsError('UNREADABLE', `${show(path)}: its directory is no longer found`);
      r = await lookupPath(this.loadFullTree, dir.tree, [name]);
    } catch (e) {
      throw asUnreadable(e, show(path));
    }
    if (!r.found || r.entry?.type !== 'file' || hasDroppedData(r.entry)) throw new FsError('UNREADABLE', `${show(path)}: its content is not in its directory's tree`);
    return r.entry;
  }

  private async list(snap: SnapshotDir, tree: ObjectAddress, prefix: Buffer): Promise<DirEntry[]> {
    const out: DirEntry[] = [];
    try {
      for await (const e of directoryEntries(this.loadTree, tree.id, tree.key)) {
        const key = e.type === 'hardlink' ? e.link! : join(prefix, e.name);
        out.push({ name: e.name, ino: this.inodes.of(snap.serial, key, e.type === 'hardlink' || isLinked(e)), mode: typeBits(e.type) });
      }
    } catch (e) {
      throw asUnreadable(e, `tree ${tree.id}`);
    }
    return out;
  }
}

const latestTarget = (snap: SnapshotDir): string => `snapshots/${snap.name}`;

/**
 * Whether an entry is a file with several links (its inode number is
 * remembered apart, see inodes.ts). A hardlink's target is always one: the
 * backup records the link count it saw, at least two when it found another
 * name.
 */
const isLinked = (e: TreeEntry): boolean => e.type !== 'dir' && (e.nlink ?? 1) > 1;

/** Structural damage found while walking trees (ObnamError CORRUPT) is an unreadable object too. */
function asUnreadable(e: unknown, what: string): FsError {
  if (e instanceof FsError) return e;
  return new FsError('UNREADABLE', `${what}: ${describeError(e)}`, { cause: e });
}
