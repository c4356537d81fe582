/**
 * File system metadata to tree entries: what a backup records about each
 * file, and the test that decides whether a file changed since the parent
 * snapshot.
 */
import type { BigIntStats } from 'node:fs';
import { listAttributes, getAttribute } from 'fs-xattr';
import type { EntryType, Timestamp, TreeEntry } from '../format/tree.js';
import type { IdNames } from '../util/ids-names.js';

export function entryType(st: BigIntStats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isSocket()) return 'socket';
  return undefined;
}

const NS = 1_000_000_000n;

export function nsToTimestamp(ns: bigint): Timestamp {
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    nsec += NS;
    sec -= 1n;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}

const safeNumber = (n: bigint): number => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : Number.MAX_SAFE_INTEGER);

/** The metadata part of an entry (no content fields). */
export function entryFromStats(name: Buffer, type: EntryType, st: BigIntStats, names: IdNames): TreeEntry {
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  return {
    name,
    type,
    mode: Number(st.mode) & 0o7777,
    uid,
    gid,
    user: names.user(uid),
    group: names.group(gid),
    mtime: nsToTimestamp(st.mtimeNs),
    ctime: nsToTimestamp(st.ctimeNs),
    size: type === 'file' ? safeNumber(st.size) : 0,
    inode: safeNumber(st.ino),
    nlink: Number(st.nlink),
    rdev: type === 'chardev' || type === 'blockdev' ? safeNumber(st.rdev) : undefined,
  };
}

const sameTime = (a: Timestamp, b: Timestamp) => a.sec === b.sec && a.nsec === b.nsec;

/** A file is unchanged (its content is reused unread) if size, mtime, ctime and inode match. */
export function unchangedFile(old: TreeEntry | undefined, cur: TreeEntry): boolean {
  return (
    old !== undefined &&
    old.type === 'file' &&
    cur.type === 'file' &&
    (old.chunks !== undefined || old.data !== undefined) &&
    old.size === cur.size &&
    old.inode === cur.inode &&
    sameTime(old.mtime, cur.mtime) &&
    sameTime(old.ctime, cur.ctime)
  );
}

/**
 * Extended attributes of a file or directory, sorted by name. Symlinks are
 * skipped (Linux allows no user xattrs on them, and the library follows links).
 * Unsupported file systems give none.
 */
export async function readXattrs(path: Buffer): Promise<[Buffer, Buffer][] | undefined> {
  let names: string[];
  // fs-xattr takes string paths: a path that is not valid UTF-8 cannot be
  // named to it, so such files are recorded without xattrs (format-spec notes this).
  const str = path.toString('utf8');
  if (!Buffer.from(str, 'utf8').equals(path)) return undefined;
  try {
    names = await listAttributes(str);
  } catch {
    return undefined;
  }
  if (names.length === 0) return undefined;
  names.sort();
  const out: [Buffer, Buffer][] = [];
  for (const n of names) {
    try {
      out.push([Buffer.from(n, 'utf8'), await getAttribute(str, n)]);
    } catch {
      // removed meanwhile, or not readable: leave it out
    }
  }
  out.sort((a, b) => Buffer.compare(a[0], b[0]));
  return out.length ? out : undefined;
}
