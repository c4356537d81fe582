/**
 * Inspecting directory entries and reading small files, in a worker thread:
 * the per-file system calls of a backup (lstat, xattrs, readlink, reading
 * files small enough to be stored inline) happen here in batches, so the main
 * thread only compares, decides and builds trees. The calls are blocking on
 * purpose: in a worker that is harmless, and Node's async hand-off to its
 * thread pool costs several times the system call itself.
 */
import type { BigIntStats } from 'node:fs';
import * as fs from 'node:fs';
import { describeError, errnoCode } from '../errors.js';
import { readXattrsSync } from './metadata.js';

/** The parts of lstat a backup records, as structured-clone-friendly values. */
export interface StatFields {
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  ino: bigint;
  dev: bigint;
  rdev: bigint;
  nlink: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export type Inspected =
  | { ok: true; st: StatFields; xattrs?: [Uint8Array, Uint8Array][]; target?: Uint8Array }
  | { ok: false; code: string; message: string };

export type SmallRead = { ok: true; data: Uint8Array } | { ok: false; code: string; message: string };

const SLASH = Buffer.from('/');

export function childPath(dir: Uint8Array, name: Uint8Array): Buffer {
  return dir.length === 1 && dir[0] === 0x2f ? Buffer.concat([SLASH, name]) : Buffer.concat([dir, SLASH, name]);
}

/**
 * A copy of `b` with its own exactly-sized buffer: structured clone copies a
 * view's whole underlying ArrayBuffer, and Node's Buffers often share one.
 */
export function own(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

export function statFields(st: BigIntStats): StatFields {
  return {
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: st.size,
    ino: st.ino,
    dev: st.dev,
    rdev: st.rdev,
    nlink: Number(st.nlink),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

const S_IFMT = 0o170000;
const isDirMode = (mode: number) => (mode & S_IFMT) === 0o040000;
const isFileMode = (mode: number) => (mode & S_IFMT) === 0o100000;
const isLinkMode = (mode: number) => (mode & S_IFMT) === 0o120000;

const failure = (e: unknown, prefix = ''): { ok: false; code: string; message: string } => ({
  ok: false,
  code: errnoCode(e) ?? 'IO',
  message: prefix + describeError(e),
});

function inspectOne(path: Buffer): Inspected {
  let st: BigIntStats;
  try {
    st = fs.lstatSync(path, { bigint: true });
  } catch (e) {
    return failure(e);
  }
  const fields = statFields(st);
  if (isFileMode(fields.mode) || isDirMode(fields.mode)) {
    const xattrs = readXattrsSync(path);
    return xattrs ? { ok: true, st: fields, xattrs: xattrs.map(([n, v]) => [own(n), own(v)]) } : { ok: true, st: fields };
  }
  if (isLinkMode(fields.mode)) {
    try {
      return { ok: true, st: fields, target: own(fs.readlinkSync(path, { encoding: 'buffer' })) };
    } catch (e) {
      return failure(e, 'cannot read symlink: ');
    }
  }
  return { ok: true, st: fields };
}

/** lstat (and xattrs or symlink target) for each name in a directory. */
export function inspectEntries(dir: Uint8Array, names: Uint8Array[]): Inspected[] {
  return names.map((n) => inspectOne(childPath(dir, n)));
}

function readSmall(path: Uint8Array, limit: number): SmallRead {
  let fd: number | undefined;
  try {
    fd = fs.openSync(Buffer.from(path), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const buf = new Uint8Array(limit + 1);
    let len = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, len, limit + 1 - len, null);
      if (n === 0 || (len += n) > limit) break;
    }
    return { ok: true, data: buf.slice(0, len) };
  } catch (e) {
    return failure(e, `cannot read ${Buffer.from(path)}: `);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Reads whole files of at most `limit` bytes (a longer file comes back with limit + 1 bytes). */
export function readSmallFiles(paths: Uint8Array[], limit: number): SmallRead[] {
  return paths.map((p) => readSmall(p, limit));
}
