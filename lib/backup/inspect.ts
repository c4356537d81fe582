/**
 * Inspecting directory entries and reading small files, in a worker thread:
 * the per-file system calls of a backup (lstat, xattrs, readlink, reading
 * files small enough to be stored inline) happen here in batches, so the main
 * thread only compares, decides and builds trees. The calls are blocking on
 * purpose: in a worker that is harmless, and Node's async hand-off to its
 * thread pool costs several times the system call itself.
 */
import type { BigIntStats } from 'node:fs';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { describeError, errnoCode } from '../errors.js';
import { own } from '../util/own.js';
import { readXattrsSync } from './metadata.js';
import type { StatFields } from './stat-fields.js';

/** The parts of lstat a backup records. Numbers above 2^53 (rare inode numbers) are clamped. */
export type { StatFields } from './stat-fields.js';

/**
 * A directory's inspection, packed for the trip between threads: one
 * Float64Array of STAT_FIELDS numbers per name, and side lists for what only
 * some names have. (Hundreds of small objects with bigints cost far more to
 * clone than one typed array.)
 */
export interface InspectBatch {
  stats: Float64Array;
  errors: [index: number, code: string, message: string][];
  xattrs: [index: number, pairs: [Uint8Array, Uint8Array][]][];
  targets: [index: number, target: Uint8Array][];
  /** Recorded, but not completely (xattrs that could not be read): a warning. */
  warnings: [index: number, message: string][];
}

export type Inspected =
  | { ok: true; st: StatFields; xattrs?: [Uint8Array, Uint8Array][]; target?: Uint8Array; warning?: string }
  | { ok: false; code: string; message: string };

const STAT_FIELDS = 12;

/** A small file's bytes; `digest` (SHA-256 of them) when the read asked for one at its size. */
export type SmallRead = { ok: true; data: Uint8Array; digest?: Uint8Array } | { ok: false; code: string; message: string };

const SLASH = Buffer.from('/');

export function childPath(dir: Uint8Array, name: Uint8Array): Buffer {
  return dir.length === 1 && dir[0] === 0x2f ? Buffer.concat([SLASH, name]) : Buffer.concat([dir, SLASH, name]);
}

const NS = 1_000_000_000n;
const clamp = (n: bigint): number => (n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : Number.MAX_SAFE_INTEGER);

function splitNs(ns: bigint): { sec: number; nsec: number } {
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    nsec += NS;
    sec -= 1n;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}

export function statFields(st: BigIntStats): StatFields {
  return {
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: clamp(st.size),
    ino: clamp(st.ino),
    dev: clamp(st.dev),
    rdev: clamp(st.rdev),
    nlink: Number(st.nlink),
    mtime: splitNs(st.mtimeNs),
    ctime: splitNs(st.ctimeNs),
  };
}

function packStat(out: Float64Array, i: number, f: StatFields): void {
  const o = i * STAT_FIELDS;
  out[o] = f.mode;
  out[o + 1] = f.uid;
  out[o + 2] = f.gid;
  out[o + 3] = f.size;
  out[o + 4] = f.ino;
  out[o + 5] = f.dev;
  out[o + 6] = f.rdev;
  out[o + 7] = f.nlink;
  out[o + 8] = f.mtime.sec;
  out[o + 9] = f.mtime.nsec;
  out[o + 10] = f.ctime.sec;
  out[o + 11] = f.ctime.nsec;
}

function unpackStat(s: Float64Array, i: number): StatFields {
  const o = i * STAT_FIELDS;
  return {
    mode: s[o]!,
    uid: s[o + 1]!,
    gid: s[o + 2]!,
    size: s[o + 3]!,
    ino: s[o + 4]!,
    dev: s[o + 5]!,
    rdev: s[o + 6]!,
    nlink: s[o + 7]!,
    mtime: { sec: s[o + 8]!, nsec: s[o + 9]! },
    ctime: { sec: s[o + 10]!, nsec: s[o + 11]! },
  };
}

/** Many names in one buffer: their bytes end to end, and where each ends. */
export interface PackedNames {
  bytes: Uint8Array;
  ends: Uint32Array;
}

