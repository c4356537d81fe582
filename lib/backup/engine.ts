/**
 * The backup engine: walks the backed-up paths and writes chunks, trees and
 * finally one snapshot.
 *
 * The walk is depth-first in name order and streams: a directory's listing is
 * held only until its tree is written. The main thread only decides and
 * builds trees; the system calls and CPU work go to the worker pool in
 * batches: inspecting a directory's entries (lstat, xattrs, readlink),
 * reading small files, and chunking large files; trees are sealed here. The
 * pool's bounded queue pauses the walk when workers fall behind.
 *
 * Small files (at most inline_max bytes) are not chunked: in format version 4
 * new and changed ones go into the walk's bundles (bundler.ts, format-spec
 * 6.7), and a directory's tree is written once the bundles holding its files
 * are stored; files of at most 64 bytes, and all small files in older
 * versions, are stored inline in the tree.
 *
 * A directory holding a tag file (tags.ts: CACHEDIR.TAG, --exclude-if-present)
 * is recorded with the tag file alone. Explicitly selected paths, and the
 * directories leading to them, are never excluded.
 *
 * Files whose size, mtime, ctime and inode match the parent snapshot's entry
 * are not read again. Files that cannot be read are reported through
 * onWarning and left out; the snapshot is still written. Nothing but the final
 * snapshot makes a backup visible, so an interrupted backup leaves only
 * complete, unreferenced objects behind (format-spec, "Write order").
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import { describeError, ObnamError, throwIfAborted } from '../errors.js';
import { Snapshot, SnapshotSummary } from '../format/snapshot.js';
import { compareNames, ObjectAddress, subtreeOf, TreeEntry, TreeNode, withSubtree } from '../format/tree.js';
import { hostInfo } from '../repo/repository.js';
import { ConfigView, ObjectReader, ObjectRemover, ObjectWriter, PutResult, SnapshotCatalog, SnapshotInfo, snapshotRoot } from '../repo/views.js';
import { directoryEntries } from '../repo/treewalk.js';
import { ExcludeMatcher } from '../util/glob.js';
import { IdNames } from '../util/ids-names.js';
import { Pending, pending, ready } from '../util/pending.js';
import { own } from '../util/own.js';
import type { Task, TaskResult, TaskRunner } from '../workers/protocol.js';
import { childPath, Inspected, packNames, SmallRead, StatFields, statFields, unpackInspection } from './inspect.js';
import { entryFromStats, entryType, sameEntry, unchangedFile } from './metadata.js';
import { buildRoots, PathNode } from './roots.js';
import { findTags, TagRule } from './tags.js';
import { conflict, GcGuard, GuardRepository, Missing } from './gcguard.js';
import { Clock, systemClock, toTimestamp } from '../util/clock.js';
import type { BackupTasks } from './worker-tasks.js';
import { Bundler, INLINE_ALWAYS } from './bundler.js';

export const PROGRAM = 'obnam 0.1.0';

export interface BackupProgress {
  files: number;
  dirs: number;
  /** Sum of the sizes of files seen so far. */
  bytes: number;
  filesRead: number;
  bytesRead: number;
  errors: number;
}

export interface BackupOptions {
  paths: string[];
  tags?: string[];
  /** Parent snapshot: an id, null for none, undefined to pick the latest with the same host and paths. */
  parent?: string | null;
  excludes?: string[];
  /** Directories holding one of these tag files are backed up with the tag file alone. */
  excludeIfPresent?: TagRule[];
  /** Absolute directories never backed up (the repository itself). */
  skipDirs?: string[];
  oneFileSystem?: boolean;
  pool: TaskRunner<BackupTasks>;
  signal?: AbortSignal;
  progress?: BackupProgress;
  onWarning?: (path: string, message: string) => void;
  /**
   * Called for each directory left out by a tag file whose contents the
   * parent snapshot holds (it became a cache, say, since then).
   */
  onTaggedSinceParent?: (path: string, tag: string) => void;
  /** Called for each file whose content is read: new (not in the parent) or changed. */
  onFileRead?: (path: string, reason: 'new' | 'changed') => void;
  hostname?: string;
  username?: string;
  /** The clock of the snapshot's times and of the garbage-collection rules (gcguard.ts); default the system clock. */
  clock?: Clock;
  /**
   * How long the backup waits in all for sweeps of garbage collections that
   * hold objects it names (format-spec 14.6 B3) before failing with
   * GC_CONFLICT; default half the repository's gc grace period; 0: fail at once.
   */
  gcWaitMs?: number;
  /** Called when the backup waits for a sweep, or walks again to store what a sweep deleted. */
  onGcWait?: (message: string) => void;
}

