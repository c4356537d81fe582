/**
 * Creating restored entries and applying their metadata, in a worker thread,
 * with blocking calls: they cost less than Node's async hand-off (see
 * lib/backup/inspect.ts), and the pool's workers run side by side.
 *
 * Every call goes through the native helper (lib/util/fsops.ts) with the
 * entry's name as bytes, relative to a directory fd: each task opens the
 * restore target again (O_NOFOLLOW, and checks it is the same directory the
 * main thread created), then the entry's parent one component at a time with
 * O_NOFOLLOW|O_DIRECTORY (TargetDirs). Nothing is ever reached through a
 * symlink, so no entry of a snapshot can make the restore touch anything
 * outside the target. Entries are created with O_EXCL (or mknodat, symlinkat,
 * linkat, which fail likewise) and only if something is in the way is it
 * removed (never a directory). Order per entry: content, owner (which clears
 * set-id bits and file capabilities), xattrs, mode, then times.
 */
import * as fs from 'node:fs';
import { describeError, errnoCode, ObnamError } from '../errors.js';
import { fsops } from '../util/fsops.js';

export interface RestoreMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: { sec: number; nsec: number };
  xattrs?: [Uint8Array, Uint8Array][];
}

/**
 * The restore target as the main thread made it: its absolute path, and the
 * device and inode numbers each task checks when it opens it again.
 */
export interface RestoreRoot {
  path: Uint8Array;
  dev: bigint;
  ino: bigint;
}

/** An entry to create; `path` (and a hardlink's `target`) are relative to the restore root, "/"-separated. */
export type RestoreItem =
  | { type: 'file'; path: Uint8Array; data: Uint8Array; meta: RestoreMeta }
  | { type: 'symlink'; path: Uint8Array; target: Uint8Array; meta: RestoreMeta }
  | { type: 'fifo' | 'socket'; path: Uint8Array; meta: RestoreMeta }
  | { type: 'chardev' | 'blockdev'; path: Uint8Array; rdev: number; meta: RestoreMeta }
  | { type: 'hardlink'; path: Uint8Array; target: Uint8Array }
  | { type: 'dirmeta'; path: Uint8Array; meta: RestoreMeta };

/** Per item: undefined when all went well, else the messages of what failed. */
export type RestoreItemResult = string[] | undefined;

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const SLASH = 0x2f;

/** Directory fds a worker keeps open per restore target (least recently used closed first). */
const MAX_OPEN_DIRS = 128;

/**
 * Directory fds below one restore target, shared by the tasks of a worker
 * that restore into it (acquireDirs / releaseDirs): the root opened again
 * (O_NOFOLLOW, the same device and inode the main thread saw), and each
 * parent directory opened from the nearest one already open, one component
 * at a time, never through a symlink. An fd from dir() or parent() may be
 * used only until the next await (a later call may close it).
 */
export class TargetDirs {
  private readonly root: number;
  private readonly dirs = new Map<string, number>();
  refs = 0;

