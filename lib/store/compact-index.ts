/**
 * CompactPackIndex: where each tree and chunk of a packed store lives (pack,
 * offset, length), kept in SortedIdMaps (lib/util/sorted-id-map.ts): per
 * object 30 bytes of id and the three fields bit-packed (about 36 bytes at
 * 200,000 objects, 38 at a terabyte's object count), no strings or objects. Digests are not kept in
 * memory: they sit in the record header just before each object's bytes
 * (pack-format.ts), which a read fetches with the object. Copies of an
 * object in more than one pack (concurrent writers) are rare and kept in a
 * small side table so a delete covers them all; tombstones hide one copy.
 */
import type { Kind } from '../format/version.js';
import { SortedIdMap } from '../util/sorted-id-map.js';
import { tombstoneKey } from './pack-index.js';

export interface PackedLocation {
  pack: string;
  offset: number;
  length: number;
}

export interface PackedEntry {
  kind: Kind;
  id: string;
  offset: number;
  length: number;
}

export class CompactPackIndex {
  private readonly byKind = new Map<Kind, SortedIdMap>();
  private readonly packIds: string[] = [];
  private readonly packNo = new Map<string, number>();
  /** Each pack's file size, where known (index segments record it). */
  private readonly sizes: number[] = [];
  private readonly copies = new Map<string, PackedLocation[]>();

  private map(kind: Kind): SortedIdMap {
    let m = this.byKind.get(kind);
    if (!m) {
      // Appended entries whose id is indexed already are further copies (addPack).
      m = new SortedIdMap(undefined, (id, n, offset, length) => this.addCopy(kind, id.toString('hex'), this.packIds[n]!, offset, length));
      this.byKind.set(kind, m);
    }
    return m;
  }

  hasPack(pack: string): boolean {
    return this.packNo.has(pack);
  }

  get packCount(): number {
    return this.packNo.size;
  }

  packs(): IterableIterator<string> {
    return this.packNo.keys();
  }

  private numberOf(pack: string): number {
    let n = this.packNo.get(pack);
    if (n === undefined) {
      n = this.packIds.length;
      this.packIds.push(pack);
      this.packNo.set(pack, n);
    }
    return n;
  }

  /**
   * Adds a pack's entries, except copies that tombstones hide; `size`: the
   * pack's size in bytes, if known. The entries are appended to the id maps
   * without a search (SortedIdMap.append), so that opening a large index is
   * one sort and merge; an entry whose id is indexed already (or added
   * before it) becomes a further copy when the map settles, as if it had
   * been added one at a time. Whatever reads `copies` settles the maps first.
   */
  addPack(pack: string, entries: Iterable<PackedEntry>, tombstones: ReadonlySet<string>, size?: number): void {
    const n = this.numberOf(pack);
    if (size !== undefined) this.sizes[n] = size;
    const hidden = tombstones.size !== 0;
    for (const e of entries) {
      if (hidden && tombstones.has(tombstoneKey(e.kind, e.id, pack))) continue;
      this.map(e.kind).append(e.id, n, e.offset, e.length);
    }
  }

  /** Records a further copy of an object (after the one reads use). */
  private addCopy(kind: Kind, id: string, pack: string, offset: number, length: number): void {
    const key = `${kind}/${id}`;
    const list = this.copies.get(key) ?? [];
    list.push({ pack, offset, length });
    this.copies.set(key, list);
  }

  /** Puts every appended entry in place, so that `copies` is complete. */
  private settle(): void {
    for (const m of this.byKind.values()) m.settle();
  }

  sizeOf(pack: string): number | undefined {
    const n = this.packNo.get(pack);
    return n === undefined ? undefined : this.sizes[n];
  }

  get(kind: Kind, id: string): PackedLocation | undefined {
    const f = this.byKind.get(kind)?.get(id);
    return f && { pack: this.packIds[f[0]]!, offset: f[1], length: f[2] };
  }

  has(kind: Kind, id: string): boolean {
    return this.byKind.get(kind)?.has(id) ?? false;
  }

  /** Removes every copy of an object; returns where they were. */
  remove(kind: Kind, id: string): PackedLocation[] {
    const first = this.get(kind, id);
    if (!first) return [];
    this.byKind.get(kind)!.delete(id);
    const key = `${kind}/${id}`;
    const more = this.copies.get(key) ?? [];
    this.copies.delete(key);
    return [first, ...more];
  }

  /** Hides the copy in one pack (a tombstone learnt from another process). */
  hide(kind: Kind, id: string, pack: string): void {
    const all = this.remove(kind, id);
    for (const loc of all) if (loc.pack !== pack) this.addPack(loc.pack, [{ kind, id, offset: loc.offset, length: loc.length }], new Set());
  }

  /**
   * Of an object stored in more than one pack (a killed repack leaves such
   * duplicates), reads use the copy indexed first. For objects whose copy in
   * use is in one of `learned` (the packs a refresh just indexed), that
   * becomes the copy in the pack whose id sorts first: the choice then
   * depends on the packs alone, not on the order in which parallel reads
   * indexed them or on which segment described them, so processes that open
   * the same packs use the same copies (local-store.md 11.5). A copy in use
   * from a pack known before stays.
   */
  settleCopies(learned: ReadonlySet<string>): void {
    if (!learned.size) return;
    this.settle();
    for (const [key, more] of [...this.copies]) {
      const cut = key.indexOf('/');
      const kind = key.slice(0, cut) as Kind;
      const id = key.slice(cut + 1);
      const first = this.get(kind, id);
      if (!first || !learned.has(first.pack)) continue;
      const least = more.reduce((a, b) => (b.pack < a.pack ? b : a), first);
      if (least === first) continue;
      this.remove(kind, id);
      for (const l of [least, first, ...more.filter((x) => x !== least)]) this.addPack(l.pack, [{ kind, id, offset: l.offset, length: l.length }], new Set());
    }
  }

