/**
 * The restore engine: recreates a snapshot, or one path in it, under a
 * target directory: content, mode, mtime, symlinks, hardlinks, empty
 * directories, fifos and devices, xattrs, and ownership when run as root.
 *
 * The main thread walks the trees and creates directories; files and other
 * entries are created by the worker pool (small ones in batches, large files
 * one task each, fetching their chunks through the main thread's store).
 *
 * Safety (format-spec section 12): names were validated when trees were
 * decoded (no "/", ".", ".."); every file system call uses names as bytes,
 * relative to directory fds opened one component at a time without following
 * symlinks (the target itself is opened O_NOFOLLOW, and its device and inode
 * are checked by each worker task); a directory whose place holds a symlink
 * or other non-directory stops the restore (HOSTILE_PATH); files are created
 * with O_EXCL|O_NOFOLLOW after removing what was in the way; and a hardlink
 * is made only to a file this restore wrote. So nothing in a snapshot can make
 * the restore touch anything outside the target. Directories get their
 * metadata after their children (their mtime would change otherwise, and a
 * read-only directory could not be filled).
 */
import { close as fsClose, constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describeError, errnoCode, ObnamError, throwIfAborted } from '../errors.js';
import { isBundleRef, ObjectAddress, subtreeOf, TreeEntry } from '../format/tree.js';
import { BundleReader } from '../repo/bundle-reader.js';
import { directoryEntries, resolvePath, snapshotPathComponents } from '../repo/treewalk.js';
import { ObjectReader, SnapshotInfo, snapshotRoot } from '../repo/views.js';
import { fsops } from '../util/fsops.js';
import { own } from '../util/own.js';
import { Pending, pending, ready } from '../util/pending.js';
import type { TaskRunner } from '../workers/protocol.js';
import type { RestoreItem, RestoreItemResult, RestoreMeta, RestoreRoot } from './apply.js';
import type { RestoreTasks } from './worker-tasks.js';

export interface RestoreProgress {
  files: number;
  dirs: number;
  bytes: number;
  errors: number;
}

export interface RestoreOptions {
  target: string;
  /** Restore only this path of the snapshot (absolute or relative to its root), kept at its place under target. */
  subPath?: string;
  pool: TaskRunner<RestoreTasks>;
  /** Restore uid/gid; default: when running as root. */
  owners?: boolean;
  signal?: AbortSignal;
  progress?: RestoreProgress;
  onWarning?: (path: string, message: string) => void;
}

export type RestoreResult = RestoreProgress;

const SLASH = Buffer.from('/');
const BATCH_ITEMS = 64;
const BATCH_BYTES = 4 << 20;

/** Closes an fd off the main thread (through libuv's pool, as fs does). */
const closeFd = (fd: number) => new Promise<void>((resolve) => fsClose(fd, () => resolve()));

export function newRestoreProgress(): RestoreProgress {
  return { files: 0, dirs: 0, bytes: 0, errors: 0 };
}

export async function restore(repo: ObjectReader, snapshot: SnapshotInfo, opts: RestoreOptions): Promise<RestoreResult> {
  return new RestoreRun(repo, opts).run(snapshot);
}

function metaOf(e: TreeEntry): RestoreMeta {
  return {
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    mtime: e.mtime,
    xattrs: e.xattrs?.map(([n, v]) => [own(n), own(v)]),
  };
}

/** Small entries waiting to go to a worker together. */
class Batch {
  items: RestoreItem[] = [];
  done: ((r: RestoreItemResult) => void)[] = [];
  bytes = 0;
}

class RestoreRun {
  private readonly progress: RestoreProgress;
  private readonly owners: boolean;
  /** Files others hard-link to: snapshot path -> restored path (below the target) once written, null if it failed. */
  private readonly linkTargets = new Map<string, Promise<Buffer | null>>();
  /** The target as workers check it when they open it again. */
  private root!: RestoreRoot;
  private readonly loadTree = (id: string, key?: Uint8Array) => this.repo.getTree(id, { signal: this.opts.signal, key });
  /** Small files' bundles (format version 4), each read once for the files it holds. */
  private readonly bundles = new BundleReader((id) => this.repo.getObject('chunk', id, { signal: this.opts.signal }));
  private batch = new Batch();
  private flushScheduled = false;

  constructor(
    private readonly repo: ObjectReader,
    private readonly opts: RestoreOptions,
  ) {
    this.progress = opts.progress ?? newRestoreProgress();
    this.owners = opts.owners ?? process.getuid?.() === 0;
  }

