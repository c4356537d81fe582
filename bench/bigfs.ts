/**
 * A synthetic read-only FUSE file system of a few very large files, the
 * source of the terabyte benchmark (bench/terabyte.ts): none of the bytes
 * exist on disk; file i's content is the AES-128-CTR keystream of a key
 * derived from (i mod UNIQUE), so the set holds FILES x GIB GiB of
 * incompressible bytes of which only UNIQUE files' worth are distinct (the
 * rest deduplicate against them, exactly as identical large files on a disk
 * would).
 *
 *   node dist/bench/bigfs.js MOUNTPOINT FILES GIB UNIQUE
 *
 * Prints "mounted" once the file system is there; unmounts on SIGINT,
 * SIGTERM or when stdin closes (the benchmark went away); libfuse's
 * auto_unmount takes it down if this process is killed.
 */
import { createCipheriv, createHash } from 'node:crypto';
import type Fuse from 'fuse-native';
import { serveReadOnly } from './serve-fuse.js';

const ENOENT = -2;
const EISDIR = -21;
const EROFS = -30;
const EBADF = -9;
const O_ACCMODE = 3;
const MTIME_MS = 1_700_000_000_000;

export interface BigSet {
  files: number;
  bytesPerFile: number;
  unique: number;
}

export const bigName = (i: number) => `big-${String(i).padStart(3, '0')}.bin`;

/** The AES key of file i: files i and i + unique have the same content. */
function keyOf(set: BigSet, i: number): Buffer {
  return createHash('sha256').update(`obnam-bench-bigfs ${i % set.unique}`).digest().subarray(0, 16);
}

const ZEROS = Buffer.alloc(1 << 20);

/** Writes bytes [pos, pos + len) of file i into buf; returns how many (clipped to the file's size). */
export function fillAt(set: BigSet, i: number, buf: Buffer, pos: number, len: number): number {
  const end = Math.min(set.bytesPerFile, pos + len);
  if (end <= pos) return 0;
  const block = Math.floor(pos / 16);
  const skip = pos - block * 16;
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(Math.floor(block / 2 ** 32), 8);
  iv.writeUInt32BE(block >>> 0, 12);
  const c = createCipheriv('aes-128-ctr', keyOf(set, i), iv);
  let want = skip + end - pos;
  let out = 0;
  let first = true;
  while (want > 0) {
    const n = Math.min(want, ZEROS.length);
    let ks = c.update(ZEROS.subarray(0, n));
    if (first) {
      ks = ks.subarray(skip);
      first = false;
    }
    out += ks.copy(buf, out);
    want -= n;
  }
  return end - pos;
}

function operations(set: BigSet): Fuse.Operations {
  const open = new Map<number, number>();
  let nextFd = 1;
  const fileIndex = (p: string): number | undefined => {
    const m = /^\/big-(\d{3})\.bin$/.exec(p);
    if (!m) return undefined;
    const i = Number(m[1]);
    return i < set.files && bigName(i) === p.slice(1) ? i : undefined;
  };
  const dirStat: Fuse.Stat = { mode: 0o40755, uid: 0, gid: 0, size: 4096, nlink: 2, ino: 1, atime: MTIME_MS, mtime: MTIME_MS, ctime: MTIME_MS, blksize: 4096, blocks: 8 };
  return {
    getattr(p, cb) {
      if (p === '/') return cb(0, dirStat);
      const i = fileIndex(p);
      if (i === undefined) return cb(ENOENT);
      const size = set.bytesPerFile;
      cb(0, { mode: 0o100644, uid: 0, gid: 0, size, nlink: 1, ino: 2 + i, atime: MTIME_MS, mtime: MTIME_MS, ctime: MTIME_MS, blksize: 4096, blocks: Math.ceil(size / 512) });
    },
    readdir(p, cb) {
      if (p !== '/') return cb(fileIndex(p) === undefined ? ENOENT : -20);
      cb(0, Array.from({ length: set.files }, (_, i) => bigName(i)));
    },
    open(p, flags, cb) {
      if (p === '/') return cb(EISDIR);
      const i = fileIndex(p);
      if (i === undefined) return cb(ENOENT);
      if ((flags & O_ACCMODE) !== 0) return cb(EROFS);
      const fd = nextFd++;
      open.set(fd, i);
      cb(0, fd);
    },
    read(_p, fd, buf, len, pos, cb) {
      const i = open.get(fd);
      if (i === undefined) return cb(EBADF);
      cb(fillAt(set, i, buf, pos, len));
    },
    release(_p, fd, cb) {
      open.delete(fd);
      cb(0);
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const [mountpoint, filesArg, gibArg, uniqueArg] = argv;
  const set: BigSet = { files: Number(filesArg), bytesPerFile: Math.round(Number(gibArg) * 2 ** 30), unique: Number(uniqueArg) };
  if (!mountpoint || !(set.files >= 1 && set.files <= 999) || !(set.bytesPerFile > 0) || !(set.unique >= 1)) {
    process.stderr.write('usage: bigfs.js MOUNTPOINT FILES(1-999) GIB UNIQUE\n');
    process.exit(2);
  }
  await serveReadOnly(mountpoint, operations(set), { fsname: 'obnam-bench-bigfs', maxRead: 1 << 20 });
}

if (process.argv[1]?.endsWith('bigfs.js')) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`bigfs: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
