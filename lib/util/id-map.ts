/**
 * IdMap: a compact map from 32-byte object ids to a few unsigned 32-bit
 * fields, in typed arrays only (no object, string or Buffer per id), for
 * indexes of millions of objects. Open addressing with linear probing over a
 * table of entry positions; ids are keyed hashes, so their first bytes are a
 * good hash. Entries keep their position for life (a deleted entry is marked
 * dead, not moved), so a sorted view of positions stays valid while entries
 * are added or deleted. Memory: 32 bytes of id + 4 per field + 1 of flags
 * per entry, in blocks of 4096 entries (so at most one block is unused), plus
 * a table of 4-byte slots kept between 7/16 and 7/8 full: 50 to 55 bytes per
 * id with 3 fields (see `bytes`).
 * IdSet is an IdMap without fields.
 */
const ID_BYTES = 32;
const EMPTY = 0;
/** Entries per block: storage grows by whole blocks, so the unused tail is at most one block. */
const BLOCK_BITS = 12;
const BLOCK = 1 << BLOCK_BITS;
const LOW = BLOCK - 1;
/** The table doubles when more than 7/8 full. */
const MAX_LOAD_NUM = 7;
const MAX_LOAD_DEN = 8;

export class IdMap {
  private readonly keys: Buffer[] = [];
  private readonly vals: Uint32Array[] = [];
  private readonly dead: Uint8Array[] = [];
  private table: Uint32Array;
  private mask: number;
  /** Positions used (live and dead). */
  private used = 0;
  /** Live entries. */
  size = 0;
  private readonly scratch = Buffer.alloc(ID_BYTES);

  constructor(readonly fields: number) {
    this.table = new Uint32Array(64);
    this.mask = 63;
  }

  /** The id as 32 bytes: hex strings are converted into a scratch buffer (valid until the next call). */
  private bytesOf(id: string | Uint8Array): Uint8Array {
    if (typeof id !== 'string') return id;
    this.scratch.write(id, 0, ID_BYTES, 'hex');
    return this.scratch;
  }

  private hashOf(pos: number): number {
    const k = this.keys[pos >>> BLOCK_BITS]!;
    const o = (pos & LOW) * ID_BYTES;
    return (k[o]! | (k[o + 1]! << 8) | (k[o + 2]! << 16) | (k[o + 3]! << 24)) >>> 0;
  }

  private equalAt(pos: number, id: Uint8Array): boolean {
    const k = this.keys[pos >>> BLOCK_BITS]!;
    const o = (pos & LOW) * ID_BYTES;
    for (let i = 0; i < ID_BYTES; i++) if (k[o + i] !== id[i]) return false;
    return true;
  }

  /** The table slot holding `id`, or the empty slot where it would go. */
  private slotOf(id: Uint8Array): number {
    let s = ((id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) >>> 0) & this.mask;
    for (;;) {
      const v = this.table[s]!;
      if (v === EMPTY || this.equalAt(v - 1, id)) return s;
      s = (s + 1) & this.mask;
    }
  }

  /** The position of a live entry, or -1. */
  find(id: string | Uint8Array): number {
    const v = this.table[this.slotOf(this.bytesOf(id))]!;
    return v === EMPTY ? -1 : v - 1;
  }

  has(id: string | Uint8Array): boolean {
    return this.find(id) >= 0;
  }

  /** Adds an entry; returns its position, or -1 (and changes nothing) if the id is present. */
  add(id: string | Uint8Array, ...values: number[]): number {
    const bytes = this.bytesOf(id);
    let slot = this.slotOf(bytes);
    if (this.table[slot] !== EMPTY) return -1;
    if ((this.size + 1) * MAX_LOAD_DEN > this.table.length * MAX_LOAD_NUM) {
      this.growTable();
      slot = this.slotOf(bytes);
    }
    const pos = this.used++;
    const b = pos >>> BLOCK_BITS;
    if (b === this.keys.length) {
      this.keys.push(Buffer.alloc(BLOCK * ID_BYTES));
      this.vals.push(new Uint32Array(BLOCK * this.fields));
      this.dead.push(new Uint8Array(BLOCK));
    }
    const low = pos & LOW;
    this.keys[b]!.set(bytes.subarray(0, ID_BYTES), low * ID_BYTES);
    const v = this.vals[b]!;
    for (let f = 0; f < this.fields; f++) v[low * this.fields + f] = values[f] ?? 0;
    this.table[slot] = pos + 1;
    this.size++;
    return pos;
  }

  field(pos: number, f: number): number {
    return this.vals[pos >>> BLOCK_BITS]![(pos & LOW) * this.fields + f]!;
  }

  setField(pos: number, f: number, value: number): void {
    this.vals[pos >>> BLOCK_BITS]![(pos & LOW) * this.fields + f] = value;
  }

