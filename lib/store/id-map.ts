/**
 * IdMap: a compact map from 32-byte object ids to a few unsigned 32-bit
 * fields, in typed arrays only (no object, string or Buffer per id), for
 * indexes of millions of objects. Open addressing with linear probing over a
 * table of entry positions; ids are keyed hashes, so their first bytes are a
 * good hash. Entries keep their position for life (a deleted entry is marked
 * dead, not moved), so a sorted view of positions stays valid while entries
 * are added or deleted. Memory: 32 bytes of id + 4 per field + 1 of flags
 * per entry, plus 4-byte table slots at a load of at most 3/4, with arrays
 * grown by half: about 60 bytes per id with 3 fields (see `bytes`).
 * IdSet is an IdMap without fields.
 */
const ID_BYTES = 32;
const EMPTY = 0;

function hashAt(keys: Uint8Array, at: number): number {
  return (keys[at]! | (keys[at + 1]! << 8) | (keys[at + 2]! << 16) | (keys[at + 3]! << 24)) >>> 0;
}

export class IdMap {
  private keys: Uint8Array;
  private vals: Uint32Array;
  private dead: Uint8Array;
  private table: Uint32Array;
  private mask: number;
  /** Positions used (live and dead). */
  private used = 0;
  /** Live entries. */
  size = 0;
  private readonly scratch = Buffer.alloc(ID_BYTES);

  constructor(
    readonly fields: number,
    capacity = 256,
  ) {
    this.keys = new Uint8Array(capacity * ID_BYTES);
    this.vals = new Uint32Array(capacity * fields);
    this.dead = new Uint8Array(capacity);
    let t = 8;
    while (t * 3 < capacity * 4) t *= 2;
    this.table = new Uint32Array(t);
    this.mask = t - 1;
  }

  /** The id as 32 bytes: hex strings are converted into a scratch buffer (valid until the next call). */
  private bytesOf(id: string | Uint8Array): Uint8Array {
    if (typeof id !== 'string') return id;
    this.scratch.write(id, 0, ID_BYTES, 'hex');
    return this.scratch;
  }

  private equalAt(pos: number, id: Uint8Array): boolean {
    const o = pos * ID_BYTES;
    const k = this.keys;
    for (let i = 0; i < ID_BYTES; i++) if (k[o + i] !== id[i]) return false;
    return true;
  }

  /** The table slot holding `id`, or the empty slot where it would go. */
  private slotOf(id: Uint8Array): number {
    let s = hashAt(id, 0) & this.mask;
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
    if ((this.size + 1) * 4 > this.table.length * 3) {
      this.growTable();
      slot = this.slotOf(bytes);
    }
    if (this.used === this.dead.length) this.growEntries();
    const pos = this.used++;
    this.keys.set(bytes.subarray(0, ID_BYTES), pos * ID_BYTES);
    for (let f = 0; f < this.fields; f++) this.vals[pos * this.fields + f] = values[f] ?? 0;
    this.table[slot] = pos + 1;
    this.size++;
    return pos;
  }

  field(pos: number, f: number): number {
    return this.vals[pos * this.fields + f]!;
  }

  setField(pos: number, f: number, value: number): void {
    this.vals[pos * this.fields + f] = value;
  }

  /** Removes an entry; false if absent. Its position is never reused. */
  delete(id: string | Uint8Array): boolean {
    let s = this.slotOf(this.bytesOf(id));
    const v = this.table[s]!;
    if (v === EMPTY) return false;
    this.dead[v - 1] = 1;
    this.size--;
    // Backward-shift deletion keeps every probe chain unbroken.
    this.table[s] = EMPTY;
    let next = (s + 1) & this.mask;
    while (this.table[next] !== EMPTY) {
      const p = this.table[next]! - 1;
      const home = hashAt(this.keys, p * ID_BYTES) & this.mask;
      // Move it back if its home is not within (s, next].
      if ((next > s && (home <= s || home > next)) || (next < s && home <= s && home > next)) {
        this.table[s] = p + 1;
        this.table[next] = EMPTY;
        s = next;
      }
      next = (next + 1) & this.mask;
    }
    return true;
  }

  isLive(pos: number): boolean {
    return pos < this.used && this.dead[pos] === 0;
  }

  /** The id at a position, as a view into the map (copy it to keep it). */
  idBytes(pos: number): Uint8Array {
    return this.keys.subarray(pos * ID_BYTES, (pos + 1) * ID_BYTES);
  }

  idHex(pos: number): string {
    return Buffer.from(this.keys.buffer, this.keys.byteOffset + pos * ID_BYTES, ID_BYTES).toString('hex');
  }

  /** Positions of live entries, in insertion order. */
  *positions(): IterableIterator<number> {
    for (let p = 0; p < this.used; p++) if (this.dead[p] === 0) yield p;
  }

  /** Positions of live entries sorted by id (a snapshot: entries added later are not in it). */
  sortedPositions(): Uint32Array {
    const out = new Uint32Array(this.size);
    let n = 0;
    for (let p = 0; p < this.used; p++) if (this.dead[p] === 0) out[n++] = p;
    const k = Buffer.from(this.keys.buffer, this.keys.byteOffset, this.keys.byteLength);
    out.sort((a, b) => k.compare(k, b * ID_BYTES, b * ID_BYTES + ID_BYTES, a * ID_BYTES, a * ID_BYTES + ID_BYTES));
    return out;
  }

  /** Compares the id at `pos` with `id` (for searching a sorted view). */
  compareAt(pos: number, id: string | Uint8Array): number {
    const b = this.bytesOf(id);
    const k = Buffer.from(this.keys.buffer, this.keys.byteOffset + pos * ID_BYTES, ID_BYTES);
    return k.compare(b, 0, ID_BYTES);
  }

  /** Bytes of memory the map holds (for measurements). */
  get bytes(): number {
    return this.keys.byteLength + this.vals.byteLength + this.dead.byteLength + this.table.byteLength;
  }

  private growEntries(): void {
    const cap = Math.max(16, Math.ceil(this.dead.length * 1.5));
    const keys = new Uint8Array(cap * ID_BYTES);
    keys.set(this.keys);
    const vals = new Uint32Array(cap * this.fields);
    vals.set(this.vals);
    const dead = new Uint8Array(cap);
    dead.set(this.dead);
    this.keys = keys;
    this.vals = vals;
    this.dead = dead;
  }

  private growTable(): void {
    const table = new Uint32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let p = 0; p < this.used; p++) {
      if (this.dead[p]) continue;
      let s = hashAt(this.keys, p * ID_BYTES) & mask;
      while (table[s] !== EMPTY) s = (s + 1) & mask;
      table[s] = p + 1;
    }
    this.table = table;
    this.mask = mask;
  }
}

/** A set of 32-byte ids (an IdMap without fields). */
export class IdSet {
  private readonly map: IdMap;
  constructor(capacity?: number) {
    this.map = new IdMap(0, capacity);
  }
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