  /** Forgets a pack (removed by repacking): its copies disappear, other copies stay. */
  forgetPack(pack: string): void {
    this.forgetPacks(new Set([pack]));
  }

  /** Forgets packs (removed by repacking), in one pass over the index: their copies disappear, other copies stay. */
  forgetPacks(packs: ReadonlySet<string>): void {
    const nums = new Set<number>();
    for (const p of packs) {
      const n = this.packNo.get(p);
      if (n !== undefined) nums.add(n);
    }
    if (!nums.size) return;
    this.settle();
    for (const [key, locs] of this.copies) {
      const rest = locs.filter((l) => !packs.has(l.pack));
      if (rest.length === locs.length) continue;
      if (rest.length) this.copies.set(key, rest);
      else this.copies.delete(key);
    }
    for (const [kind, m] of this.byKind) {
      const hit: string[] = [];
      m.forEach((id, pack) => nums.has(pack) && hit.push(id.toString('hex')));
      for (const id of hit) {
        m.delete(id);
        // Another copy, if any, takes its place.
        const key = `${kind}/${id}`;
        const more = this.copies.get(key);
        if (!more?.length) continue;
        const [first, ...rest] = more;
        m.add(id, this.numberOf(first!.pack), first!.offset, first!.length);
        if (rest.length) this.copies.set(key, rest);
        else this.copies.delete(key);
      }
    }
    for (const p of packs) this.packNo.delete(p);
  }

  /** Merges recent additions and drops deleted entries (after repacking, and once an open has read the index). */
  compact(): void {
    for (const m of this.byKind.values()) m.compact();
  }

  /** Every copy of an object (the one reads use first). */
  locations(kind: Kind, id: string): PackedLocation[] {
    const first = this.get(kind, id);
    if (!first) return [];
    return [first, ...(this.copies.get(`${kind}/${id}`) ?? [])];
  }

  /**
   * Per pack of known size: the records it serves (each object counts in the
   * one pack reads use, so other copies and hidden copies are unused space).
   * One pass over the index; for repacking (format-spec 14.8).
   */
  usage(): { pack: string; size: number; liveCount: number; liveBytes: number }[] {
    const count = new Float64Array(this.packIds.length);
    const bytes = new Float64Array(this.packIds.length);
    for (const m of this.byKind.values()) {
      m.forEachFields((n, _offset, length) => {
        count[n] = count[n]! + 1;
        bytes[n] = bytes[n]! + length;
      });
    }
    const out: { pack: string; size: number; liveCount: number; liveBytes: number }[] = [];
    for (const [pack, n] of this.packNo) {
      const size = this.sizes[n];
      if (size !== undefined) out.push({ pack, size, liveCount: count[n]!, liveBytes: bytes[n]! });
    }
    return out;
  }

  /**
   * Up to `limit` ids of `kind` greater than `after`, ascending, found by id
   * (so entries added, moved or deleted meanwhile do not disturb a listing):
   * every listing sees at least what the index held when it started and
   * still holds.
   */
  page(kind: Kind, after: string | undefined, limit: number): string[] {
    return this.byKind.get(kind)?.page(after, limit) ?? [];
  }

  /** Ids of a kind, as hex strings, streamed. */
  *ids(kind: Kind): IterableIterator<string> {
    const m = this.byKind.get(kind);
    if (m) yield* m.ids();
  }

  /** The entries of these packs, in one pass over the index (for index segments and repacking). */
  entriesOf(packs: ReadonlySet<string>): Map<string, PackedEntry[]> {
    this.settle();
    const out = new Map<string, PackedEntry[]>();
    const wanted = new Map<number, PackedEntry[]>();
    for (const pack of packs) {
      const n = this.packNo.get(pack);
      if (n === undefined) continue;
      const list: PackedEntry[] = [];
      out.set(pack, list);
      wanted.set(n, list);
    }
    for (const [kind, m] of this.byKind) {
      m.forEach((id, pack, offset, length) => {
        const list = wanted.get(pack);
        list?.push({ kind, id: id.toString('hex'), offset, length });
      });
    }
    for (const [key, locs] of this.copies) {
      const cut = key.indexOf('/');
      for (const l of locs) out.get(l.pack)?.push({ kind: key.slice(0, cut) as Kind, id: key.slice(cut + 1), offset: l.offset, length: l.length });
    }
    return out;
  }

  /** What an index segment records for these packs: those of known size, with their entries. */
  segmentOf(packs: ReadonlySet<string>): Map<string, { size: number; entries: PackedEntry[] }> {
    const sized = new Set([...packs].filter((p) => this.sizeOf(p) !== undefined));
    const out = new Map<string, { size: number; entries: PackedEntry[] }>();
    for (const [pack, entries] of this.entriesOf(sized)) out.set(pack, { size: this.sizeOf(pack)!, entries });
    return out;
  }

  /** Memory held by the id maps (for measurements). */
  get bytes(): number {
    let n = 0;
    for (const m of this.byKind.values()) n += m.bytes;
    return n;
  }

  get objects(): number {
    let n = 0;
    for (const m of this.byKind.values()) n += m.size;
    return n;
  }
}
