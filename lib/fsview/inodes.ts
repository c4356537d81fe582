/**
 * Inode numbers for the mount, from a table of bounded size. Each distinct
 * file gets its own number; the two names of a hardlink share one (so
 * `cp -a` recreates the hardlink), and the same path in two snapshots gets
 * two (so `diff -r` compares them instead of assuming they are one file).
 * Numbers are handed out in order on first sight, and stay below 2^32
 * (fuse-native passes 32 bits): one is handed out again only after every
 * other has been.
 *
 * The table remembers the most recently used numbers only, so walking a huge
 * snapshot does not grow memory without bound. fuse-native runs libfuse's
 * path-based API, which tells the file system nothing of the kernel's
 * `forget`, so an LRU stands in for it. The trade-off: a path the table has
 * forgotten gets a new number when it is next looked up. The kernel keeps the
 * number it was told for as long as it caches the inode, so this shows only
 * for paths the kernel forgot too, or between a directory listing's d_ino and
 * a later stat when one directory holds more entries than the table. Files
 * with more than one link (whose number must match across their names for
 * `cp -a`, `rsync -H` and tar to see the hardlink) have a table of their own,
 * so the churn of a walk through ordinary files never pushes them out.
 */
import { LRUCache } from 'lru-cache';

export const ROOT_INO = 1;
export const SNAPSHOTS_INO = 2;
export const IDS_INO = 3;
export const LATEST_INO = 4;
const FIRST_FREE = 16;
const LAST = 0xffffffff;

/** Paths whose inode numbers are remembered, by default. */
export const DEFAULT_INODE_CAPACITY = 1 << 17;
/** Paths of files with several links whose numbers are remembered, by default. */
export const DEFAULT_LINKED_INODE_CAPACITY = 1 << 16;

export interface InodeTableOptions {
  /** Paths remembered (default DEFAULT_INODE_CAPACITY); Infinity: all (memory grows with what is visited). */
  capacity?: number;
  /** Paths of files with several links remembered (default DEFAULT_LINKED_INODE_CAPACITY). */
  linkedCapacity?: number;
}

/** A bounded map (or an unbounded one, for capacity Infinity) with get/set and a size. */
interface Remembered {
  get(key: string): number | undefined;
  set(key: string, ino: number): void;
  readonly size: number;
}

function remembered(capacity: number): Remembered {
  if (capacity === Infinity) return new Map<string, number>();
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`inode table capacity must be a positive integer, not ${capacity}`);
  const lru = new LRUCache<string, number>({ max: capacity });
  return { get: (k) => lru.get(k), set: (k, v) => void lru.set(k, v), get size() { return lru.size; } };
}

export class InodeTable {
  private readonly plain: Remembered;
  private readonly linked: Remembered;
  private next = FIRST_FREE;

  constructor(opts: InodeTableOptions = {}) {
    this.plain = remembered(opts.capacity ?? DEFAULT_INODE_CAPACITY);
    this.linked = remembered(opts.linkedCapacity ?? DEFAULT_LINKED_INODE_CAPACITY);
  }

  /**
   * The inode of `path` (a snapshot-relative path, components joined by "/",
   * "" for the snapshot's root) in the snapshot with serial `snapshot`;
   * `linked`: the path is a file with more than one link.
   */
  of(snapshot: number, path: Uint8Array, linked = false): number {
    const key = `${snapshot}/${Buffer.from(path.buffer, path.byteOffset, path.byteLength).toString('latin1')}`;
    const table = linked ? this.linked : this.plain;
    let ino = table.get(key);
    if (ino === undefined) {
      ino = this.next;
      this.next = ino >= LAST ? FIRST_FREE : ino + 1;
      table.set(key, ino);
    }
    return ino;
  }

  /** Paths remembered now. */
  get size(): number {
    return this.plain.size + this.linked.size;
  }
}
