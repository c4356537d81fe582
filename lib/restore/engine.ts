/**
 * The restore engine: recreates a snapshot, or one path in it, under a
 * target directory: content, mode, mtime, symlinks, hardlinks, empty
 * directories, fifos and devices, xattrs, and ownership when run as root.
 *
 * Safety: names were validated when trees were decoded (no "/", ".", ".."),
 * every directory the restore descends into is checked to be a real
 * directory (never a symlink), files are opened with O_NOFOLLOW, and a
 * hardlink is made only to a file this restore wrote, so nothing in a
 * snapshot can make the restore write outside the target.
 *
 * Directories get their metadata after their children (their mtime would
 * change otherwise, and a read-only directory could not be filled).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { setAttribute } from 'fs-xattr';
import { describeError, errnoCode, ObnamError, throwIfAborted } from '../errors.js';
import type { TreeEntry } from '../format/tree.js';
import { directoryEntries, findEntry } from '../format/treesplit.js';
import type { Repository, SnapshotInfo } from '../repo/repository.js';
import { Pending, pending, ready } from '../util/pending.js';
import type { WorkerPool } from '../workers/pool.js';

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
  pool: WorkerPool;
  /** Restore uid/gid; default: when running as root. */
  owners?: boolean;
  signal?: AbortSignal;
  progress?: RestoreProgress;
  onWarning?: (path: string, message: string) => void;
}

export interface RestoreResult {
  files: number;
  dirs: number;
  bytes: number;
  errors: number;
}

const execFileAsync = promisify(execFile);
const SLASH = Buffer.from('/');

export function newRestoreProgress(): RestoreProgress {
  return { files: 0, dirs: 0, bytes: 0, errors: 0 };
}

export async function restore(repo: Repository, snapshot: SnapshotInfo, opts: RestoreOptions): Promise<RestoreResult> {
  return new RestoreRun(repo, opts).run(snapshot);
}

/** Splits a snapshot path into safe components; USAGE error for "..". */
export function snapshotPathComponents(p: string): Buffer[] {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new ObnamError('USAGE', `path ${p} must not contain ".."`);
  return parts.map((c) => Buffer.from(c, 'utf8'));
}

class RestoreRun {
  private readonly progress: RestoreProgress;
  private readonly owners: boolean;
  /** Files restored so far that others may hard-link to: snapshot path -> restored path once written. */
  private readonly linkTargets = new Map<string, Promise<Buffer | null>>();
  private readonly loadTree = (id: string) => this.repo.getTree(id, { signal: this.opts.signal });

  constructor(
    private readonly repo: Repository,
    private readonly opts: RestoreOptions,
  ) {
    this.progress = opts.progress ?? newRestoreProgress();
    this.owners = opts.owners ?? process.getuid?.() === 0;
  }

  async run(snapshot: SnapshotInfo): Promise<RestoreResult> {
    const target = Buffer.from(path.resolve(this.opts.target), 'utf8');
    await this.ensureDir(target);
    const select = this.opts.subPath === undefined ? undefined : snapshotPathComponents(this.opts.subPath);
    if (select && select.length) {
      // Fail early, with a clear message, if the path is not in the snapshot.
      let tree = snapshot.tree;
      for (let i = 0; i < select.length; i++) {
        const e = await findEntry(this.loadTree, tree, select[i]!);
        if (!e) throw new ObnamError('NOT_FOUND', `${this.opts.subPath} is not in snapshot ${snapshot.id.slice(0, 8)}`);
        if (i < select.length - 1) {
          if (e.type !== 'dir') throw new ObnamError('NOT_FOUND', `${this.opts.subPath} is not in snapshot ${snapshot.id.slice(0, 8)}`);
          tree = e.subtree!;
        }
      }
    }
    const done = await this.restoreDir(snapshot.tree, target, Buffer.alloc(0), select ?? []);
    await done.result;
    return { ...this.progress };
  }

  private warn(p: Buffer | string, message: string): void {
    this.progress.errors++;
    this.opts.onWarning?.(p.toString(), message);
  }

  /** Makes `dir` a real directory (not a symlink), creating it if needed. */
  private async ensureDir(dir: Buffer): Promise<void> {
    try {
      await fs.mkdir(dir, { mode: 0o700 });
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw new ObnamError('IO', `cannot create directory ${dir}: ${describeError(e)}`);
    }
    const st = await fs.lstat(dir);
    if (!st.isDirectory()) {
      throw new ObnamError('HOSTILE_PATH', `${dir} exists and is not a directory; refusing to restore through it`);
    }
  }

  /**
   * Restores the entries of a directory tree into `dir` (which exists). With
   * `select`, only the entry named by its first component is restored, and
   * below it only the rest of the path. Resolves when the walk below is
   * submitted; the returned promise settles when everything is written.
   */
  private async restoreDir(treeId: string, dir: Buffer, rel: Buffer, select: Buffer[]): Promise<Pending<void>> {
    const work: Promise<void>[] = [];
    const wanted = select[0];
    for await (const entry of directoryEntries(this.loadTree, treeId)) {
      throwIfAborted(this.opts.signal);
      if (wanted && !entry.name.equals(wanted)) continue;
      const abs = Buffer.concat([dir, SLASH, entry.name]);
      const childRel = rel.length ? Buffer.concat([rel, SLASH, entry.name]) : entry.name;
      work.push((await this.restoreEntry(entry, abs, childRel, select.slice(1))).result);
    }
    return pending(Promise.all(work).then(() => undefined));
  }