  constructor(
    root: RestoreRoot,
    readonly key: string,
  ) {
    const where = Buffer.from(root.path);
    try {
      this.root = fs.openSync(where, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    } catch (e) {
      throw new ObnamError('HOSTILE_PATH', `cannot open the restore target ${where}: ${describeError(e)}`);
    }
    const st = fs.fstatSync(this.root, { bigint: true });
    if (st.dev !== root.dev || st.ino !== root.ino) {
      fs.closeSync(this.root);
      throw new ObnamError('HOSTILE_PATH', `the restore target ${where} was replaced during the restore; refusing to write to it`);
    }
  }

  /** The fd of directory `rel` below the root ("" for the root). */
  dir(rel: Buffer): number {
    if (rel.length === 0) return this.root;
    const key = rel.toString('latin1');
    let fd = this.dirs.get(key);
    if (fd !== undefined) {
      this.dirs.delete(key); // most recently used last
      this.dirs.set(key, fd);
      return fd;
    }
    let from = this.root;
    let rest = rel;
    for (let cut = rel.lastIndexOf(SLASH); cut > 0; cut = rel.lastIndexOf(SLASH, cut - 1)) {
      const near = this.dirs.get(rel.subarray(0, cut).toString('latin1'));
      if (near !== undefined) {
        from = near;
        rest = rel.subarray(cut + 1);
        break;
      }
    }
    try {
      fd = fsops().openDir(from, rest);
    } catch (e) {
      if (errnoCode(e) === 'ENOTDIR') {
        throw new ObnamError('HOSTILE_PATH', `${rel} is not a directory below the target (a symlink?); refusing to restore through it`);
      }
      throw e;
    }
    if (this.dirs.size >= MAX_OPEN_DIRS) {
      const [oldest, old] = this.dirs.entries().next().value as [string, number];
      this.dirs.delete(oldest);
      fsops().close(old);
    }
    this.dirs.set(key, fd);
    return fd;
  }

  /** The verified parent directory of `rel` and the entry's name in it. */
  parent(rel: Uint8Array): { dir: number; name: Buffer } {
    const b = Buffer.from(rel.buffer, rel.byteOffset, rel.length);
    const cut = b.lastIndexOf(SLASH);
    return { dir: this.dir(cut < 0 ? Buffer.alloc(0) : b.subarray(0, cut)), name: b.subarray(cut + 1) };
  }

  close(): void {
    for (const fd of this.dirs.values()) fsops().close(fd);
    this.dirs.clear();
    fs.closeSync(this.root);
  }
}

/** This worker's open targets: kept while any task restoring into one runs, closed after the last. */
const openTargets = new Map<string, TargetDirs>();

export function acquireDirs(root: RestoreRoot): TargetDirs {
  const key = `${root.dev}:${root.ino}:${Buffer.from(root.path).toString('latin1')}`;
  let dirs = openTargets.get(key);
  if (!dirs) {
    dirs = new TargetDirs(root, key);
    openTargets.set(key, dirs);
  }
  dirs.refs++;
  return dirs;
}

export function releaseDirs(dirs: TargetDirs): void {
  if (--dirs.refs > 0) return;
  openTargets.delete(dirs.key);
  dirs.close();
}

/** Removes a non-directory in the way of a new entry (restore overwrites, as restic does). */
function removeInTheWay(dir: number, name: Buffer): void {
  try {
    fsops().unlinkAt(dir, name);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EISDIR') throw new ObnamError('IO', 'a directory is in the way');
    if (code !== 'ENOENT') throw e;
  }
}

/**
 * Runs `create` (which fails with EEXIST if something is at dir/name); if it
 * does, removes what is in the way (never a directory) and tries once more.
 * A fresh target costs no extra call per entry.
 */
export function createReplacing<T>(dir: number, name: Buffer, create: () => T): T {
  try {
    return create();
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
    removeInTheWay(dir, name);
    return create();
  }
}

const xattrName = (n: Uint8Array) => Buffer.from(n).toString('utf8');

/** Applies owner, xattrs, mode and times to an open file or directory; returns what could not be applied. */
export function applyFdMetadata(fd: number, meta: RestoreMeta, owners: boolean): string[] {
  const ops = fsops();
  const problems: string[] = [];
  if (owners) {
    try {
      fs.fchownSync(fd, meta.uid, meta.gid);
    } catch (e) {
      problems.push(`cannot set owner: ${describeError(e)}`);
    }
  }
  for (const [name, value] of meta.xattrs ?? []) {
    try {
      ops.fsetxattr(fd, name, value);
    } catch (e) {
      problems.push(`cannot set xattr ${xattrName(name)}: ${describeError(e)}`);
    }
  }
  try {
    fs.fchmodSync(fd, meta.mode & 0o7777);
  } catch (e) {
    problems.push(`cannot set mode: ${describeError(e)}`);
  }
  try {
    ops.futimens(fd, meta.mtime.sec, meta.mtime.nsec);
  } catch (e) {
    problems.push(`cannot set time: ${describeError(e)}`);
  }
  return problems;
}

/** The same for an entry that is not opened (symlink, fifo, device, socket): by its name in its verified directory. */
function applyMetadataAt(dir: number, name: Buffer, meta: RestoreMeta, isLink: boolean, owners: boolean): string[] {
  const ops = fsops();
  const problems: string[] = [];
  if (owners) {
    try {
      ops.fchownAt(dir, name, meta.uid, meta.gid);
    } catch (e) {
      problems.push(`cannot set owner: ${describeError(e)}`);
    }
  }
  if (!isLink) {
    for (const [xname, value] of meta.xattrs ?? []) {
      try {
        ops.lsetxattrAt(dir, name, xname, value);
      } catch (e) {
        problems.push(`cannot set xattr ${xattrName(xname)}: ${describeError(e)}`);
      }
    }
    try {
      ops.fchmodAt(dir, name, meta.mode & 0o7777);
    } catch (e) {
      problems.push(`cannot set mode: ${describeError(e)}`);
    }
  }
  try {
    ops.utimensAt(dir, name, meta.mtime.sec, meta.mtime.nsec);
  } catch (e) {
    problems.push(`cannot set time: ${describeError(e)}`);
  }
  return problems;
}

/** Writes all of `data` at the file's current offset. */
export function writeAllSync(fd: number, data: Uint8Array, position: number | null = null): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, position === null ? null : position + off);
}

