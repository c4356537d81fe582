/**
 * The backup engine: walks the backed-up paths and writes chunks, trees and
 * finally one snapshot.
 *
 * The walk is depth-first in name order and streams: a directory's listing
 * is held only until its tree is written, and file content goes to the
 * worker pool, whose bounded queue pauses the walk when workers fall behind.
 * Files whose size, mtime, ctime and inode match the parent snapshot's entry
 * are not read again: their chunk list is reused. Files that cannot be read
 * are reported through onWarning and left out; the snapshot is still written.
 * Nothing but the final snapshot makes the backup visible, so an interrupted
 * backup leaves only unreferenced (but complete) objects behind.
 */
import type { BigIntStats } from 'node:fs';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import { describeError, errnoCode, ObnamError, throwIfAborted } from '../errors.js';
import { nowTimestamp, Snapshot, SnapshotSummary } from '../format/snapshot.js';
import { compareNames, TreeEntry, TreeNode } from '../format/tree.js';
import { directoryEntries, writeDirectory } from '../format/treesplit.js';
import type { Repository, SnapshotInfo } from '../repo/repository.js';
import { ExcludeMatcher } from '../util/glob.js';
import { IdNames } from '../util/ids-names.js';
import { Pending, pending, ready } from '../util/pending.js';
import type { WorkerPool } from '../workers/pool.js';
import type { BackupFileResult } from '../workers/tasks.js';
import { entryFromStats, entryType, readXattrs, unchangedFile } from './metadata.js';
import { buildRoots, PathNode } from './roots.js';

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
  /** Absolute directories never backed up (the repository itself). */
  skipDirs?: string[];
  oneFileSystem?: boolean;
  pool: WorkerPool;
  signal?: AbortSignal;
  progress?: BackupProgress;
  onWarning?: (path: string, message: string) => void;
  hostname?: string;
  username?: string;
}

export interface BackupResult {
  id: string;
  snapshot: Snapshot;
  warnings: number;
}



/** lstat and xattr calls in flight while inspecting one directory. */
const LSTAT_CONCURRENCY = 32;
const SLASH = Buffer.from('/');

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

export async function backup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  const run = new BackupRun(repo, opts);
  return run.run();
}

