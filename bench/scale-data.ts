/**
 * The scale benchmark's data set: N files of a realistic size mix, every
 * name, size, time, mode and byte derived from the file's index alone (no
 * per-file state anywhere: memory is O(1) in N), so the same set can be
 * written to disk (small N) or served by a synthetic FUSE file system
 * (bench/synthfs.ts, 10 million files) and is byte-identical both ways.
 *
 * Layout: /tNN/sNNNN/fNNNNNNNN.{txt,bin}, at most 100 top directories,
 * subdirectories of at most 100 files.
 * Size mix: 2% empty, 78% 1 B-4 KiB, 18% 4-64 KiB, 1.9% 64-512 KiB and
 * 0.1% 512 KiB-8 MiB (log-uniform within each class; about 11 KB a file on
 * average). The "small" mix folds the two largest classes into 4-64 KiB
 * (20% there; about 4.8 KB a file), for file counts whose realistic bytes
 * would not fit the disk: the same names, tree and count, less content.
 * 10% of the non-empty files share their content with others (one
 * of 1,000 templates). Half the contents are text-like (compressible to
 * about half), half random.
 * Epochs: 0 is the original set; 1 is the "1% mutation": 1% of the files get
 * a new content seed and a newer mtime, 0.1% are deleted, 0.2% added (a
 * gNNNNNNNN.txt beside the file of the same index).
 */
import { createCipheriv } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export type Epoch = 0 | 1;

/** The size mix: realistic (about 11 KB a file) or small (no file over 64 KiB, about 4.8 KB a file). */
export type SizeMix = 'realistic' | 'small';

export interface Layout {
  files: number;
  mix: SizeMix;
  tops: number;
  filesPerTop: number;
  subsPerTop: number;
}

export interface FileAttrs {
  size: number;
  mode: number;
  /** Seconds since the epoch (whole seconds). */
  mtime: number;
  seed: number;
  text: boolean;
  ino: number;
}

const PER_SUB = 100;
const MAX_TOPS = 100;
/** 2023-11-14: every file's mtime is within a year after it. */
const T0 = 1_700_000_000;
const ADDED = 2 ** 30;
const TEMPLATE = 0x7000_0000;
const TEMPLATES = 1000;

export function layout(files: number, mix: SizeMix = 'realistic'): Layout {
  const tops = Math.max(1, Math.min(MAX_TOPS, Math.ceil(files / PER_SUB)));
  const filesPerTop = Math.ceil(files / tops);
  return { files, mix, tops, filesPerTop, subsPerTop: Math.ceil(filesPerTop / PER_SUB) };
}

function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A 32-bit hash of (key, salt). */
export function hash(key: number, salt: number): number {
  return mix((mix(key ^ Math.imul(salt, 0x9e3779b9)) + salt) | 0);
}

const unit = (h: number) => h / 2 ** 32;

function sizeOf(key: number, mix: SizeMix): number {
  const u = unit(hash(key, 1));
  const f = unit(hash(key, 2));
  const logUniform = (lo: number, hi: number) => Math.floor(lo * (hi / lo) ** f);
  if (u < 0.02) return 0;
  if (u < 0.8) return logUniform(1, 4096);
  if (u < 0.98 || mix === 'small') return logUniform(4096, 65536);
  if (u < 0.999) return logUniform(65536, 524288);
  return logUniform(524288, 8 << 20);
}

/** What the mutation does to file index i: 'changed' (1%), 'deleted' (0.1%), 'added' (0.2%: a new file beside it) or nothing. */
export function mutationOf(i: number): 'changed' | 'deleted' | 'added' | undefined {
  const h = hash(i, 11) % 10000;
  if (h < 100) return 'changed';
  if (h < 110) return 'deleted';
  if (h < 130) return 'added';
  return undefined;
}

function inoBase(l: Layout): number {
  return 2 + l.tops * (l.subsPerTop + 1) + 1;
}

