/**
 * SortedIdMap: an exact map from 32-byte object ids to three unsigned 32-bit
 * fields (a pack number, an offset, a length), laid out for indexes of tens
 * of millions of objects in as few bytes as the full ids allow.
 *
 * Most entries sit in one sorted run: the ids in blocks of 30 bytes each (the
 * first two bytes are implicit: a directory of 65,536 start positions, one
 * per two-byte prefix, says where each prefix's entries begin), the fields
 * bit-packed with the widths their largest values need, and a deletion bit.
 * About 30 + (bits of the three fields) / 8 bytes per id, with no hash table
 * and no unused slots. New entries go to a small unsorted delta (an IdMap),
 * merged into a new run when it outgrows 1/8 of the run; the merge streams
 * block by block and releases the old run's blocks as it goes, so it never
 * holds two copies of the index. Lookups are a directory step and a binary
 * search within one prefix, then the delta; a run of over a million ids
 * also has a finer directory on the first 17 to 24 bits (about 8 entries
 * each, half a byte per id), so a lookup stays a few steps. Deleted entries
 * of the run keep their place until the next merge.
 *
 * Bulk loads (opening a store's index) use `append`: the entry goes to an
 * unsorted tail of typed arrays without any search, and the tail is settled
 * at the next other call: a small one entry by entry as by `add`, a large
 * one by one sort and one linear merge with the run. Duplicates keep the
 * meaning of `add` (the entry present first wins); the later ones are handed
 * to the map's `onDuplicate`, in the order they were appended. A tail that
 * grows as large as the run is settled at once, so a load merges about
 * log2(n / 2^20) times and its peak stays near the final index's size.
 *
 * A listing (`ids`) walks the run in id order and keeps its place by id, so
 * merges meanwhile do not disturb it; while one is open, merges are put off
 * (up to a hard limit).
 */
import { IdMap } from './id-map.js';

const ID_BYTES = 32;
/** Bytes of an id kept per entry of a run (the first two are the directory's). */
const KEY_BYTES = 30;
const BUCKETS = 1 << 16;
/** Entries per block of a run. */
const BLOCK_BITS = 16;
const BLOCK = 1 << BLOCK_BITS;
const LOW = BLOCK - 1;
/** The delta is merged once it holds more than max(MIN_DELTA, run/DELTA_SHARE) entries. */
const MIN_DELTA = 1 << 14;
const DELTA_SHARE = 8;
/** append() settles the tail itself once it holds max(MIN_TAIL, the run's live entries). */
const MIN_TAIL = 1 << 20;

function bitsFor(max: number): number {
  return max === 0 ? 1 : 32 - Math.clz32(max);
}

function readBits(a: Uint32Array, pos: number, bits: number): number {
  const w = pos >>> 5;
  const s = pos & 31;
  let v = a[w]! >>> s;
  if (s + bits > 32) v |= a[w + 1]! << (32 - s);
  return bits === 32 ? v >>> 0 : (v & ((1 << bits) - 1)) >>> 0;
}

/** Writes into zeroed bits. */
function writeBits(a: Uint32Array, pos: number, bits: number, v: number): void {
  const w = pos >>> 5;
  const s = pos & 31;
  a[w] = a[w]! | (v << s);
  if (s + bits > 32) a[w + 1] = a[w + 1]! | (v >>> (32 - s));
}

function bucketOf(id: Uint8Array): number {
  return (id[0]! << 8) | id[1]!;
}

/** A sorted run: immutable but for deletion bits. */
const RELEASED_KEYS = Buffer.alloc(0);
const RELEASED_FIELDS = new Uint32Array(0);
const RELEASED_DEAD = new Uint8Array(0);

/** Whole blocks released by a run while a merge passes them, for the new run. */
interface BlockPool {
  /** The bits per entry of the new run: field blocks of the old one are reused only at the same width. */
  width: number;
  keys: Buffer[];
  fields: Uint32Array[];
  dead: Uint8Array[];
}