  private async restoreEntry(entry: TreeEntry, abs: Buffer, rel: Buffer, select: Buffer[]): Promise<Pending<void>> {
    try {
      switch (entry.type) {
        case 'dir': {
          await this.ensureDir(abs);
          this.progress.dirs++;
          const below = await this.restoreDir(entry.subtree!, abs, rel, select);
          return pending(below.result.then(() => this.applyMetadata(abs, entry)).catch((e) => this.warn(abs, describeError(e))));
        }
        case 'file':
          return await this.restoreFile(entry, abs, rel);
        case 'hardlink':
          return this.restoreHardlink(entry, abs);
        case 'symlink':
          await this.replace(abs);
          await fs.symlink(entry.target!, abs);
          await this.applyMetadata(abs, entry);
          return ready(undefined);
        case 'fifo':
          await this.replace(abs);
          await execFileAsync('mkfifo', ['-m', (entry.mode & 0o777).toString(8), '--', abs.toString('utf8')]);
          await this.applyMetadata(abs, entry);
          return ready(undefined);
        case 'chardev':
        case 'blockdev': {
          if (!this.owners) {
            this.warn(abs, 'device files are restored only when running as root; skipped');
            return ready(undefined);
          }
          await this.replace(abs);
          const rdev = BigInt(entry.rdev ?? 0);
          const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
          const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
          await execFileAsync('mknod', ['--', abs.toString('utf8'), entry.type === 'chardev' ? 'c' : 'b', String(major), String(minor)]);
          await this.applyMetadata(abs, entry);
          return ready(undefined);
        }
        case 'socket':
          // A socket belongs to the process that created it; like tar, record but do not recreate.
          return ready(undefined);
      }
    } catch (e) {
      if (e instanceof ObnamError && (e.code === 'ABORTED' || e.code === 'HOSTILE_PATH')) throw e;
      this.warn(abs, describeError(e));
      return ready(undefined);
    }
  }

  /** Removes a non-directory in the way of a new entry (restore overwrites, as restic does). */
  private async replace(abs: Buffer): Promise<void> {
    try {
      const st = await fs.lstat(abs);
      if (st.isDirectory()) throw new ObnamError('IO', `${abs} exists and is a directory`);
      await fs.unlink(abs);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
  }

  private async restoreFile(entry: TreeEntry, abs: Buffer, rel: Buffer): Promise<Pending<void>> {
    await this.replace(abs);
    let written: Promise<void>;
    if (entry.data) {
      const data = entry.data;
      written = fs.writeFile(abs, data, { flag: 'wx', mode: 0o600 });
    } else {
      await this.opts.pool.ready();
      written = this.opts.pool
        .run<number>(
          { op: 'restoreFile', path: new Uint8Array(abs), chunks: entry.chunks!.map((c) => [c.id, c.length]) },
          [],
          (n) => {
            this.progress.bytes += n as number;
          },
        )
        .then(() => undefined);
    }
    const done = written.then(
      async () => {
        if (entry.data) this.progress.bytes += entry.data.length;
        this.progress.files++;
        await this.applyMetadata(abs, entry);
        return abs;
      },
      async (e) => {
        if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
        this.warn(abs, describeError(e));
        await fs.rm(abs, { force: true }).catch(() => undefined);
        return null;
      },
    );
    if ((entry.nlink ?? 1) > 1) this.linkTargets.set(rel.toString('latin1'), done);
    return pending(done.then(() => undefined));
  }

  private async restoreHardlink(entry: TreeEntry, abs: Buffer): Promise<Pending<void>> {
    const first = this.linkTargets.get(entry.link!.toString('latin1'));
    const existing = first ? await first : null;
    if (!existing) {
      this.warn(abs, `hardlink to ${entry.link!.toString()} not restored: its target is not part of this restore`);
      return ready(undefined);
    }
    await this.replace(abs);
    await fs.link(existing, abs);
    this.progress.files++;
    return ready(undefined);
  }

  private async applyMetadata(abs: Buffer, e: TreeEntry): Promise<void> {
    const isLink = e.type === 'symlink';
    if (this.owners) {
      try {
        await fs.lchown(abs, e.uid, e.gid);
      } catch (err) {
        this.warn(abs, `cannot set owner: ${describeError(err)}`);
      }
    }
    if (e.xattrs && !isLink) {
      for (const [name, value] of e.xattrs) {
        try {
          await setAttribute(abs.toString('utf8'), name.toString('utf8'), value);
        } catch (err) {
          this.warn(abs, `cannot set xattr ${name.toString()}: ${describeError(err)}`);
        }
      }
    }
    if (!isLink) await fs.chmod(abs, e.mode);
    const mtime = e.mtime.sec + e.mtime.nsec / 1e9;
    if (isLink) await fs.lutimes(abs, mtime, mtime);
    else await fs.utimes(abs, mtime, mtime);
  }
}