/** Attributes of file `i` (added: the file added beside it in epoch 1) in `epoch`. */
export function fileAttrs(l: Layout, i: number, epoch: Epoch, added = false): FileAttrs {
  const key = added ? ADDED + i : i;
  const changed = epoch === 1 && !added && mutationOf(i) === 'changed';
  const shared = hash(key, 3) % 10 === 0;
  const contentKey = shared ? TEMPLATE + (hash(key, 4) % TEMPLATES) : key;
  const size = sizeOf(contentKey, l.mix);
  return {
    size,
    mode: hash(key, 8) % 20 === 0 ? 0o100755 : 0o100644,
    mtime: T0 + (hash(key, 7) % 31_536_000) + (changed ? 86_400 : 0),
    seed: changed ? hash(key, 6) : contentKey,
    text: (hash(contentKey, 5) & 1) === 0,
    ino: inoBase(l) + (added ? l.files : 0) + i,
  };
}

export function dirIno(l: Layout, top: number, sub?: number): number {
  return 2 + top * (l.subsPerTop + 1) + (sub === undefined ? 0 : sub + 1);
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');
export const topName = (t: number) => `t${pad(t, 2)}`;
export const subName = (s: number) => `s${pad(s, 4)}`;
export function fileName(l: Layout, i: number, epoch: Epoch, added = false): string {
  return `${added ? 'g' : 'f'}${pad(i, 8)}.${fileAttrs(l, i, epoch, added).text ? 'txt' : 'bin'}`;
}

/** Index range [first, end) of the files of subdirectory (t, s). */
export function subRange(l: Layout, t: number, s: number): [number, number] {
  const first = t * l.filesPerTop + s * PER_SUB;
  return [first, Math.min(first + PER_SUB, (t + 1) * l.filesPerTop, l.files)];
}

export function subsOf(l: Layout, t: number): number {
  const inTop = Math.max(0, Math.min(l.filesPerTop, l.files - t * l.filesPerTop));
  return Math.ceil(inTop / PER_SUB);
}

export interface Entry {
  name: string;
  i: number;
  added: boolean;
}

/** The files of subdirectory (t, s) in `epoch`, in index order. */
export function* subEntries(l: Layout, t: number, s: number, epoch: Epoch): Generator<Entry> {
  const [first, end] = subRange(l, t, s);
  for (let i = first; i < end; i++) {
    const m = epoch === 1 ? mutationOf(i) : undefined;
    if (m !== 'deleted') yield { name: fileName(l, i, epoch), i, added: false };
    if (m === 'added') yield { name: fileName(l, i, epoch, true), i, added: true };
  }
}

/** Where a path of the data set points, or undefined if it does not exist in `epoch`. */
export type Node = { kind: 'root' } | { kind: 'top'; t: number } | { kind: 'sub'; t: number; s: number } | { kind: 'file'; i: number; added: boolean; t: number; s: number };

export function resolve(l: Layout, p: string, epoch: Epoch): Node | undefined {
  if (p === '/' || p === '') return { kind: 'root' };
  const parts = p.split('/').filter(Boolean);
  const m0 = /^t(\d{2})$/.exec(parts[0]!);
  if (!m0) return undefined;
  const t = Number(m0[1]);
  if (t >= l.tops) return undefined;
  if (parts.length === 1) return { kind: 'top', t };
  const m1 = /^s(\d{4})$/.exec(parts[1]!);
  if (!m1) return undefined;
  const s = Number(m1[1]);
  if (s >= subsOf(l, t)) return undefined;
  if (parts.length === 2) return { kind: 'sub', t, s };
  if (parts.length !== 3) return undefined;
  const m2 = /^([fg])(\d{8})\.(txt|bin)$/.exec(parts[2]!);
  if (!m2) return undefined;
  const i = Number(m2[2]);
  const added = m2[1] === 'g';
  const [first, end] = subRange(l, t, s);
  if (i < first || i >= end) return undefined;
  const m = epoch === 1 ? mutationOf(i) : undefined;
  if (added ? m !== 'added' : m === 'deleted') return undefined;
  if (parts[2] !== fileName(l, i, epoch, added)) return undefined;
  return { kind: 'file', i, added, t, s };
}

const TEXT = Buffer.from('etaoinshrdlu \n.,');

/** Bytes [pos, pos + len) of a file's content (clipped to its size). */
export function contentAt(a: FileAttrs, pos: number, len: number): Buffer {
  const end = Math.min(a.size, pos + len);
  if (end <= pos) return Buffer.alloc(0);
  const key = Buffer.alloc(16);
  for (let k = 0; k < 4; k++) key.writeUInt32LE(hash(a.seed, 100 + k), k * 4);
  const block = Math.floor(pos / 16);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(Math.floor(block / 2 ** 32), 8);
  iv.writeUInt32BE(block >>> 0, 12);
  const skip = pos - block * 16;
  const c = createCipheriv('aes-128-ctr', key, iv);
  const out = c.update(Buffer.alloc(skip + end - pos)).subarray(skip);
  if (a.text) for (let k = 0; k < out.length; k++) out[k] = TEXT[out[k]! & 15]!;
  return out;
}

/** Files in top directory `t` in `epoch`. */
export function topFiles(l: Layout, t: number, epoch: Epoch): number {
  let n = 0;
  for (let s = 0; s < subsOf(l, t); s++) for (const _ of subEntries(l, t, s, epoch)) n++;
  return n;
}

/** Files and bytes of the set in `epoch` (one pass over the indexes, O(1) memory). */
export function totals(l: Layout, epoch: Epoch): { files: number; bytes: number; dirs: number } {
  let files = 0;
  let bytes = 0;
  let dirs = l.tops;
  for (let t = 0; t < l.tops; t++) {
    const subs = subsOf(l, t);
    dirs += subs;
    for (let s = 0; s < subs; s++) {
      for (const e of subEntries(l, t, s, epoch)) {
        files++;
        bytes += fileAttrs(l, e.i, epoch, e.added).size;
      }
    }
  }
  return { files, bytes, dirs };
}

async function writeFile(l: Layout, dir: string, e: Entry, epoch: Epoch): Promise<void> {
  const a = fileAttrs(l, e.i, epoch, e.added);
  const file = path.join(dir, e.name);
  await fs.writeFile(file, contentAt(a, 0, a.size), { mode: a.mode & 0o777 });
  await fs.chmod(file, a.mode & 0o777);
  await fs.utimes(file, a.mtime, a.mtime);
}

async function inParallel(n: number, jobs: AsyncIterable<() => Promise<void>> | Iterable<() => Promise<void>>): Promise<void> {
  const running = new Set<Promise<void>>();
  for await (const job of jobs) {
    const p: Promise<void> = job().finally(() => running.delete(p));
    running.add(p);
    if (running.size >= n) await Promise.race(running);
  }
  await Promise.all(running);
}

/** Writes the whole set (epoch 0) under `root` (which must not exist yet). */
export async function writeTree(l: Layout, root: string, epoch: Epoch = 0): Promise<void> {
  function* jobs() {
    for (let t = 0; t < l.tops; t++) {
      for (let s = 0; s < subsOf(l, t); s++) {
        const dir = path.join(root, topName(t), subName(s));
        yield async () => {
          await fs.mkdir(dir, { recursive: true });
          for (const e of subEntries(l, t, s, epoch)) await writeFile(l, dir, e, epoch);
        };
      }
    }
  }
  await inParallel(8, jobs());
  await setDirTimes(l, root);
}

/** Gives every directory a fixed mtime (writing files into them changed it). */
async function setDirTimes(l: Layout, root: string): Promise<void> {
  for (let t = 0; t < l.tops; t++) {
    for (let s = 0; s < subsOf(l, t); s++) await fs.utimes(path.join(root, topName(t), subName(s)), T0, T0);
    await fs.utimes(path.join(root, topName(t)), T0, T0);
  }
}

/** Turns the tree under `root` from epoch `from` into epoch `to` (only the mutated files are touched). */
export async function mutateTree(l: Layout, root: string, from: Epoch, to: Epoch): Promise<void> {
  if (from === to) return;
  function* jobs() {
    for (let t = 0; t < l.tops; t++) {
      for (let s = 0; s < subsOf(l, t); s++) {
        const dir = path.join(root, topName(t), subName(s));
        const [first, end] = subRange(l, t, s);
        for (let i = first; i < end; i++) {
          const m = mutationOf(i);
          if (!m) continue;
          yield async () => {
            const exists = (e: Epoch) => (m === 'added' ? e === 1 : m === 'deleted' ? e === 0 : true);
            const added = m === 'added';
            if (exists(from) && (!exists(to) || m === 'changed')) await fs.rm(path.join(dir, fileName(l, i, from, added)), { force: true });
            if (exists(to) && (!exists(from) || m === 'changed')) await writeFile(l, dir, { i, added, name: fileName(l, i, to, added) }, to);
          };
        }
      }
    }
  }
  await inParallel(8, jobs());
}