class Run {
  readonly keys: Buffer[] = [];
  readonly fields: Uint32Array[] = [];
  readonly dead: Uint8Array[] = [];
  /** dir[b]: the first entry with two-byte prefix b; dir[BUCKETS] = n. */
  readonly dir = new Uint32Array(BUCKETS + 1);
  /**
   * In a large run, a finer directory for lookups: fine[p], the first entry
   * whose id starts with the `fineBits` bits p (about 8 entries each).
   */
  fine?: Uint32Array;
  fineBits = 16;
  /** Bits per field and per entry. */
  readonly widths: [number, number, number];
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly width: number;
  /** Entries (live and deleted). */
  n = 0;
  deleted = 0;

  constructor(widths: [number, number, number]) {
    this.widths = widths;
    [this.w0, this.w1, this.w2] = widths;
    this.width = this.w0 + this.w1 + this.w2;
  }

  get live(): number {
    return this.n - this.deleted;
  }

  /** Makes room for entry `i` (written in order); `total`: the run's final size; whole blocks come from `pool` if it has any. */
  reserve(i: number, total: number, pool?: BlockPool): void {
    if ((i & LOW) !== 0) return;
    const count = Math.min(BLOCK, total - i);
    const words = Math.ceil((count * this.width) / 32) + 1;
    const whole = count === BLOCK;
    const keys = whole ? pool?.keys.pop() : undefined;
    this.keys.push(keys ?? Buffer.alloc(count * KEY_BYTES));
    const fields = whole && pool?.width === this.width ? pool.fields.pop() : undefined;
    this.fields.push(fields ? fields.fill(0) : new Uint32Array(words));
    const dead = whole ? pool?.dead.pop() : undefined;
    this.dead.push(dead ? dead.fill(0) : new Uint8Array(Math.ceil(count / 8)));
  }

  /** Appends an entry (after reserve), in id order. */
  append(id: Uint8Array, f0: number, f1: number, f2: number): void {
    const i = this.n++;
    const b = i >>> BLOCK_BITS;
    const low = i & LOW;
    const k = this.keys[b]!;
    const o = low * KEY_BYTES;
    for (let j = 0; j < KEY_BYTES; j++) k[o + j] = id[j + 2]!;
    const a = this.fields[b]!;
    const pos = low * this.width;
    writeBits(a, pos, this.w0, f0);
    writeBits(a, pos + this.w0, this.w1, f1);
    writeBits(a, pos + this.w0 + this.w1, this.w2, f2);
  }

  /** Appends entry i of another run (after reserve), in id order. */
  appendFrom(src: Run, i: number): void {
    const n = this.n++;
    const sk = src.keys[i >>> BLOCK_BITS]!;
    const so = (i & LOW) * KEY_BYTES;
    const k = this.keys[n >>> BLOCK_BITS]!;
    const o = (n & LOW) * KEY_BYTES;
    for (let j = 0; j < KEY_BYTES; j++) k[o + j] = sk[so + j]!;
    const a = this.fields[n >>> BLOCK_BITS]!;
    const pos = (n & LOW) * this.width;
    writeBits(a, pos, this.w0, src.field0(i));
    writeBits(a, pos + this.w0, this.w1, src.field1(i));
    writeBits(a, pos + this.w0 + this.w1, this.w2, src.field2(i));
  }

  field0(i: number): number {
    return readBits(this.fields[i >>> BLOCK_BITS]!, (i & LOW) * this.width, this.w0);
  }

  field1(i: number): number {
    return readBits(this.fields[i >>> BLOCK_BITS]!, (i & LOW) * this.width + this.w0, this.w1);
  }

  field2(i: number): number {
    return readBits(this.fields[i >>> BLOCK_BITS]!, (i & LOW) * this.width + this.w0 + this.w1, this.w2);
  }

  isDead(i: number): boolean {
    return (this.dead[i >>> BLOCK_BITS]![(i & LOW) >>> 3]! & (1 << (i & 7))) !== 0;
  }

  kill(i: number): void {
    const d = this.dead[i >>> BLOCK_BITS]!;
    d[(i & LOW) >>> 3] = d[(i & LOW) >>> 3]! | (1 << (i & 7));
    this.deleted++;
  }