class BackupRun {
  private readonly progress: BackupProgress;
  private readonly summary: SnapshotSummary = {
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
  private readonly excludes: ExcludeMatcher;
  private readonly skipDirs: Set<string>;
  private readonly hardlinks = new Map<string, Buffer>();
  private readonly abort = new AbortController();
  private fatal?: unknown;
  private names!: IdNames;

  constructor(
    private readonly repo: Repository,
    private readonly opts: BackupOptions,
  ) {
    this.progress = opts.progress ?? newProgress();
    this.excludes = new ExcludeMatcher(opts.excludes ?? []);
    this.skipDirs = new Set(opts.skipDirs ?? []);
    opts.signal?.addEventListener('abort', () => this.abort.abort(), { once: true });
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  async run(): Promise<BackupResult> {
    const time = nowTimestamp();
    const { root, paths } = buildRoots(this.opts.paths);
    for (const p of paths) {
      try {
        await fs.lstat(p);
      } catch (e) {
        throw new ObnamError('USAGE', `cannot back up ${p}: ${describeError(e)}`);
      }
    }
    this.names = await IdNames.load();
    const hostname = this.opts.hostname ?? (await import('node:os')).hostname();
    const username = this.opts.username ?? (await import('../repo/repository.js')).hostInfo().username;

    let parent: SnapshotInfo | undefined;
    if (this.opts.parent) parent = await this.repo.resolveSnapshot(this.opts.parent);
    else if (this.opts.parent === undefined) parent = pickParent(await this.repo.listSnapshots(), hostname, paths);

    const rootStat = await fs.lstat('/', { bigint: true });
    const scan = await this.scanDir(Buffer.from('/'), Buffer.alloc(0), rootStat, parent?.tree, root.whole ? undefined : root);
    const rootTree = await this.finishOrThrow(scan.result);
    throwIfAborted(this.signal);
    const snapshot: Snapshot = {
      tree: rootTree,
      time,
      end: nowTimestamp(),
      hostname,
      username,
      paths,
      tags: [...new Set(this.opts.tags ?? [])].sort(),
      parent: parent?.id,
      program: PROGRAM,
      summary: this.summary,
    };
    const { id } = await this.repo.putSnapshot(snapshot, { signal: this.signal });
    return { id, snapshot, warnings: this.summary.errors };
  }

  private async finishOrThrow(p: Promise<string>): Promise<string> {
    try {
      return await p;
    } catch (e) {
      throw this.fatal ?? e;
    }
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

  /**
   * Lists one directory and starts work for each entry, in name order. Resolves
   * once the walk below it has been submitted; the promise it resolves to
   * gives the directory's tree id once every entry's content is stored.
   */
  private async scanDir(
    absPath: Buffer,
    relPath: Buffer,
    dirStat: BigIntStats,
    parentTree: string | undefined,
    select: PathNode | undefined,
  ): Promise<Pending<string>> {
    throwIfAborted(this.signal);
    this.progress.dirs++;
    let names: Buffer[];
    if (select) {
      names = [...select.children.keys()].map((n) => Buffer.from(n, 'utf8'));
    } else {
      try {
        names = await fs.readdir(absPath, { encoding: 'buffer' });
      } catch (e) {
        this.warn(absPath, `cannot list directory: ${describeError(e)}`);
        names = [];
      }
    }
    names.sort(compareNames);

    const parentEntries = parentTree ? await this.loadParentEntries(parentTree) : undefined;
    const children = await this.inspectAll(absPath, relPath, names, select);
    const entries: Promise<TreeEntry | null>[] = [];
    for (const child of children) {
      throwIfAborted(this.signal);
      if (!child) continue;
      const old = parentEntries?.get(child.entry.name.toString('latin1'));
      entries.push((await this.startEntry(child, old, dirStat)).result);
    }
    return pending(
      (async () => {
        const done = (await Promise.all(entries)).filter((e): e is TreeEntry => e !== null);
        throwIfAborted(this.signal);
        return writeDirectory(done, this.repo.keys.chunker, (node) => this.putTree(node));
      })(),
    );
  }

  /** lstat, xattrs and exclusion for every name of a directory, several at a time. */
  private async inspectAll(dir: Buffer, relDir: Buffer, names: Buffer[], select: PathNode | undefined): Promise<(Child | null)[]> {
    const out: (Child | null)[] = new Array(names.length).fill(null);
    let next = 0;
    const inspectOne = async (name: Buffer): Promise<Child | null> => {
      const abs = dir.length === 1 ? Buffer.concat([SLASH, name]) : Buffer.concat([dir, SLASH, name]);
      let st: BigIntStats;
      try {
        st = await fs.lstat(abs, { bigint: true });
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') this.warn(abs, describeError(e));
        return null;
      }
      const childSelect = select?.children.get(name.toString('utf8'));
      const sub = childSelect && !childSelect.whole ? childSelect : undefined;
      if (!sub && this.excluded(abs, name, st)) return null;
      const type = entryType(st);
      if (!type) {
        this.warn(abs, 'unknown file type, skipped');
        return null;
      }
      const entry = entryFromStats(name, type, st, this.names);
      if (type === 'file' || type === 'dir') entry.xattrs = await readXattrs(abs);
      const rel = relDir.length ? Buffer.concat([relDir, SLASH, name]) : name;
      return { abs, rel, st, entry, select: sub };
    };
    const worker = async () => {
      while (next < names.length) {
        const i = next++;
        out[i] = await inspectOne(names[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(LSTAT_CONCURRENCY, names.length) }, worker));
    return out;
  }

  private excluded(abs: Buffer, name: Buffer, st: BigIntStats): boolean {
    if (st.isDirectory() && this.skipDirs.has(abs.toString('utf8'))) return true;
    return !this.excludes.empty && this.excludes.matches(abs.toString('utf8'), name.toString('utf8'));
  }

  private async putTree(node: TreeNode): Promise<string> {
    try {
      const r = await this.repo.putTree(node, { signal: this.signal });
      if (r.isNew) {
        this.summary.newTrees++;
        this.summary.storedBytes += r.storedBytes;
      }
      return r.id;
    } catch (e) {
      return this.failFatal(e);
    }
  }

  private async loadParentEntries(treeId: string): Promise<Map<string, TreeEntry> | undefined> {
    const m = new Map<string, TreeEntry>();
    try {
      for await (const e of directoryEntries((id) => this.repo.getTree(id, { signal: this.signal }), treeId)) {
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
   * subdirectories, queueing file content) and returns a promise of the
   * finished entry (null if it had to be left out).
   */
  private async startEntry(child: Child, old: TreeEntry | undefined, parentDirStat: BigIntStats): Promise<Pending<TreeEntry | null>> {
    const { abs, rel, st, entry, select } = child;
    switch (entry.type) {
      case 'dir': {
        this.summary.dirs++;
        if (this.opts.oneFileSystem && !select && st.dev !== parentDirStat.dev) {
          // A mount point under --one-file-system: recorded, empty, as restic does.
          return pending(this.putTree({ kind: 'leaf', entries: [] }).then((subtree) => ({ ...entry, subtree })));
        }
        const oldTree = old?.type === 'dir' ? old.subtree : undefined;
        const scan = await this.scanDir(abs, rel, st, oldTree, select);
        return pending(scan.result.then((subtree) => ({ ...entry, subtree })));
      }
      case 'symlink': {
        try {
          entry.target = await fs.readlink(abs, { encoding: 'buffer' });
        } catch (e) {
          this.warn(abs, `cannot read symlink: ${describeError(e)}`);
          return ready(null);
        }
        entry.size = entry.target.length;
        this.summary.symlinks++;
        return ready(entry);
      }
      case 'file':
        return this.startFile(abs, rel, st, entry, old);
      default:
        this.summary.others++;
        return ready(entry);
    }
  }

  private async startFile(
    abs: Buffer,
    rel: Buffer,
    st: BigIntStats,
    entry: TreeEntry,
    old: TreeEntry | undefined,
  ): Promise<Pending<TreeEntry | null>> {
    this.progress.files++;
    this.progress.bytes += entry.size;
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.hardlinks.get(key);
      if (first) {
        this.summary.files++;
        return ready({ ...entry, type: 'hardlink', size: 0, link: first });
      }
      this.hardlinks.set(key, rel);
    }
    if (unchangedFile(old, entry)) {
      entry.chunks = old!.chunks;
      entry.data = old!.data;
      this.countFile(entry.size);
      return ready(entry);
    }
    if (entry.size <= this.repo.config.inlineMax) {
      const data = await this.readSmallFile(abs);
      if (data === null) return ready(null);
      if (data.length <= this.repo.config.inlineMax) {
        entry.data = data;
        entry.size = data.length;
        this.progress.bytesRead += data.length;
        this.countFile(data.length, true);
        return ready(entry);
      }
      // It grew past the inline limit since lstat: chunk it like any large file.
    }
    await this.opts.pool.ready();
    throwIfAborted(this.signal);
    const result = this.opts.pool.run<BackupFileResult>({ op: 'backupFile', path: new Uint8Array(abs) }, [], (n) => {
      this.progress.bytesRead += n as number;
    });
    return pending(
      result.then(
      (r) => {
        if (!r.ok) {
          if (r.code !== 'NOT_FOUND') this.warn(abs, r.message);
          return null;
        }
        const c = r.content;
        entry.chunks = c.chunks.map(([id, length]) => ({ id, length }));
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

  private countFile(size: number, read = false): void {
    this.summary.files++;
    this.summary.bytes += size;
    if (read) {
      this.summary.filesRead++;
      this.progress.filesRead++;
    }
  }

  /** Reads a file that should fit inline; null (and a warning) if it cannot be read. */
  private async readSmallFile(abs: Buffer): Promise<Buffer | null> {
    let fh: fs.FileHandle | undefined;
    try {
      fh = await fs.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      const limit = this.repo.config.inlineMax + 1;
      const buf = Buffer.allocUnsafe(limit);
      let len = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, len, limit - len, null);
        if (bytesRead === 0) break;
        len += bytesRead;
        if (len === limit) break;
      }
      return Buffer.from(buf.subarray(0, len));
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') this.warn(abs, `cannot read: ${describeError(e)}`);
      return null;
    } finally {
      await fh?.close();
    }
  }
}

interface Child {
  abs: Buffer;
  rel: Buffer;
  st: BigIntStats;
  entry: TreeEntry;
  select: PathNode | undefined;
}
