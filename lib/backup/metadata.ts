/**
 * File system metadata to tree entries: what a backup records about each
 * file, and the test that decides whether a file changed since the parent
 * snapshot.
 */
import { describeError, ObnamError } from '../errors.js';
import { fsops } from '../util/fsops.js';
import type { StatFields } from './stat-fields.js';
import type { EntryType, Timestamp, TreeEntry } from '../format/tree.js';
import { sameChunkRefs } from '../format/tree.js';
import type { IdNames } from '../util/ids-names.js';

const TYPES: Record<number, EntryType> = {
  0o100000: 'file',
  0o040000: 'dir',
  0o120000: 'symlink',
  0o010000: 'fifo',
  0o020000: 'chardev',
  0o060000: 'blockdev',
  0o140000: 'socket',
};

export function entryType(mode: number): EntryType | undefined {
  return TYPES[mode & 0o170000];
}

/** The metadata part of an entry (no content fields). */
export function entryFromStats(name: Buffer, type: EntryType, st: StatFields, names: IdNames): TreeEntry {
  const uid = st.uid;
  const gid = st.gid;
  return {
    name,
    type,
    mode: st.mode & 0o7777,
    uid,
    gid,
    user: names.user(uid),
    group: names.group(gid),
    mtime: st.mtime,
    ctime: st.ctime,
    size: type === 'file' ? st.size : 0,
    inode: st.ino,
    nlink: st.nlink,
    rdev: type === 'chardev' || type === 'blockdev' ? st.rdev : undefined,
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

/** A file's extended attributes as read, and what could not be read (for a warning). */
export interface XattrsRead {
  xattrs?: [Buffer, Buffer][];
  problem?: string;
}

/**
 * Extended attributes of a file or directory, sorted by name (blocking: for
 * worker threads), read with the native helper by the path's bytes (any
 * encoding) without following a symlink. File systems without xattrs give
 * none; an attribute that cannot be read is left out and named in `problem`.
 */
export function readXattrsSync(path: Buffer): XattrsRead {
  let listed: [Buffer, Buffer | string][] | null;
  try {
    listed = fsops().readXattrs(path);
  } catch (e) {
    if (e instanceof ObnamError) throw e; // the helper is missing: not one file's problem
    return { problem: `cannot list xattrs: ${describeError(e)}` };
  }
  if (!listed || listed.length === 0) return {};
  const xattrs: [Buffer, Buffer][] = [];
  const failed: string[] = [];
  for (const [name, value] of listed) {
    if (typeof value === 'string') failed.push(`${name.toString('utf8')} (${value})`);
    else xattrs.push([name, value]);
  }
  xattrs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const out: XattrsRead = xattrs.length ? { xattrs } : {};
  if (failed.length) out.problem = `cannot read xattrs ${failed.join(', ')}; recorded without them`;
  return out;
}

const sameBytes = (a: Buffer | undefined, b: Buffer | undefined) => (a === undefined ? b === undefined : b !== undefined && a.equals(b));

function sameXattrs(a: TreeEntry['xattrs'], b: TreeEntry['xattrs']): boolean {
  if (!a || !b) return a === b;
  return a.length === b.length && a.every(([n, v], i) => n.equals(b[i]![0]) && v.equals(b[i]![1]));
}

/**
 * True if two entries would encode to the same bytes. When every entry of a
 * directory is the same as in the parent snapshot, the directory's tree is
 * the parent's tree, and the backup need not encode or store it again.
 */
export function sameEntry(a: TreeEntry | undefined, b: TreeEntry): boolean {
  return (
    a !== undefined &&
    a.type === b.type &&
    a.name.equals(b.name) &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.user === b.user &&
    a.group === b.group &&
    sameTime(a.mtime, b.mtime) &&
    sameTime(a.ctime, b.ctime) &&
    a.size === b.size &&
    a.inode === b.inode &&
    a.nlink === b.nlink &&
    a.rdev === b.rdev &&
    a.subtree === b.subtree &&
    sameBytes(a.target, b.target) &&
    sameBytes(a.link, b.link) &&
    sameBytes(a.data, b.data) &&
    sameChunkRefs(a.chunks, b.chunks) &&
    sameXattrs(a.xattrs, b.xattrs)
  );
}