  async run(snapshot: SnapshotInfo): Promise<RestoreResult> {
    fsops(); // fails here, with how to build it, if the native helper is missing
    const target = Buffer.from(path.resolve(this.opts.target), 'utf8');
    await this.ensureTarget(target);
    const select = this.opts.subPath === undefined ? [] : snapshotPathComponents(this.opts.subPath);
    if (select.length) await this.checkSubPath(snapshot, select);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(target, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    } catch (e) {
      throw new ObnamError('HOSTILE_PATH', `cannot open the restore target ${target}: ${describeError(e)}`);
    }
    try {
      const st = await handle.stat({ bigint: true });
      this.root = { path: own(target), dev: st.dev, ino: st.ino };
      const done = await this.restoreDir(snapshotRoot(snapshot), handle.fd, target, Buffer.alloc(0), select);
      this.sendBatch();
      await done.result;
    } finally {
      await handle.close();
    }
    return { ...this.progress };
  }

  /** Fails early, with a clear message, if the path is not in the snapshot. */
  private async checkSubPath(snapshot: SnapshotInfo, select: Buffer[]): Promise<void> {
    try {
      await resolvePath(this.loadTree, snapshotRoot(snapshot), select);
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') {
        throw new ObnamError('NOT_FOUND', `${this.opts.subPath} is not in snapshot ${snapshot.id.slice(0, 8)}`);
      }
      throw e;
    }
  }

  private warn(p: Buffer | string, message: string): void {
    this.progress.errors++;
    this.opts.onWarning?.(p.toString(), message);
  }

  /** Makes the target a real directory (not a symlink), creating it if needed (its parents must exist). */
  private async ensureTarget(dir: Buffer): Promise<void> {
    try {
      await fs.mkdir(dir, { mode: 0o700 });
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw new ObnamError('IO', `cannot create directory ${dir}: ${describeError(e)}`);
      const st = await fs.lstat(dir);
      if (!st.isDirectory()) {
        throw new ObnamError('HOSTILE_PATH', `${dir} exists and is not a directory; refusing to restore through it`);
      }
    }
  }

  /**
   * Makes `name` in the directory `parentFd` a real directory, creating it
   * if needed, and opens it (O_PATH, without following a symlink). A symlink
   * or file in its place stops the restore.
   */
  private async ensureDir(parentFd: number, name: Buffer, abs: Buffer): Promise<number> {
    try {
      return await fsops().makeDirAsync(parentFd, name, 0o700);
    } catch (e) {
      if (errnoCode(e) === 'ENOTDIR') {
        throw new ObnamError('HOSTILE_PATH', `${abs} exists and is not a directory; refusing to restore through it`);
      }
      throw new ObnamError('IO', `cannot create directory: ${describeError(e)}`);
    }
  }

  /** In walk order: sends the batch if the next item would overflow it, once the pool has room. */
  private async makeRoom(bytes: number): Promise<void> {
    if (this.batch.items.length >= BATCH_ITEMS || this.batch.bytes + bytes > BATCH_BYTES) {
      await this.opts.pool.ready();
      this.sendBatch();
    }
  }

  /** Queues a small entry for a worker; resolves when it has been created. */
  private queueItem(item: RestoreItem, bytes = 0): Promise<RestoreItemResult> {
    return new Promise((resolve) => {
      this.batch.items.push(item);
      this.batch.done.push(resolve);
      this.batch.bytes += bytes;
    });
  }

  /**
   * Sends the batch once this turn of the event loop is over: entries that
   * become ready together (the directories whose last child a batch just
   * wrote) go to a worker together.
   */
  private sendSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.sendBatch();
    });
  }

  private sendBatch(): void {
    const b = this.batch;
    if (!b.items.length) return;
    this.batch = new Batch();
    this.opts.pool.run({ op: 'restoreItems', root: this.root, items: b.items, owners: this.owners }).then(
      (results) => results.forEach((r, i) => b.done[i]!(r)),
      (e) => b.done.forEach((d) => d([describeError(e)])),
    );
  }

  /**
   * Restores a directory's entries into `dir` (which exists, open as
   * `dirFd`). With `select`, only the entry named by its first component, and
   * below it the rest of the path. Resolves when the walk below is submitted;
   * the Pending settles when everything below is written.
   *
   * The main thread uses directory fds only here, to create subdirectories,
   * one at a time (each awaited before the walk goes on), so an fd is closed
   * once the walk below it is submitted, with nothing in flight that uses it.
   * (Workers open the directories they write to themselves: TargetDirs.)
   */
  private async restoreDir(tree: ObjectAddress, dirFd: number, dir: Buffer, rel: Buffer, select: Buffer[]): Promise<Pending<void>> {
    const work: Promise<void>[] = [];
    const wanted = select[0];
    for await (const entry of directoryEntries(this.loadTree, tree.id, tree.key)) {
      throwIfAborted(this.opts.signal);
      if (wanted && !entry.name.equals(wanted)) continue;
      const abs = Buffer.concat([dir, SLASH, entry.name]);
      const childRel = rel.length ? Buffer.concat([rel, SLASH, entry.name]) : entry.name;
      work.push((await this.restoreEntry(entry, dirFd, abs, childRel, select.slice(1))).result);
    }
    return pending(Promise.all(work).then(() => undefined));
  }

  private report(abs: Buffer, problems: RestoreItemResult): void {
    for (const m of problems ?? []) this.warn(abs, m);
  }

  private async restoreEntry(entry: TreeEntry, dirFd: number, abs: Buffer, rel: Buffer, select: Buffer[]): Promise<Pending<void>> {
    const meta = metaOf(entry);
    const path = own(rel);
    switch (entry.type) {
      case 'dir': {
        let fd: number;
        try {
          fd = await this.ensureDir(dirFd, entry.name, abs);
        } catch (e) {
          if (e instanceof ObnamError && e.code === 'HOSTILE_PATH') throw e;
          this.warn(abs, describeError(e));
          return ready(undefined);
        }
        this.progress.dirs++;
        let below: Pending<void>;
        try {
          below = await this.restoreDir(subtreeOf(entry)!, fd, abs, rel, select);
        } finally {
          await closeFd(fd);
        }
        return pending(
          below.result.then(async () => {
            const r = this.queueItem({ type: 'dirmeta', path, meta });
            this.sendSoon(); // the walk may be over: do not leave it waiting
            this.report(abs, await r);
          }),
        );
      }
      case 'file':
        return this.restoreFile(entry, abs, rel, meta);
      case 'hardlink':
        return this.restoreHardlink(entry, abs, rel);
      case 'symlink':
        return this.restoreSmall(abs, { type: 'symlink', path, target: own(entry.target!), meta });
      case 'fifo':
        return this.restoreSmall(abs, { type: 'fifo', path, meta });
      case 'chardev':
      case 'blockdev':
        if (!this.owners) {
          this.warn(abs, 'device files are restored only when running as root; skipped');
          return ready(undefined);
        }
        return this.restoreSmall(abs, { type: entry.type, path, rdev: entry.rdev ?? 0, meta });
      case 'socket':
        // A socket file as bind() makes it (no process listens on it, as after a reboot).
        return this.restoreSmall(abs, { type: 'socket', path, meta });
    }
  }

  private async restoreSmall(abs: Buffer, item: RestoreItem): Promise<Pending<void>> {
    await this.makeRoom(0);
    return pending(this.queueItem(item).then((r) => this.report(abs, r)));
  }

  private async restoreFile(entry: TreeEntry, abs: Buffer, rel: Buffer, meta: RestoreMeta): Promise<Pending<void>> {
    let written: Promise<boolean>;
    let data = entry.data;
    if (entry.chunks && isBundleRef(entry.chunks)) {
      // A small file in a bundle: written like inline data, from the bundle read once for its neighbours too.
      try {
        data = await this.bundles.read(entry.chunks[0]!);
      } catch (e) {
        if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
        this.warn(abs, describeError(e));
        if ((entry.nlink ?? 1) > 1) this.linkTargets.set(rel.toString('latin1'), Promise.resolve(null));
        return ready(undefined);
      }
    }
    if (data) {
      const size = data.length;
      await this.makeRoom(size);
      written = this.queueItem({ type: 'file', path: own(rel), data: own(data), meta }, size).then((r) => {
        // Only metadata problems ("cannot set ...") leave the content in place.
        const ok = !r || r.every((m) => m.startsWith('cannot set'));
        this.report(abs, r);
        if (ok) this.progress.bytes += size;
        return ok;
      });
    } else {
      await this.opts.pool.ready();
      const task = {
        op: 'restoreFile' as const,
        root: this.root,
        path: own(rel),
        chunks: entry.chunks!.map((c): [string, number, Uint8Array?] => (c.key ? [c.id, c.length, c.key] : [c.id, c.length])),
        meta,
        owners: this.owners,
      };
      written = this.opts.pool
        .run(task, [], (n) => {
          this.progress.bytes += n;
        })
        .then(
          (r) => {
            this.report(abs, r.problems);
            return true;
          },
          (e) => {
            if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
            this.warn(abs, describeError(e));
            return false;
          },
        );
    }
    const done = written.then((ok) => {
      if (ok) this.progress.files++;
      return ok ? rel : null;
    });
    if ((entry.nlink ?? 1) > 1) this.linkTargets.set(rel.toString('latin1'), done);
    return pending(done.then(() => undefined));
  }

  private async restoreHardlink(entry: TreeEntry, abs: Buffer, rel: Buffer): Promise<Pending<void>> {
    const first = this.linkTargets.get(entry.link!.toString('latin1'));
    if (!first) {
      this.warn(abs, `hardlink to /${entry.link!.toString()} not restored: its target is not part of this restore`);
      return ready(undefined);
    }
    return pending(
      first.then(async (target) => {
        if (!target) return this.warn(abs, `hardlink to /${entry.link!.toString()} not restored: its target failed`);
        const r = this.queueItem({ type: 'hardlink', path: own(rel), target: own(target) });
        this.sendSoon();
        const problems = await r;
        this.report(abs, problems);
        if (!problems) this.progress.files++;
      }),
    );
  }
}