  /** Removes an entry; false if absent. Its position is never reused. */
  delete(id: string | Uint8Array): boolean {
    let s = this.slotOf(this.bytesOf(id));
    const v = this.table[s]!;
    if (v === EMPTY) return false;
    this.dead[(v - 1) >>> BLOCK_BITS]![(v - 1) & LOW] = 1;
    this.size--;
    // Backward-shift deletion keeps every probe chain unbroken.
    this.table[s] = EMPTY;
    let next = (s + 1) & this.mask;
    while (this.table[next] !== EMPTY) {
      const p = this.table[next]! - 1;
      const home = this.hashOf(p) & this.mask;
      // Move it back if the hole lies on its probe path (cyclically within [home, next)).
      if ((next > s && (home <= s || home > next)) || (next < s && home <= s && home > next)) {
        this.table[s] = p + 1;
        this.table[next] = EMPTY;
        s = next;
      }
      next = (next + 1) & this.mask;
    }
    return true;
  }

  /** Positions used so far, live and dead (dead ones are never reused: see `size` for the live count). */
  get positionsUsed(): number {
    return this.used;
  }

  isLive(pos: number): boolean {
    return pos < this.used && this.dead[pos >>> BLOCK_BITS]![pos & LOW] === 0;
  }

  /** The id at a position, as a view into the map (copy it to keep it). */
  idBytes(pos: number): Uint8Array {
    const o = (pos & LOW) * ID_BYTES;
    return this.keys[pos >>> BLOCK_BITS]!.subarray(o, o + ID_BYTES);
  }

  /** Copies the id at a position into `out` (no view allocated). */
  copyId(pos: number, out: Buffer): void {
    const k = this.keys[pos >>> BLOCK_BITS]!;
    const o = (pos & LOW) * ID_BYTES;
    for (let i = 0; i < ID_BYTES; i++) out[i] = k[o + i]!;
  }

  /** The first two bytes of the id at a position, as a number (big-endian). */
  prefix16(pos: number): number {
    const k = this.keys[pos >>> BLOCK_BITS]!;
    const o = (pos & LOW) * ID_BYTES;
    return (k[o]! << 8) | k[o + 1]!;
  }

  /** Compares the ids at two positions (for sorting). */
  comparePositions(a: number, b: number): number {
    const ka = this.keys[a >>> BLOCK_BITS]!;
    const kb = this.keys[b >>> BLOCK_BITS]!;
    const oa = (a & LOW) * ID_BYTES;
    const ob = (b & LOW) * ID_BYTES;
    for (let i = 0; i < ID_BYTES; i++) {
      const d = ka[oa + i]! - kb[ob + i]!;
      if (d !== 0) return d;
    }
    return 0;
  }

  idHex(pos: number): string {
    const o = (pos & LOW) * ID_BYTES;
    return this.keys[pos >>> BLOCK_BITS]!.toString('hex', o, o + ID_BYTES);
  }

  /** Positions of live entries, in insertion order. */
  *positions(): IterableIterator<number> {
    for (let p = 0; p < this.used; p++) if (this.isLive(p)) yield p;
  }

  /** Positions of live entries sorted by id (a snapshot: entries added later are not in it). */
  sortedPositions(): Uint32Array {
    const out = new Uint32Array(this.size);
    let n = 0;
    for (let p = 0; p < this.used; p++) if (this.isLive(p)) out[n++] = p;
    const k = this.keys;
    out.sort((a, b) => {
      const oa = (a & LOW) * ID_BYTES;
      const ob = (b & LOW) * ID_BYTES;
      return k[a >>> BLOCK_BITS]!.compare(k[b >>> BLOCK_BITS]!, ob, ob + ID_BYTES, oa, oa + ID_BYTES);
    });
    return out;
  }

  /** Compares the id at `pos` with `id` (for searching a sorted view). */
  compareAt(pos: number, id: string | Uint8Array): number {
    const b = this.bytesOf(id);
    const o = (pos & LOW) * ID_BYTES;
    return this.keys[pos >>> BLOCK_BITS]!.compare(b, 0, ID_BYTES, o, o + ID_BYTES);
  }

  /** Bytes of memory the map holds (for measurements). */
  get bytes(): number {
    return this.keys.length * BLOCK * (ID_BYTES + 4 * this.fields + 1) + this.table.byteLength;
  }

  private growTable(): void {
    const table = new Uint32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let p = 0; p < this.used; p++) {
      if (!this.isLive(p)) continue;
      let s = this.hashOf(p) & mask;
      while (table[s] !== EMPTY) s = (s + 1) & mask;
      table[s] = p + 1;
    }
    this.table = table;
    this.mask = mask;
  }
}

/** A set of 32-byte ids (an IdMap without fields). */
export class IdSet {
  private readonly map = new IdMap(0);
  /** Adds an id; false if it was present. */
  add(id: string | Uint8Array): boolean {
    return this.map.add(id) >= 0;
  }
  has(id: string | Uint8Array): boolean {
    return this.map.has(id);
  }
  delete(id: string | Uint8Array): boolean {
    return this.map.delete(id);
  }
  get size(): number {
    return this.map.size;
  }
  *[Symbol.iterator](): IterableIterator<string> {
    for (const p of this.map.positions()) yield this.map.idHex(p);
  }
  get bytes(): number {
    return this.map.bytes;
  }
}
