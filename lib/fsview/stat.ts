/**
 * File attributes as the view reports them (a stat without the kernel's
 * details), and how a tree entry's recorded metadata maps onto them.
 */
import type { EntryType, Timestamp, TreeEntry } from '../format/tree.js';

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

const TYPE_BITS: Record<Exclude<EntryType, 'hardlink'>, number> = {
  file: S_IFREG,
  dir: S_IFDIR,
  symlink: S_IFLNK,
  fifo: 0o010000,
  chardev: 0o020000,
  blockdev: 0o060000,
  socket: 0o140000,
};

export interface FsStat {
  ino: number;
  /** Type and permission bits, as in st_mode. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte blocks. */
  blocks: number;
  rdev: number;
  atime: Timestamp;
  mtime: Timestamp;
  ctime: Timestamp;
}

/** The st_mode type bits for an entry type (0 for a hardlink, whose type is its target's). */
export function typeBits(type: EntryType): number {
  return type === 'hardlink' ? 0 : TYPE_BITS[type];
}

/** The attributes of a (resolved, non-hardlink) entry as recorded in the snapshot. */
export function entryStat(e: TreeEntry, ino: number): FsStat {
  const size = e.type === 'symlink' ? (e.target?.length ?? 0) : e.type === 'file' ? e.size : 0;
  return {
    ino,
    mode: typeBits(e.type) | (e.mode & 0o7777),
    nlink: e.nlink ?? (e.type === 'dir' ? 2 : 1),
    uid: e.uid,
    gid: e.gid,
    size,
    blocks: Math.ceil(size / 512),
    rdev: e.rdev ?? 0,
    atime: e.mtime,
    mtime: e.mtime,
    ctime: e.ctime,
  };
}

/** Attributes of a directory or symlink the view makes up (the mount's own structure). */
export function syntheticStat(
  ino: number,
  mode: number,
  owner: { uid: number; gid: number },
  time: Timestamp,
  extra: { nlink?: number; size?: number } = {},
): FsStat {
  return {
    ino,
    mode,
    nlink: extra.nlink ?? 1,
    uid: owner.uid,
    gid: owner.gid,
    size: extra.size ?? 0,
    blocks: 0,
    rdev: 0,
    atime: time,
    mtime: time,
    ctime: time,
  };
}