export function packNames(names: readonly Uint8Array[]): PackedNames {
  const ends = new Uint32Array(names.length);
  let total = 0;
  names.forEach((n, i) => (ends[i] = total += n.length));
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const n of names) {
    bytes.set(n, at);
    at += n.length;
  }
  return { bytes, ends };
}

export function unpackNames(p: PackedNames): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (const end of p.ends) {
    out.push(Buffer.from(p.bytes.buffer, p.bytes.byteOffset + start, end - start));
    start = end;
  }
  return out;
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
  // (kept as a per-name function; inspectEntries packs the results)
  let st: BigIntStats;
  try {
    st = fs.lstatSync(path, { bigint: true });
  } catch (e) {
    return failure(e);
  }
  const fields = statFields(st);
  if (isFileMode(fields.mode) || isDirMode(fields.mode)) {
    const { xattrs, problem } = readXattrsSync(path);
    const r: Inspected = { ok: true, st: fields };
    if (xattrs) r.xattrs = xattrs.map(([n, v]) => [own(n), own(v)]);
    if (problem) r.warning = problem;
    return r;
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

/** lstat (and xattrs or symlink target) for each name in a directory, packed. */
export function inspectEntries(dir: Uint8Array, names: PackedNames): InspectBatch {
  const list = unpackNames(names);
  const batch: InspectBatch = { stats: new Float64Array(list.length * STAT_FIELDS), errors: [], xattrs: [], targets: [], warnings: [] };
  list.forEach((n, i) => {
    const r = inspectOne(childPath(dir, n));
    if (!r.ok) batch.errors.push([i, r.code, r.message]);
    else {
      packStat(batch.stats, i, r.st);
      if (r.xattrs) batch.xattrs.push([i, r.xattrs]);
      if (r.target) batch.targets.push([i, r.target]);
      if (r.warning) batch.warnings.push([i, r.warning]);
    }
  });
  return batch;
}

/** The inverse of inspectEntries' packing, on the receiving side. */
export function unpackInspection(b: InspectBatch, count: number): Inspected[] {
  const out: Inspected[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = { ok: true, st: unpackStat(b.stats, i) };
  for (const [i, code, message] of b.errors) out[i] = { ok: false, code, message };
  for (const [i, pairs] of b.xattrs) (out[i] as { xattrs?: [Uint8Array, Uint8Array][] }).xattrs = pairs;
  for (const [i, t] of b.targets) (out[i] as { target?: Uint8Array }).target = t;
  for (const [i, w] of b.warnings) (out[i] as { warning?: string }).warning = w;
  return out;
}

/** Reused read buffer for small files; each result is an exact-size copy. */
let smallScratch = new Uint8Array(0);

function readSmall(path: Uint8Array, limit: number, digestAbove: number | undefined): SmallRead {
  let fd: number | undefined;
  try {
    fd = fs.openSync(Buffer.from(path), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    if (smallScratch.length < limit + 1) smallScratch = new Uint8Array(limit + 1);
    const buf = smallScratch;
    let len = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, len, limit + 1 - len, null);
      if (n === 0 || (len += n) > limit) break;
    }
    const data = buf.slice(0, len);
    if (digestAbove === undefined || len <= digestAbove || len > limit) return { ok: true, data };
    // A copy of its own: a digest Buffer may be a view of Node's shared pool, which a message would clone whole.
    return { ok: true, data, digest: new Uint8Array(createHash('sha256').update(data).digest()) };
  } catch (e) {
    return failure(e, `cannot read ${Buffer.from(path)}: `);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Reads whole files of at most `limit` bytes (a longer file comes back with
 * limit + 1 bytes); with `digestAbove`, each file of more than that many
 * bytes (and at most `limit`) comes with its SHA-256, computed here in the
 * worker rather than on the walk's thread.
 */
export function readSmallFiles(paths: PackedNames, limit: number, digestAbove?: number): SmallRead[] {
  return unpackNames(paths).map((p) => readSmall(p, limit, digestAbove));
}