  /** Compares entry i's id (of prefix bucket b) with bytes 2..31 of `id`: <0, 0, >0. */
  compare(i: number, id: Uint8Array): number {
    const k = this.keys[i >>> BLOCK_BITS]!;
    const o = (i & LOW) * KEY_BYTES;
    for (let j = 0; j < KEY_BYTES; j++) {
      const d = k[o + j]! - id[j + 2]!;
      if (d !== 0) return d;
    }
    return 0;
  }

  /** The first entry whose id is not less than `id` (or greater, if `strict`). */
  lowerBound(id: Uint8Array, strict: boolean): number {
    let lo: number;
    let hi: number;
    if (this.fine) {
      const p = ((id[0]! << 16) | (id[1]! << 8) | id[2]!) >>> (24 - this.fineBits);
      lo = this.fine[p]!;
      hi = this.fine[p + 1]!;
    } else {
      const b = bucketOf(id);
      lo = this.dir[b]!;
      hi = this.dir[b + 1]!;
    }
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.compare(mid, id);
      if (c < 0 || (strict && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  find(id: Uint8Array): number {
    const i = this.lowerBound(id, false);
    return i < this.dir[bucketOf(id) + 1]! && this.compare(i, id) === 0 ? i : -1;
  }

  /** Builds the finer lookup directory of a large run (one pass over the third byte of each id). */
  index(): void {
    const bits = Math.min(24, Math.floor(Math.log2(Math.max(1, this.n / 8))));
    if (bits <= 16) return;
    const extra = bits - 16;
    const fine = new Uint32Array((1 << bits) + 1);
    for (let b = 0; b < BUCKETS; b++) {
      for (let i = this.dir[b]!; i < this.dir[b + 1]!; i++) {
        const third = this.keys[i >>> BLOCK_BITS]![(i & LOW) * KEY_BYTES]!;
        fine[((b << extra) | (third >>> (8 - extra))) + 1]++;
      }
    }
    for (let p = 0; p < 1 << bits; p++) fine[p + 1] = fine[p + 1]! + fine[p]!;
    this.fine = fine;
    this.fineBits = bits;
  }

  /** The prefix bucket of entry i. */
  bucketAt(i: number): number {
    let lo = 0;
    let hi = BUCKETS;
    // The last b with dir[b] <= i.
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.dir[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Writes entry i's full id into `out`. */
  idInto(i: number, bucket: number, out: Buffer): void {
    out[0] = bucket >>> 8;
    out[1] = bucket & 0xff;
    const k = this.keys[i >>> BLOCK_BITS]!;
    const o = (i & LOW) * KEY_BYTES;
    for (let j = 0; j < KEY_BYTES; j++) out[j + 2] = k[o + j]!;
  }

  /**
   * Releases the blocks wholly before entry i (the run is then unusable
   * there) into `pool`, so that a merge reuses them at once instead of
   * waiting for the garbage collector to free them.
   */
  releaseBefore(i: number, pool: BlockPool): void {
    for (let b = (i >>> BLOCK_BITS) - 1; b >= 0 && this.keys[b] !== RELEASED_KEYS; b--) {
      if (this.keys[b]!.length === BLOCK * KEY_BYTES) {
        pool.keys.push(this.keys[b]!);
        if (pool.width === this.width) pool.fields.push(this.fields[b]!);
        pool.dead.push(this.dead[b]!);
      }
      this.keys[b] = RELEASED_KEYS;
      this.fields[b] = RELEASED_FIELDS;
      this.dead[b] = RELEASED_DEAD;
    }
  }

  /** Cuts the last block to the entries it holds (reserve was given an upper bound of the total). */
  trim(): void {
    const last = this.keys.length - 1;
    if (last < 0) return;
    const count = this.n - last * BLOCK;
    if (this.keys[last]!.length === count * KEY_BYTES) return;
    this.keys[last] = Buffer.from(this.keys[last]!.subarray(0, count * KEY_BYTES));
    this.fields[last] = this.fields[last]!.slice(0, Math.ceil((count * this.width) / 32) + 1);
    this.dead[last] = this.dead[last]!.slice(0, Math.ceil(count / 8));
  }

  get bytes(): number {
    let n = this.dir.byteLength + (this.fine?.byteLength ?? 0);
    for (let b = 0; b < this.keys.length; b++) n += this.keys[b]!.byteLength + this.fields[b]!.byteLength + this.dead[b]!.byteLength;
    return n;
  }
}

/** Entries per block of the tail (small, so that a few appends cost little). */
const TAIL_BITS = 12;
const TAIL_BLOCK = 1 << TAIL_BITS;
const TAIL_LOW = TAIL_BLOCK - 1;

/**
 * Entries appended and not yet merged, in append order: full ids and the
 * three fields in blocks of typed arrays (no object per entry), and the
 * largest value of each field (the widths of the run they go to).
 */
class Tail {
  readonly ids: Buffer[] = [];
  readonly fields: Uint32Array[] = [];
  n = 0;
  max0 = 0;
  max1 = 0;
  max2 = 0;

  push(id: Uint8Array, f0: number, f1: number, f2: number): void {
    const i = this.n++;
    const low = i & TAIL_LOW;
    if (low === 0) {
      this.ids.push(Buffer.allocUnsafe(TAIL_BLOCK * ID_BYTES));
      this.fields.push(new Uint32Array(TAIL_BLOCK * 3));
    }
    const k = this.ids[i >>> TAIL_BITS]!;
    const o = low * ID_BYTES;
    for (let j = 0; j < ID_BYTES; j++) k[o + j] = id[j]!;
    const f = this.fields[i >>> TAIL_BITS]!;
    f[low * 3] = f0;
    f[low * 3 + 1] = f1;
    f[low * 3 + 2] = f2;
    if (f0 > this.max0) this.max0 = f0;
    if (f1 > this.max1) this.max1 = f1;
    if (f2 > this.max2) this.max2 = f2;
  }

  field(i: number, f: number): number {
    return this.fields[i >>> TAIL_BITS]![(i & TAIL_LOW) * 3 + f]!;
  }

  prefix16(i: number): number {
    const k = this.ids[i >>> TAIL_BITS]!;
    const o = (i & TAIL_LOW) * ID_BYTES;
    return (k[o]! << 8) | k[o + 1]!;
  }

  /** Compares the ids of entries x and y of the same two-byte prefix: <0, 0, >0. */
  compareIds(x: number, y: number): number {
    const a = this.ids[x >>> TAIL_BITS]!;
    const b = this.ids[y >>> TAIL_BITS]!;
    const oa = (x & TAIL_LOW) * ID_BYTES;
    const ob = (y & TAIL_LOW) * ID_BYTES;
    for (let j = 2; j < ID_BYTES; j++) {
      const d = a[oa + j]! - b[ob + j]!;
      if (d !== 0) return d;
    }
    return 0;
  }

  copyId(i: number, out: Buffer): void {
    const k = this.ids[i >>> TAIL_BITS]!;
    const o = (i & TAIL_LOW) * ID_BYTES;
    for (let j = 0; j < ID_BYTES; j++) out[j] = k[o + j]!;
  }

  get bytes(): number {
    return this.ids.length * TAIL_BLOCK * (ID_BYTES + 12);
  }
}

export class SortedIdMap {
  /**
   * `minDelta`: merge once the delta holds more than this many entries (and
   * 1/8 of the run); small in tests. `onDuplicate`: given each appended entry
   * whose id was present (or appended before it) when the tail is settled,
   * in append order, with the id in a buffer reused for the next call; it
   * must not call the map. `minTail`: the tail is settled by append itself
   * once it holds this many entries and as many as the run (small in tests).
   */
  constructor(
    private readonly minDelta = MIN_DELTA,
    private readonly onDuplicate?: (id: Buffer, f0: number, f1: number, f2: number) => void,
    private readonly minTail = MIN_TAIL,
  ) {}

  private run = new Run([1, 1, 1]);
  private delta = new IdMap(3);
  /** Entries appended since the last settle. */
  private tail = new Tail();
  /** Bumped by every merge. */
  private generation = 0;
  /** Open listings (merges wait for them, up to a limit). */
  private listing = 0;
  private readonly scratch = Buffer.alloc(ID_BYTES);
  private readonly out = Buffer.alloc(ID_BYTES);

  private bytesOf(id: string | Uint8Array): Uint8Array {
    if (typeof id !== 'string') return id;
    this.scratch.write(id, 0, ID_BYTES, 'hex');
    return this.scratch;
  }

  get size(): number {
    this.settle();
    return this.run.live + this.delta.size;
  }

  has(id: string | Uint8Array): boolean {
    this.settle();
    const b = this.bytesOf(id);
    const i = this.run.find(b);
    if (i >= 0 && !this.run.isDead(i)) return true;
    return this.delta.has(b);
  }

  /** The fields of an id, or undefined. */
  get(id: string | Uint8Array): [number, number, number] | undefined {
    this.settle();
    const b = this.bytesOf(id);
    const i = this.run.find(b);
    if (i >= 0 && !this.run.isDead(i)) return [this.run.field0(i), this.run.field1(i), this.run.field2(i)];
    const p = this.delta.find(b);
    return p < 0 ? undefined : [this.delta.field(p, 0), this.delta.field(p, 1), this.delta.field(p, 2)];
  }

  /** Adds an entry; false (and nothing changes) if the id is present. */
  add(id: string | Uint8Array, f0: number, f1: number, f2: number): boolean {
    this.settle();
    return this.insert(this.bytesOf(id), f0, f1, f2);
  }

  /**
   * Adds an entry as `add` does, without looking for its id: it goes to the
   * tail, settled at the next call of any other method (or `settle`). If the
   * id is then present (or was appended before), the entry is dropped and
   * handed to `onDuplicate`, as `add` would have returned false.
   */
  append(id: string | Uint8Array, f0: number, f1: number, f2: number): void {
    this.tail.push(this.bytesOf(id), f0, f1, f2);
    // A tail as large as the run is merged now: the index doubles per merge, so an entry is copied
    // about twice, and the peak stays the run plus a tail of at most its size (not the whole load).
    if (this.tail.n >= Math.max(this.minTail, this.run.live)) this.settle();
  }

  /**
   * Puts the appended entries in place: a tail that the delta can take (or
   * any, while a listing is open) entry by entry as by `add`, a larger one by
   * a sort and one merge with the run.
   */
  settle(): void {
    const t = this.tail;
    if (!t.n) return;
    this.tail = new Tail();
    if (this.listing || this.delta.size + t.n <= this.deltaLimit()) {
      const id = Buffer.alloc(ID_BYTES);
      for (let i = 0; i < t.n; i++) {
        t.copyId(i, id);
        const f0 = t.field(i, 0);
        const f1 = t.field(i, 1);
        const f2 = t.field(i, 2);
        if (!this.insert(id, f0, f1, f2)) this.onDuplicate?.(id, f0, f1, f2);
      }
      return;
    }
    // Delta entries were added before the tail's, so they win over them: merged first.
    if (this.delta.positionsUsed) this.merge();
    this.mergeTail(t);
  }

  private deltaLimit(): number {
    return Math.max(this.minDelta, Math.floor(this.run.live / DELTA_SHARE));
  }

  /** add() of a settled map. */
  private insert(b: Uint8Array, f0: number, f1: number, f2: number): boolean {
    const i = this.run.find(b);
    if (i >= 0 && !this.run.isDead(i)) return false;
    if (this.delta.add(b, f0, f1, f2) < 0) return false;
    const limit = this.deltaLimit();
    if (this.delta.size > (this.listing ? 4 * limit + 64 * this.minDelta : limit)) this.merge();
    return true;
  }

  delete(id: string | Uint8Array): boolean {
    this.settle();
    const b = this.bytesOf(id);
    const i = this.run.find(b);
    if (i >= 0 && !this.run.isDead(i)) {
      this.run.kill(i);
      return true;
    }
    return this.delta.delete(b);
  }

  /**
   * Every live entry, in no particular order: `fn(id, f0, f1, f2)` with the id
   * in a buffer reused for the next call. The map must not change meanwhile.
   */
  forEach(fn: (id: Buffer, f0: number, f1: number, f2: number) => void): void {
    this.settle();
    const r = this.run;
    let bucket = 0;
    for (let i = 0; i < r.n; i++) {
      while (r.dir[bucket + 1]! <= i) bucket++;
      if (r.isDead(i)) continue;
      r.idInto(i, bucket, this.out);
      fn(this.out, r.field0(i), r.field1(i), r.field2(i));
    }
    for (const p of this.delta.positions()) {
      this.out.set(this.delta.idBytes(p));
      fn(this.out, this.delta.field(p, 0), this.delta.field(p, 1), this.delta.field(p, 2));
    }
  }

  /** The fields of every live entry (no ids: cheaper than forEach). */
  forEachFields(fn: (f0: number, f1: number, f2: number) => void): void {
    this.settle();
    const r = this.run;
    for (let i = 0; i < r.n; i++) if (!r.isDead(i)) fn(r.field0(i), r.field1(i), r.field2(i));
    for (const p of this.delta.positions()) fn(this.delta.field(p, 0), this.delta.field(p, 1), this.delta.field(p, 2));
  }

  /**
   * Ids as hex strings: those of the run ascending, then the delta's. Entries
   * present from start to end are given once; ones added or deleted meanwhile
   * may or may not be.
   */
  *ids(): IterableIterator<string> {
    this.settle();
    if (this.delta.size && !this.listing) this.merge();
    this.listing++;
    try {
      let last: Buffer | undefined;
      let gen = this.generation;
      let i = 0;
      let bucket = 0;
      for (;;) {
        if (gen !== this.generation) {
          // A merge replaced the run: carry on after the last id given.
          gen = this.generation;
          i = last ? this.run.lowerBound(last, true) : 0;
          bucket = i < this.run.n ? this.run.bucketAt(i) : 0;
        }
        const r = this.run;
        if (i >= r.n) break;
        while (r.dir[bucket + 1]! <= i) bucket++;
        if (!r.isDead(i)) {
          r.idInto(i, bucket, this.out);
          last = Buffer.from(this.out);
          i++;
          yield last.toString('hex');
        } else i++;
      }
      const delta = this.delta;
      for (const p of delta.positions()) {
        if (delta !== this.delta) break;
        yield delta.idHex(p);
      }
    } finally {
      this.listing--;
    }
  }

  /** Up to `limit` ids greater than `after`, ascending. */
  page(after: string | undefined, limit: number): string[] {
    this.settle();
    if (after === undefined && this.delta.size && !this.listing) this.merge();
    const r = this.run;
    const out: string[] = [];
    let i = after === undefined ? 0 : r.lowerBound(Buffer.from(after, 'hex'), true);
    let bucket = i < r.n ? r.bucketAt(i) : 0;
    for (; i < r.n && out.length < limit; i++) {
      while (r.dir[bucket + 1]! <= i) bucket++;
      if (r.isDead(i)) continue;
      r.idInto(i, bucket, this.out);
      out.push(this.out.toString('hex'));
    }
    if (!this.delta.size) return out;
    const extra: string[] = [];
    for (const p of this.delta.positions()) {
      const id = this.delta.idHex(p);
      if (after === undefined || id > after) extra.push(id);
    }
    return [...out, ...extra].sort().slice(0, limit);
  }

  /** Merges the delta and drops deleted entries now, if there are any. */
  compact(): void {
    this.settle();
    if (this.delta.positionsUsed || this.run.deleted) this.merge();
  }

  /** Bytes of memory held (for measurements; an unsettled tail counts as it is). */
  get bytes(): number {
    return this.run.bytes + this.delta.bytes + this.tail.bytes;
  }

  /**
   * Merges a tail into a new run (the delta is empty): the tail sorted by id
   * (sortTail; equal ids in append order), then one streaming pass with the old run as in merge(). Of equal
   * ids the live entry of the run wins, then the one appended first; the
   * others go to onDuplicate, in append order, once the new run is in place.
   */
  private mergeTail(t: Tail): void {
    const n = t.n;
    const starts = new Uint32Array(BUCKETS + 1);
    const order = sortTail(t, starts);
    const old = this.run;
    const [w0, w1, w2] = old.live ? old.widths : [1, 1, 1];
    const run = new Run([Math.max(w0, bitsFor(t.max0)), Math.max(w1, bitsFor(t.max1)), Math.max(w2, bitsFor(t.max2))]);
    // At most this many entries (duplicates are found on the way): the last block is cut to size after.
    const total = old.live + n;
    const id = Buffer.alloc(ID_BYTES);
    const pool: BlockPool = { width: run.width, keys: [], fields: [], dead: [] };
    const dups: number[] = [];
    let i = 0;
    for (let b = 0; b < BUCKETS; b++) {
      run.dir[b] = run.n;
      const end = old.dir[b + 1]!;
      let prev = -1;
      for (let j = starts[b]!; j < starts[b + 1]!; j++) {
        const k = order[j]!;
        if (prev >= 0 && t.compareIds(prev, k) === 0) {
          dups.push(k);
          continue;
        }
        prev = k;
        t.copyId(k, id);
        for (; i < end; i++) {
          if (old.isDead(i)) continue;
          if (old.compare(i, id) >= 0) break;
          run.reserve(run.n, total, pool);
          run.appendFrom(old, i);
        }
        if (i < end && old.compare(i, id) === 0) {
          dups.push(k);
          continue;
        }
        run.reserve(run.n, total, pool);
        run.append(id, t.field(k, 0), t.field(k, 1), t.field(k, 2));
      }
      for (; i < end; i++) {
        if (old.isDead(i)) continue;
        run.reserve(run.n, total, pool);
        run.appendFrom(old, i);
      }
      old.releaseBefore(i, pool);
    }
    run.dir[BUCKETS] = run.n;
    run.trim();
    run.index();
    this.run = run;
    this.generation++;
    dups.sort((x, y) => x - y);
    for (const k of dups) {
      t.copyId(k, id);
      this.onDuplicate?.(id, t.field(k, 0), t.field(k, 1), t.field(k, 2));
    }
  }

  /** Merges the delta into a new run, streaming: the old run's blocks are released as they are passed. */
  private merge(): void {
    const old = this.run;
    const delta = this.delta;
    const { order, starts } = sortedByBucket(delta);
    let max0 = 0;
    let max1 = 0;
    let max2 = 0;
    for (const p of order) {
      max0 = Math.max(max0, delta.field(p, 0));
      max1 = Math.max(max1, delta.field(p, 1));
      max2 = Math.max(max2, delta.field(p, 2));
    }
    const [w0, w1, w2] = old.live ? old.widths : [1, 1, 1];
    const run = new Run([Math.max(w0, bitsFor(max0)), Math.max(w1, bitsFor(max1)), Math.max(w2, bitsFor(max2))]);
    const total = old.live + order.length;
    const dId = Buffer.alloc(ID_BYTES);
    const pool: BlockPool = { width: run.width, keys: [], fields: [], dead: [] };
    const copyOld = (i: number): void => {
      run.reserve(run.n, total, pool);
      run.appendFrom(old, i);
    };
    let i = 0;
    for (let b = 0; b < BUCKETS; b++) {
      run.dir[b] = run.n;
      const end = old.dir[b + 1]!;
      for (let j = starts[b]!; j < starts[b + 1]!; j++) {
        const dp = order[j]!;
        delta.copyId(dp, dId);
        for (; i < end && (old.isDead(i) || old.compare(i, dId) < 0); i++) if (!old.isDead(i)) copyOld(i);
        run.reserve(run.n, total, pool);
        run.append(dId, delta.field(dp, 0), delta.field(dp, 1), delta.field(dp, 2));
      }
      for (; i < end; i++) if (!old.isDead(i)) copyOld(i);
      old.releaseBefore(i, pool);
    }
    run.dir[BUCKETS] = run.n;
    run.index();
    this.run = run;
    this.delta = new IdMap(3);
    this.generation++;
  }
}

/**
 * The live positions of an IdMap sorted by id (a counting sort on the
 * two-byte prefix, then a sort within each), and where each prefix starts.
 */
function sortedByBucket(m: IdMap): { order: Uint32Array; starts: Uint32Array } {
  const starts = new Uint32Array(BUCKETS + 1);
  const used = m.positionsUsed;
  for (let p = 0; p < used; p++) if (m.isLive(p)) starts[m.prefix16(p) + 1]++;
  for (let b = 0; b < BUCKETS; b++) starts[b + 1] = starts[b + 1]! + starts[b]!;
  const next = starts.slice();
  const order = new Uint32Array(m.size);
  for (let p = 0; p < used; p++) if (m.isLive(p)) order[next[m.prefix16(p)]!++] = p;
  const cmp = (x: number, y: number) => m.comparePositions(x, y);
  for (let b = 0; b < BUCKETS; b++) {
    if (starts[b + 1]! - starts[b]! > 1) order.subarray(starts[b]!, starts[b + 1]!).sort(cmp);
  }
  return { order, starts };
}

/** Entries of a tail are numbered below 2^29 (with a 24-bit key, a sort value stays an exact double). */
const INDEX_BITS = 29;
const INDEX_SPAN = 2 ** INDEX_BITS;

/**
 * The entries of a tail sorted by id, equal ids in append order; `starts`
 * (BUCKETS + 1 entries, zero) gets where each two-byte prefix starts. A
 * counting sort on the prefix, then within each prefix a native numeric sort
 * of (bytes 2-4 of the id, entry number) as one double, then an insertion
 * sort of each run of equal bytes 2-4 (rare) on the rest of the id.
 */
function sortTail(t: Tail, starts: Uint32Array): Uint32Array {
  const n = t.n;
  if (n > INDEX_SPAN) throw new RangeError(`SortedIdMap: a tail of ${n} entries`);
  for (let k = 0; k < n; k++) starts[t.prefix16(k) + 1]++;
  for (let b = 0; b < BUCKETS; b++) starts[b + 1] = starts[b + 1]! + starts[b]!;
  const next = starts.slice();
  const keys = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const id = t.ids[k >>> TAIL_BITS]!;
    const o = (k & TAIL_LOW) * ID_BYTES;
    keys[next[(id[o]! << 8) | id[o + 1]!]!++] = ((id[o + 2]! << 16) | (id[o + 3]! << 8) | id[o + 4]!) * INDEX_SPAN + k;
  }
  for (let b = 0; b < BUCKETS; b++) {
    if (starts[b + 1]! - starts[b]! > 1) keys.subarray(starts[b]!, starts[b + 1]!).sort();
  }
  const order = new Uint32Array(n);
  for (let j = 0; j < n; j++) order[j] = keys[j]! % INDEX_SPAN;
  // Runs of entries of one prefix with equal bytes 2-4: in append order now, sorted on the whole id.
  for (let b = 0; b < BUCKETS; b++) {
    const end = starts[b + 1]!;
    for (let j = starts[b]! + 1; j < end; j++) {
      if (Math.floor(keys[j]! / INDEX_SPAN) !== Math.floor(keys[j - 1]! / INDEX_SPAN)) continue;
      let r = j - 1;
      while (j + 1 < end && Math.floor(keys[j + 1]! / INDEX_SPAN) === Math.floor(keys[r]! / INDEX_SPAN)) j++;
      // order[r..j] share bytes 0-4; insertion sort, stable (equal ids keep append order).
      for (let x = r + 1; x <= j; x++) {
        const v = order[x]!;
        let y = x - 1;
        while (y >= r && t.compareIds(order[y]!, v) > 0) {
          order[y + 1] = order[y]!;
          y--;
        }
        order[y + 1] = v;
      }
    }
  }
  return order;
}
