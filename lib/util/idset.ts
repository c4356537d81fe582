/**
 * IdSet: a compact set of 32-byte object ids, for the sets garbage collection
 * and backups keep (reachable objects, candidates, the ids a backup names).
 * Open addressing in one Uint8Array of 32-byte slots (ids are keyed hashes,
 * so their first bytes are a good hash): 10 million ids take 512 MiB at
 * most, against several GiB for hex strings in a JS Set.
 */
import { idToBytes } from '../format/ids.js';

const ID = 32;
const MAX_LOAD = 0.7;

export class IdSet {
  private slots: Uint8Array;
  private mask: number;
  private count = 0;
  /** The all-zero id cannot mark its own slot as used: kept aside. */
  private hasZero = false;

  constructor(expected = 1024) {
    let cap = 1024;
    while (cap * MAX_LOAD < expected) cap *= 2;
    this.slots = new Uint8Array(cap * ID);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Adds an id (hex or 32 bytes); returns false if it was already present. */
  add(id: string | Uint8Array): boolean {
    const b = typeof id === 'string' ? idToBytes(id) : id;
    if (isZero(b)) {
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
    const b = typeof id === 'string' ? idToBytes(id) : id;
    if (isZero(b)) return this.hasZero;
    return this.find(b) >= 0;
  }

  /** Every id, as hex, in no particular order. */
  *[Symbol.iterator](): IterableIterator<string> {
    if (this.hasZero) yield '0'.repeat(64);
    const s = this.slots;
    for (let o = 0; o < s.length; o += ID) {
      if (!isZeroAt(s, o)) yield Buffer.from(s.buffer, s.byteOffset + o, ID).toString('hex');
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
      const o = i * ID;
      if (isZeroAt(s, o)) return -o - 1;
      if (equalAt(s, o, b)) return o;
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Uint8Array(old.length * 2);
    this.mask = (this.slots.length / ID) - 1;
    for (let o = 0; o < old.length; o += ID) {
      if (isZeroAt(old, o)) continue;
      const b = old.subarray(o, o + ID);
      this.slots.set(b, -this.find(b) - 1);
    }
  }
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < ID; i++) if (b[i] !== 0) return false;
  return true;
}

function isZeroAt(s: Uint8Array, o: number): boolean {
  for (let i = 0; i < ID; i++) if (s[o + i] !== 0) return false;
  return true;
}

function equalAt(s: Uint8Array, o: number, b: Uint8Array): boolean {
  for (let i = 0; i < ID; i++) if (s[o + i] !== b[i]) return false;
  return true;
}
