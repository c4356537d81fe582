/**
 * Compact id collections for garbage collection (exact sets of ids are
 * IdSet, lib/util/id-map.ts).
 *
 * IdPrefixSet: membership of 32-byte object ids by their first `width`
 * bytes (default 16: 128 bits of a keyed hash, so a false "present" is as
 * likely as an id collision), for the reachable sets of mark and sweep.
 * Width 8 (64 bits: a false "present" among 10 million ids about once in
 * 10^12 lookups) is for sets where a false "present" is harmless (the
 * collector's reachable chunks: it only keeps a garbage chunk).
 * Open addressing in one Uint8Array of fixed-width slots (ids are keyed
 * hashes, so their first bytes are a good hash). 10 million ids take 256 MiB
 * at width 16, 128 MiB at width 8, against several GiB for hex strings in a
 * JS Set. At width 32 it is exact and iterable.
 *
 * IdList: an append-only list of full ids in fixed blocks (no copy when it
 * grows): what a store listing returns, 32 bytes per id; drain() reads it
 * once, giving each block back as it goes.
 */
import { idToBytes } from '../format/ids.js';

const ID = 32;
const MAX_LOAD = 0.7;

export interface IdPrefixSetOptions {
  /** Bytes of each id kept: 16 (default; membership only), 8 (where a false "present" is harmless) or 32 (exact, iterable). */
  width?: 8 | 16 | 32;
}

export class IdPrefixSet {
  private slots: Uint8Array;
  private mask: number;
  private count = 0;
  /** The all-zero id cannot mark its own slot as used: kept aside. */
  private hasZero = false;

  private readonly w: number;

  constructor(expected = 1024, opts: IdPrefixSetOptions = {}) {
    this.w = opts.width ?? 16;
    let cap = 1024;
    while (cap * MAX_LOAD < expected) cap *= 2;
    this.slots = new Uint8Array(cap * this.w);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Adds an id (hex or 32 bytes); returns false if it was already present. */
  add(id: string | Uint8Array): boolean {
    const b = (typeof id === 'string' ? idToBytes(id) : id).subarray(0, this.w);
    if (isZero(b, this.w)) {
      if (this.hasZero) return false;
      this.hasZero = true;
      this.count++;
      return true;
    }
    if ((this.count + 1) > (this.mask + 1) * MAX_LOAD) this.grow();
    const at = this.find(b);
    if (at >= 0) return false;
    this.slots.set(b, -at - 1);
    this.count++;
    return true;
  }

  has(id: string | Uint8Array): boolean {
    const b = (typeof id === 'string' ? idToBytes(id) : id).subarray(0, this.w);
    if (isZero(b, this.w)) return this.hasZero;
    return this.find(b) >= 0;
  }

  /** Every id, as hex, in no particular order. */
  *[Symbol.iterator](): IterableIterator<string> {
    if (this.w !== ID) throw new Error('IdPrefixSet: a set of id prefixes cannot list its ids');
    if (this.hasZero) yield '0'.repeat(64);
    const s = this.slots;
    for (let o = 0; o < s.length; o += ID) {
      if (!isZeroAt(s, o, ID)) yield Buffer.from(s.buffer, s.byteOffset + o, ID).toString('hex');
    }
  }

  /** Every id, as hex, sorted ascending. */
  sorted(): string[] {
    return [...this].sort();
  }

  /** Slot offset (>= 0) of b, or -(free slot offset) - 1. */
  private find(b: Uint8Array): number {
    const s = this.slots;
    let i = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) & this.mask;
    for (;;) {
      const o = i * this.w;
      if (isZeroAt(s, o, this.w)) return -o - 1;
      if (equalAt(s, o, b, this.w)) return o;
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Uint8Array(old.length * 2);
    this.mask = this.slots.length / this.w - 1;
    for (let o = 0; o < old.length; o += this.w) {
      if (isZeroAt(old, o, this.w)) continue;
      const b = old.subarray(o, o + this.w);
      this.slots.set(b, -this.find(b) - 1);
    }
  }
}

function isZero(b: Uint8Array, w: number): boolean {
  for (let i = 0; i < w; i++) if (b[i] !== 0) return false;
  return true;
}

function isZeroAt(s: Uint8Array, o: number, w: number): boolean {
  for (let i = 0; i < w; i++) if (s[o + i] !== 0) return false;
  return true;
}

function equalAt(s: Uint8Array, o: number, b: Uint8Array, w: number): boolean {
  for (let i = 0; i < w; i++) if (s[o + i] !== b[i]) return false;
  return true;
}

const BLOCK_IDS = 1 << 16;

export class IdList {
  private readonly blocks: (Uint8Array | undefined)[] = [];
  private count = 0;

  private drained = false;

  get size(): number {
    return this.count;
  }

  push(id: string | Uint8Array): void {
    if (this.drained) throw new Error('IdList: drained');
    const b = typeof id === 'string' ? idToBytes(id) : id;
    const at = this.count % BLOCK_IDS;
    if (at === 0) this.blocks.push(new Uint8Array(BLOCK_IDS * ID));
    this.blocks[this.blocks.length - 1]!.set(b.subarray(0, ID), at * ID);
    this.count++;
  }

  /** Every id as a 32-byte view (valid until the next push), in insertion order. */
  *bytes(): IterableIterator<Uint8Array> {
    for (let i = 0; i < this.count; i++) {
      const blk = this.blocks[Math.floor(i / BLOCK_IDS)];
      if (!blk) throw new Error('IdList: drained');
      const o = (i % BLOCK_IDS) * ID;
      yield blk.subarray(o, o + ID);
    }
  }

  /**
   * Every id once, as bytes() does, dropping each block once it is passed
   * (its memory can be given back): the list is empty afterwards, even if
   * the caller stops early.
   */
  *drain(): IterableIterator<Uint8Array> {
    this.drained = true;
    try {
      for (let b = 0; b < this.blocks.length; b++) {
        const blk = this.blocks[b]!;
        const n = Math.min(BLOCK_IDS, this.count - b * BLOCK_IDS);
        for (let j = 0; j < n; j++) yield blk.subarray(j * ID, j * ID + ID);
        this.blocks[b] = undefined;
      }
    } finally {
      this.blocks.length = 0;
      this.count = 0;
    }
  }

  *[Symbol.iterator](): IterableIterator<string> {
    for (const b of this.bytes()) yield Buffer.from(b.buffer, b.byteOffset, ID).toString('hex');
  }
}