export interface BackupResult {
  id: string;
  snapshot: Snapshot;
  warnings: number;
}

/** Walks of the files at most: the first, and new walks storing again what sweeps deleted (14.6 B3/B4). */
const MAX_WALKS = 4;
/** Snapshot puts at most, when each completes later than G/4 after B2 (14.6 B5). */
const MAX_LATE_PUTS = 3;
/** Backup runs in this process: with the walk number, tells workers when a new walk begins. */
let runs = 0;
/** Names per inspect task, and small files per read task. */
const INSPECT_BATCH = 256;
/** Directories listed ahead of the walk. */
const PREFETCH_DIRS = 8;
const SMALL_BATCH = 64;

export function newProgress(): BackupProgress {
  return { files: 0, dirs: 0, bytes: 0, filesRead: 0, bytesRead: 0, errors: 0 };
}

/** The parent chosen by default: the newest snapshot of this host with exactly these paths. */
export function pickParent(snapshots: SnapshotInfo[], hostname: string, paths: string[]): SnapshotInfo | undefined {
  const key = JSON.stringify([...paths].sort());
  for (let i = snapshots.length - 1; i >= 0; i--) {
    const s = snapshots[i]!;
    if (s.hostname === hostname && JSON.stringify([...s.paths].sort()) === key) return s;
  }
  return undefined;
}

/** What a backup reads and writes: the parent's trees and snapshots, new objects, and what the gc guard checks. */
export type BackupRepository = ConfigView &
  ObjectWriter &
  Pick<ObjectRemover, 'deleteObject'> &
  Pick<ObjectReader, 'getTree'> &
  Pick<SnapshotCatalog, 'resolveSnapshot' | 'listSnapshots' | 'deleteSnapshot'> &
  GuardRepository;

export async function backup(repo: BackupRepository, opts: BackupOptions): Promise<BackupResult> {
  return new BackupRun(repo, opts).run();
}

interface Listing {
  names: Buffer[];
  inspected: Inspected[];
  parentEntries: Map<string, TreeEntry> | undefined;
  /** The tag files that excluded the rest of the directory, if any did. */
  tags: Buffer[] | undefined;
}

interface Child {
  abs: Buffer;
  rel: Buffer;
  st: StatFields;
  entry: TreeEntry;
  select: PathNode | undefined;
}

class BackupRun {
  private readonly progress: BackupProgress;
  private summary: SnapshotSummary = {
    files: 0,
    dirs: 0,
    symlinks: 0,
    others: 0,
    bytes: 0,
    filesRead: 0,
    newChunks: 0,
    newTrees: 0,
    newBytes: 0,
    storedBytes: 0,
    errors: 0,
  };
  /**
   * Objects a sweep deleted while this backup ran (set for a new walk): a
   * parent tree or an unchanged file naming one is read again, not reused.
   */
  private missing: Missing | undefined;
  /** The walk's number: a new walk tells the workers to forget which chunks they stored. */
  private walk = 0;
  private readonly runNumber = ++runs;
  private readonly excludes: ExcludeMatcher;
  private readonly skipDirs: Set<string>;
  /** Inodes with several links: the snapshot path of the link that holds the content (null: none yet). */
  private hardlinks = new Map<string, Promise<Buffer | null>>();
  private readonly abort = new AbortController();
  private readonly pool: TaskRunner<BackupTasks>;
  private fatal?: unknown;
  private names!: IdNames;
  /** Directory listings started ahead of the walk, by absolute path. */
  private readonly prefetched = new Map<string, Promise<Listing>>();
  /**
   * Parent tree nodes found damaged (CORRUPT) while reading them. Their
   * directories' files are read again; a node this backup writes with the
   * same id (the same entries) replaces the damaged copy, which the store
   * would otherwise keep (a put never overwrites) and the new snapshot name.
   */
  private readonly damagedTrees = new Set<string>();
  private readonly clock: Clock;
  private readonly guard: GcGuard;
  /** The walk's small-file bundles (format version 4: the config has bundle_target); undefined: small files go inline. */
  private bundler: Bundler | undefined;

