/**
 * The in-memory index of a local store's packs: where each tree and chunk
 * lives (pack, offset, length, digest). Built at open from the packs' own
 * indexes. A copy of an object can be deleted before its pack is rewritten:
 * a tombstone names the object and the pack, and hides that copy.
 */
import { isKind, type Kind } from '../format/version.js';

export interface Location {
  pack: string;
  offset: number;
  length: number;
  digest: Buffer;
  /** Set for objects in another live writer's journal: the journal's path. */
  journal?: string;
}

export interface IndexEntry extends Location {
  kind: Kind;
  id: string;
}

export const tombstoneKey = (kind: Kind, id: string, pack: string) => `${kind}-${id}-${pack}`;

const TOMBSTONE_KEY = /^([a-z]+)-([0-9a-f]{64})-([0-9a-f]{64})$/;

/** The copy a tombstone name (KIND-ID-PACK) hides; undefined for a name that does not fit. */
export function parseTombstoneKey(key: string): { kind: Kind; id: string; pack: string } | undefined {
  const m = TOMBSTONE_KEY.exec(key);
  return m && isKind(m[1]!) ? { kind: m[1], id: m[2]!, pack: m[3]! } : undefined;
}

export class PackIndex {
  private readonly byKind = new Map<Kind, Map<string, Location>>();
  /** Further copies of objects stored more than once (rare: concurrent writers). */
  private readonly copies = new Map<string, Location[]>();
  private readonly packs = new Set<string>();
  /** Bumped on every change, so sorted listings can be cached. */
  version = 0;

  private map(kind: Kind): Map<string, Location> {
    let m = this.byKind.get(kind);
    if (!m) {
      m = new Map();
      this.byKind.set(kind, m);
    }
    return m;
  }

  hasPack(pack: string): boolean {
    return this.packs.has(pack);
  }

  addPack(pack: string, entries: readonly Omit<IndexEntry, 'pack'>[], tombstones: ReadonlySet<string>): void {
    this.packs.add(pack);
    for (const e of entries) {
      if (tombstones.has(tombstoneKey(e.kind, e.id, pack))) continue;
      this.add({ ...e, pack });
    }
    this.version++;
  }

  add(e: IndexEntry): void {
    const loc: Location = { pack: e.pack, offset: e.offset, length: e.length, digest: e.digest };
    if (e.journal) loc.journal = e.journal;
    const m = this.map(e.kind);
    if (!m.has(e.id)) m.set(e.id, loc);
    else {
      const key = `${e.kind}/${e.id}`;
      const list = this.copies.get(key) ?? [];
      list.push(loc);
      this.copies.set(key, list);
    }
    this.version++;
  }

  get(kind: Kind, id: string): Location | undefined {
    return this.byKind.get(kind)?.get(id);
  }

  /** Removes every copy of an object; returns where they were. */
  remove(kind: Kind, id: string): Location[] {
    const first = this.byKind.get(kind)?.get(id);
    if (!first) return [];
    this.byKind.get(kind)!.delete(id);
    const key = `${kind}/${id}`;
    const more = this.copies.get(key) ?? [];
    this.copies.delete(key);
    this.version++;
    return [first, ...more];
  }

  /** Forgets the copies in one pack or journal (a journal that has become a pack). */
  forgetPack(pack: string, keys: Iterable<[Kind, string]>): void {
    for (const [kind, id] of keys) {
      const all = this.remove(kind, id);
      for (const loc of all) if (loc.pack !== pack) this.add({ kind, id, ...loc });
    }
    this.packs.delete(pack);
  }

  /** Hides one copy (a tombstone learnt from another process). */
  hide(kind: Kind, id: string, pack: string): void {
    const all = this.remove(kind, id);
    for (const loc of all) if (loc.pack !== pack) this.add({ kind, id, ...loc });
  }

  ids(kind: Kind): IterableIterator<string> {
    return this.map(kind).keys();
  }
}