function restoreFile(dir: number, name: Buffer, data: Uint8Array, meta: RestoreMeta, owners: boolean): string[] {
  const fd = createReplacing(dir, name, () => fsops().createFile(dir, name, 0o600));
  try {
    writeAllSync(fd, data);
  } catch (e) {
    fsops().close(fd);
    removeQuietly(dir, name);
    throw e;
  }
  try {
    return applyFdMetadata(fd, meta, owners);
  } finally {
    fsops().close(fd);
  }
}

/** Removes a file this restore created and could not complete. */
export function removeQuietly(dir: number, name: Buffer): void {
  try {
    fsops().unlinkAt(dir, name);
  } catch {
    // already gone, or it cannot be removed either: the failure is reported already
  }
}

function restoreOne(item: RestoreItem, dirs: TargetDirs, owners: boolean): string[] {
  const ops = fsops();
  const { dir, name } = dirs.parent(item.path);
  switch (item.type) {
    case 'dirmeta': {
      const fd = ops.openDirRead(dir, name);
      try {
        return applyFdMetadata(fd, item.meta, owners);
      } finally {
        ops.close(fd);
      }
    }
    case 'hardlink': {
      const from = dirs.parent(item.target);
      createReplacing(dir, name, () => ops.linkAt(from.dir, from.name, dir, name));
      return [];
    }
    case 'file':
      return restoreFile(dir, name, item.data, item.meta, owners);
    case 'symlink':
      createReplacing(dir, name, () => ops.symlinkAt(item.target, dir, name));
      return applyMetadataAt(dir, name, item.meta, true, owners);
    case 'fifo':
      createReplacing(dir, name, () => ops.mknodAt(dir, name, S_IFIFO | 0o600, 0));
      return applyMetadataAt(dir, name, item.meta, false, owners);
    case 'socket':
      ops.bindSocketAt(dir, name);
      return applyMetadataAt(dir, name, item.meta, false, owners);
    case 'chardev':
    case 'blockdev':
      createReplacing(dir, name, () => ops.mknodAt(dir, name, (item.type === 'chardev' ? S_IFCHR : S_IFBLK) | 0o600, item.rdev));
      return applyMetadataAt(dir, name, item.meta, false, owners);
  }
}

/** Restores a batch of small entries below `root`; never throws for one entry's failure. */
export function restoreItems(root: RestoreRoot, items: RestoreItem[], owners: boolean): RestoreItemResult[] {
  let dirs: TargetDirs;
  try {
    dirs = acquireDirs(root);
  } catch (e) {
    return items.map(() => [describeError(e)]);
  }
  try {
    return items.map((item) => {
      try {
        const problems = restoreOne(item, dirs, owners);
        return problems.length ? problems : undefined;
      } catch (e) {
        return [describeError(e)];
      }
    });
  } finally {
    releaseDirs(dirs);
  }
}