  constructor(
    private readonly repo: BackupRepository,
    private readonly opts: BackupOptions,
  ) {
    this.pool = opts.pool;
    this.clock = opts.clock ?? systemClock;
    this.guard = new GcGuard(repo, this.clock, { waitMs: opts.gcWaitMs });
    this.progress = opts.progress ?? newProgress();
    this.excludes = new ExcludeMatcher(opts.excludes ?? []);
    this.skipDirs = new Set(opts.skipDirs ?? []);
    opts.signal?.addEventListener('abort', () => this.abort.abort(), { once: true });
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  async run(): Promise<BackupResult> {
    // B1 (format-spec 14.6): note the time and the plans before any has, put or read of the parent.
    await this.guard.start();
    const time = toTimestamp(this.clock.now());
    const { root, paths } = buildRoots(this.opts.paths);
    for (const p of paths) {
      try {
        await fs.lstat(p);
      } catch (e) {
        throw new ObnamError('USAGE', `cannot back up ${p}: ${describeError(e)}`);
      }
    }
    this.names = await IdNames.load();
    const hostname = this.opts.hostname ?? os.hostname();
    const username = this.opts.username ?? hostInfo().username;

    let parent: SnapshotInfo | undefined;
    if (this.opts.parent) parent = await this.repo.resolveSnapshot(this.opts.parent);
    // A shared repository's parent is one of this member's own snapshots (format-spec/sharing.md 10.2).
    else if (this.opts.parent === undefined) parent = pickParent((await this.repo.listSnapshots()).filter((s) => s.own !== false), hostname, paths);

    const rootStat = statFields(await fs.lstat('/', { bigint: true }));
    const select = root.whole ? undefined : root;
    let rootTree = await this.walkFiles(rootStat, parent ? snapshotRoot(parent) : undefined, select);
    // The snapshot is written last, once every object it references is durable.
    await this.repo.flush();
    // B2–B5: check, put the snapshot, and start again at B2 if the put was late.
    // A snapshot put again after a late put is the same object unless a new walk changed its trees
    // (so one a store refused to withdraw, append-only, is not doubled).
    let end: { tree: string; at: Snapshot['end'] } | undefined;
    for (let put = 1; ; put++) {
      rootTree = await this.checkBeforeSnapshot(rootTree, rootStat, select);
      if (end?.tree !== rootTree.id) end = { tree: rootTree.id, at: toTimestamp(this.clock.now()) };
      const snapshot: Snapshot = {
        tree: rootTree.id,
        ...(rootTree.key ? { treeKey: rootTree.key } : {}),
        time,
        end: end.at,
        hostname,
        username,
        paths,
        tags: [...new Set(this.opts.tags ?? [])].sort(),
        parent: parent?.id,
        program: PROGRAM,
        summary: this.summary,
      };
      const { id, isNew } = await this.repo.putSnapshot(snapshot, { signal: this.signal });
      await this.repo.flush();
      if (!this.guard.putTooLate()) return { id, snapshot, warnings: this.summary.errors };
      // B5: a put that took longer than G/4 may have landed after a sweep listed the snapshots (and
      // deleted what it names): withdraw it and start again at B2, which checks everything named.
      if (isNew) await this.repo.deleteSnapshot(id).catch(() => undefined);
      const why = "writing the snapshot took longer than a quarter of the repository's gc grace period, so it was withdrawn";
      if (put >= MAX_LATE_PUTS) throw new ObnamError('GC_CONFLICT', `${why} ${put} times: run the backup again`);
      this.opts.onGcWait?.(`${why}: checking again what it names and putting it again`);
      this.guard.latePut();
    }
  }

  /**
   * B2–B4 (format-spec 14.6): no collection may have deleted, or be about to
   * delete, what the snapshot names; waits for sweeps and walks the files
   * again as needed. The root tree the snapshot may name.
   */
  private async checkBeforeSnapshot(rootTree: ObjectAddress, rootStat: StatFields, select: PathNode | undefined): Promise<ObjectAddress> {
    for (;;) {
      const verdict = await this.guard.beforeSnapshot(rootTree.id);
      if (verdict.kind === 'put') return rootTree;
      if (verdict.kind === 'wait') {
        // B3: wait for the sweep, then B2 again (which checks that everything named is still there).
        await this.guard.waitForSweep(verdict, this.signal, this.opts.onGcWait);
        continue;
      }
      // A sweep deleted objects the snapshot names: walk again, reading the files whose content
      // (or whose parent tree) is gone, with this walk's trees as the parent; then B2 again.
      if (this.walk >= MAX_WALKS) throw conflict(verdict.why);
      this.opts.onGcWait?.(`${verdict.why}: reading the files again to store what it deleted`);
      this.missing = verdict.missing;
      this.guard.restart();
      rootTree = await this.walkFiles(rootStat, rootTree, select);
      await this.repo.flush();
    }
  }

  /**
   * One walk of the backed-up paths, storing what is new: the root tree's id.
   * A walk after the first starts from fresh counts (the snapshot's summary
   * describes the files of the last walk; what was stored adds up).
   */
  private async walkFiles(rootStat: StatFields, parentTree: ObjectAddress | undefined, select: PathNode | undefined): Promise<ObjectAddress> {
    if (this.walk++ > 0) {
      const s = this.summary;
      this.summary = { ...s, files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0, filesRead: 0, errors: 0 };
      this.hardlinks = new Map();
      this.prefetched.clear();
    }
    const target = this.repo.config.bundleTarget;
    this.bundler = target === undefined ? undefined : new Bundler(target, (plaintext) => this.putBundle(plaintext), (r, n) => this.countBundle(r, n));
    const scan = await this.scanDir(Buffer.from('/'), Buffer.alloc(0), rootStat, parentTree, select);
    // Every small file of the walk has been handed over: the last bundle is stored, and the trees waiting for it can be.
    this.bundler?.finish();
    try {
      const id = await scan.result;
      throwIfAborted(this.signal);
      return id;
    } catch (e) {
      throw this.fatal ?? e;
    }
  }

  /** A parent tree to take entries from: none if a sweep deleted it. */
  private usableParent(tree: ObjectAddress | undefined): ObjectAddress | undefined {
    return tree && this.missing?.trees.has(tree.id) ? undefined : tree;
  }

  /**
   * Whether a file is unchanged since the parent and its content there is
   * still stored, as far as this backup knows (then it is not read again).
   */
  private reusable(old: TreeEntry | undefined, entry: TreeEntry): old is TreeEntry {
    if (!unchangedFile(old, entry)) return false;
    const gone = this.missing?.chunks;
    return !gone || !(old!.chunks ?? []).some((c) => gone.has(c.id));
  }

  /** Records a fatal error (repository or worker failure) and stops the walk. */
  private failFatal(e: unknown): never {
    if (!this.fatal) {
      this.fatal = e;
      this.abort.abort();
    }
    throw e;
  }

  private warn(path: Buffer, message: string): void {
    this.summary.errors++;
    this.progress.errors++;
    this.opts.onWarning?.(path.toString('utf8'), message);
  }

  /** Runs a task the walk waits for; a failure of the pool itself is fatal. */
  private urgent<K extends keyof BackupTasks & string>(task: Task<BackupTasks, K>, transfer: ArrayBuffer[] = []): Promise<TaskResult<BackupTasks, K>> {
    return this.pool.run(task, transfer, undefined, true).catch((e) => this.failFatal(e));
  }

  private async inspect(dir: Buffer, names: Buffer[]): Promise<Inspected[]> {
    const batches: Promise<Inspected[]>[] = [];
    for (let i = 0; i < names.length; i += INSPECT_BATCH) {
      const part = names.slice(i, i + INSPECT_BATCH);
      const packed = packNames(part);
      batches.push(
        this.urgent({ op: 'inspect', dir: own(dir), names: packed }, [packed.bytes.buffer as ArrayBuffer]).then((b) =>
          unpackInspection(b, part.length),
        ),
      );
    }
    return (await Promise.all(batches)).flat();
  }

  /**
   * Lists one directory and starts work for each entry, in name order.
   * Resolves once the walk below it has been submitted; the Pending it
   * returns gives the directory's tree id once every entry is stored.
   */
  private async scanDir(
    absPath: Buffer,
    relPath: Buffer,
    dirStat: StatFields,
    parentTree: ObjectAddress | undefined,
    select: PathNode | undefined,
  ): Promise<Pending<ObjectAddress>> {
    throwIfAborted(this.signal);
    this.progress.dirs++;
    const key = absPath.toString('latin1');
    const listing = this.prefetched.get(key) ?? this.list(absPath, parentTree, select);
    this.prefetched.delete(key);
    const { names, inspected, parentEntries, tags } = await listing;
    if (tags && parentEntries && [...parentEntries.keys()].some((n) => !tags.some((t) => t.toString('latin1') === n))) {
      this.opts.onTaggedSinceParent?.(absPath.toString('utf8'), tags.map((t) => t.toString('utf8')).join(', '));
    }

    const children: Child[] = [];
    for (let i = 0; i < names.length; i++) {
      const child = this.child(absPath, relPath, names[i]!, inspected[i]!, select);
      if (child) children.push(child);
    }
    this.prefetch(children, parentEntries);
    const smallReads = this.readChangedSmallFiles(children, parentEntries);

    const entries: Promise<TreeEntry | null>[] = [];
    for (const child of children) {
      throwIfAborted(this.signal);
      const old = parentEntries?.get(child.entry.name.toString('latin1'));
      entries.push((await this.startEntry(child, old, dirStat, smallReads)).result);
    }
    return pending(
      (async () => {
        const done = (await Promise.all(entries)).filter((e): e is TreeEntry => e !== null);
        throwIfAborted(this.signal);
        if (parentTree && parentEntries && parentEntries.size === done.length && this.usableParent(parentTree)) {
          if (done.every((e) => sameEntry(parentEntries.get(e.name.toString('latin1')), e))) return parentTree;
        }
        return this.repo.writeDirectory(done, (node) => this.putTree(node));
      })(),
    );
  }

  /** A directory's sorted names, their inspection, and its entries in the parent snapshot. */
  private async list(absPath: Buffer, parentTree: ObjectAddress | undefined, select: PathNode | undefined): Promise<Listing> {
    parentTree = this.usableParent(parentTree);
    let names: Buffer[];
    let tags: Buffer[] | undefined;
    if (select) {
      names = [...select.children.keys()].map((n) => Buffer.from(n, 'utf8'));
    } else {
      try {
        names = await fs.readdir(absPath, { encoding: 'buffer' });
      } catch (e) {
        this.warn(absPath, `cannot list directory: ${describeError(e)}`);
        names = [];
      }
      if (this.opts.excludeIfPresent?.length) {
        tags = await findTags(absPath, names, this.opts.excludeIfPresent);
        if (tags) names = tags;
      }
    }
    names.sort(compareNames);
    const [parentEntries, inspected] = await Promise.all([
      parentTree ? this.loadParentEntries(parentTree) : undefined,
      this.inspect(absPath, names),
    ]);
    return { names, inspected, parentEntries, tags };
  }

  /**
   * Starts listing the next few subdirectories before the walk gets to them,
   * so that their system calls and parent trees load while this directory's
   * entries are handled (the walk is otherwise one round trip per directory).
   */
  private prefetch(children: Child[], parentEntries: Map<string, TreeEntry> | undefined): void {
    for (const c of children) {
      if (this.prefetched.size >= PREFETCH_DIRS) return;
      if (c.entry.type !== 'dir') continue;
      if (this.opts.oneFileSystem && !c.select) continue; // may be a mount point: decided when reached
      const old = parentEntries?.get(c.entry.name.toString('latin1'));
      const p = this.list(c.abs, old?.type === 'dir' ? subtreeOf(old) : undefined, c.select);
      p.catch(() => undefined);
      this.prefetched.set(c.abs.toString('latin1'), p);
    }
  }

  /** Turns an inspected name into a child to back up, or null (vanished, unreadable, excluded). */
  private child(dir: Buffer, relDir: Buffer, name: Buffer, info: Inspected, select: PathNode | undefined): Child | null {
    const abs = childPath(dir, name);
    if (!info.ok) {
      if (info.code !== 'ENOENT') this.warn(abs, info.message);
      return null;
    }
    const childSelect = select?.children.get(name.toString('utf8'));
    const sub = childSelect && !childSelect.whole ? childSelect : undefined;
    const type = entryType(info.st.mode);
    if (!type) {
      this.warn(abs, 'unknown file type, skipped');
      return null;
    }
    if (!sub && this.excluded(abs, type === 'dir')) return null;
    const entry = entryFromStats(name, type, info.st, this.names);
    if (info.xattrs) entry.xattrs = info.xattrs.map(([n, v]) => [Buffer.from(n), Buffer.from(v)]);
    if (info.warning) this.warn(abs, info.warning);
    if (info.target) {
      entry.target = Buffer.from(info.target);
      entry.size = entry.target.length;
    }
    const rel = relDir.length ? Buffer.concat([relDir, Buffer.from('/'), name]) : name;
    return { abs, rel, st: info.st, entry, select: sub };
  }

  private excluded(abs: Buffer, isDir: boolean): boolean {
    if (isDir && this.skipDirs.has(abs.toString('utf8'))) return true;
    return !this.excludes.empty && this.excludes.matches(abs.toString('utf8'));
  }

  /** Starts reading, in batches, the changed files small enough to be stored inline. */
  private readChangedSmallFiles(children: Child[], parentEntries: Map<string, TreeEntry> | undefined): Map<Child, Promise<SmallRead>> {
    const limit = this.repo.config.inlineMax;
    const wanted = children.filter(
      (c) =>
        c.entry.type === 'file' &&
        c.entry.size <= limit &&
        (c.st.nlink <= 1 || !this.hardlinks.has(`${c.st.dev}:${c.st.ino}`)) &&
        !this.reusable(parentEntries?.get(c.entry.name.toString('latin1')), c.entry),
    );
    const out = new Map<Child, Promise<SmallRead>>();
    for (let i = 0; i < wanted.length; i += SMALL_BATCH) {
      const batch = wanted.slice(i, i + SMALL_BATCH);
      const paths = packNames(batch.map((c) => c.abs));
      const reads = this.urgent({ op: 'readSmall', paths, limit, digestAbove: this.bundler && INLINE_ALWAYS }, [paths.bytes.buffer as ArrayBuffer]);
      batch.forEach((c, j) => out.set(c, reads.then((r) => r[j]!)));
    }
    return out;
  }

  /**
   * Seals and stores a tree node here, on the main thread: trees are small,
   * and a round trip through a worker (task, has, put, answers) cost more in
   * messages than the sealing itself.
   */
  private async putTree(node: TreeNode): Promise<ObjectAddress> {
    this.guard.noteNode(node);
    let r: PutResult;
    try {
      r = await this.repo.putTree(node, { signal: this.signal });
    } catch (e) {
      return this.failFatal(e);
    }
    if (!r.isNew && this.damagedTrees.delete(r.id)) r = await this.replaceDamagedTree(node, r);
    if (r.isNew) {
      this.summary.newTrees++;
      this.summary.storedBytes += r.storedBytes;
    }
    return r.key ? { id: r.id, key: r.key } : { id: r.id };
  }

  /**
   * Stores a tree node whose stored copy was found damaged: removes that
   * copy, then puts the node again. Where the store forbids deletion (an
   * append-only client) the damaged copy stays, and the warning says so.
   */
  private async replaceDamagedTree(node: TreeNode, r: PutResult): Promise<PutResult> {
    try {
      await this.repo.deleteObject('tree', r.id, { signal: this.signal });
    } catch (e) {
      const code = e instanceof ObnamError ? e.code : undefined;
      if (code === 'PERMISSION') {
        this.warn(Buffer.alloc(0), `tree ${r.id} of the parent snapshot is damaged and cannot be replaced here (${describeError(e)}): this snapshot names it too; run obnam fsck`);
        return r;
      }
      if (code !== 'NOT_FOUND') return this.failFatal(e); // gone already: put it
    }
    try {
      return await this.repo.putTree(node, { signal: this.signal });
    } catch (e) {
      return this.failFatal(e);
    }
  }

  private async loadParentEntries(tree: ObjectAddress): Promise<Map<string, TreeEntry> | undefined> {
    const m = new Map<string, TreeEntry>();
    try {
      const read = (id: string, key: Uint8Array | undefined) =>
        this.repo.getTree(id, { signal: this.signal, key }).catch((e: unknown) => {
          if (e instanceof ObnamError && e.code === 'CORRUPT') this.damagedTrees.add(id);
          throw e;
        });
      for await (const e of directoryEntries(read, tree.id, tree.key)) {
        m.set(e.name.toString('latin1'), e);
      }
    } catch (e) {
      // A damaged parent only costs re-reading files; the new snapshot does not depend on it.
      if (e instanceof ObnamError && (e.code === 'CORRUPT' || e.code === 'NOT_FOUND')) return undefined;
      throw e;
    }
    return m;
  }

  /**
   * Does the part of an entry's work that must happen in walk order (listing
   * subdirectories, queueing file content) and returns a Pending of the
   * finished entry (null if it had to be left out).
   */
  private async startEntry(
    child: Child,
    old: TreeEntry | undefined,
    dirStat: StatFields,
    smallReads: Map<Child, Promise<SmallRead>>,
  ): Promise<Pending<TreeEntry | null>> {
    const { abs, rel, st, entry, select } = child;
    switch (entry.type) {
      case 'dir': {
        this.summary.dirs++;
        if (this.opts.oneFileSystem && !select && st.dev !== dirStat.dev) {
          // A mount point under --one-file-system: recorded, empty, as restic does.
          return pending(this.putTree({ kind: 'leaf', entries: [] }).then((subtree) => withSubtree(entry, subtree)));
        }
        const oldTree = old?.type === 'dir' ? subtreeOf(old) : undefined;
        const scan = await this.scanDir(abs, rel, st, oldTree, select);
        return pending(scan.result.then((subtree) => withSubtree(entry, subtree)));
      }
      case 'symlink':
        this.summary.symlinks++;
        return ready(entry);
      case 'file':
        return this.startFile(child, old, smallReads.get(child));
      default:
        this.summary.others++;
        return ready(entry);
    }
  }

  private async startFile(child: Child, old: TreeEntry | undefined, smallRead: Promise<SmallRead> | undefined): Promise<Pending<TreeEntry | null>> {
    const { rel, st, entry } = child;
    this.progress.files++;
    this.progress.bytes += entry.size;
    if (st.nlink <= 1) return this.startContent(child, old, smallRead);
    const key = `${st.dev}:${st.ino}`;
    const previous = this.hardlinks.get(key);
    if (!previous) {
      const p = await this.startContent(child, old, smallRead);
      this.hardlinks.set(key, p.result.then((e) => (e ? rel : null)));
      return p;
    }
    // A later link to an inode seen before: a hardlink entry to the first path
    // whose content was stored, or, if none was (it could not be read), this
    // one carries the content instead.
    let carried!: (first: Buffer | null) => void;
    this.hardlinks.set(key, new Promise<Buffer | null>((r) => (carried = r)));
    return pending(
      previous.then(async (first) => {
        if (first) {
          carried(first);
          this.summary.files++;
          return { ...entry, type: 'hardlink' as const, size: 0, link: first };
        }
        const e = await (await this.startContent(child, old, undefined)).result.catch(() => null);
        carried(e ? rel : null);
        return e;
      }),
    );
  }

  /** Reuses, reads inline, or chunks one file's content. */
  private async startContent(child: Child, old: TreeEntry | undefined, smallRead: Promise<SmallRead> | undefined): Promise<Pending<TreeEntry | null>> {
    const { abs, entry } = child;
    if (this.reusable(old, entry)) {
      entry.chunks = old.chunks;
      entry.data = old.data;
      this.countFile(entry.size, false);
      return ready(entry);
    }
    this.opts.onFileRead?.(abs.toString('utf8'), old ? 'changed' : 'new');
    const limit = this.repo.config.inlineMax;
    if (!smallRead && entry.size <= limit) {
      const paths = packNames([abs]);
      smallRead = this.urgent({ op: 'readSmall', paths, limit, digestAbove: this.bundler && INLINE_ALWAYS }, [paths.bytes.buffer as ArrayBuffer]).then((r) => r[0]!);
    }
    if (smallRead) {
      const r = await smallRead;
      if (!r.ok) {
        if (r.code !== 'ENOENT') this.warn(abs, r.message);
        return ready(null);
      }
      if (r.data.length <= limit) {
        entry.size = r.data.length;
        this.progress.bytesRead += r.data.length;
        this.countFile(r.data.length, true);
        if (this.bundler && r.data.length > INLINE_ALWAYS) {
          // Format version 4: into the walk's open bundle; the entry is done once the bundle is stored.
          return pending(
            this.bundler.add(r.data, r.digest).then(
              (ref) => ((entry.chunks = [ref]), entry),
              (e) => this.failFatal(e),
            ),
          );
        }
        entry.data = Buffer.from(r.data);
        return ready(entry);
      }
      // It grew past the inline limit since lstat: chunk it like any large file.
    }
    await this.pool.ready();
    throwIfAborted(this.signal);
    const result = this.pool.run({ op: 'backupFile', path: own(abs), size: entry.size, walk: `${this.runNumber}.${this.walk}` }, [], (n) => {
      this.progress.bytesRead += n;
    });
    return pending(
      result.then(
        (r) => {
          if (!r.ok) {
            if (r.code !== 'NOT_FOUND') this.warn(abs, r.message);
            return null;
          }
          const c = r.content;
          entry.chunks = c.chunks.map(([id, length, key]) => (key ? { id, length, key } : { id, length }));
          entry.size = c.size;
          this.countFile(c.size, true);
          this.summary.newChunks += c.newChunks;
          this.summary.newBytes += c.newBytes;
          this.summary.storedBytes += c.storedBytes;
          return entry;
        },
        (e) => this.failFatal(e),
      ),
    );
  }

  /** Stores one closed bundle (an ordinary chunk). */
  private async putBundle(plaintext: Uint8Array): Promise<PutResult> {
    try {
      return await this.repo.putObject('chunk', plaintext, { signal: this.signal });
    } catch (e) {
      return this.failFatal(e);
    }
  }

  private countBundle(r: PutResult, plaintextBytes: number): void {
    if (!r.isNew) return;
    this.summary.newChunks++;
    this.summary.newBytes += plaintextBytes;
    this.summary.storedBytes += r.storedBytes;
  }

  private countFile(size: number, read: boolean): void {
    this.summary.files++;
    this.summary.bytes += size;
    if (read) {
      this.summary.filesRead++;
      this.progress.filesRead++;
    }
  }
}
