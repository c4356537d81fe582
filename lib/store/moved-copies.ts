/**
 * Copies deleted while a repack ran (format-spec/local-store.md section 5.1,
 * "Deletes during a repack"). A repacker may have read a record before its
 * tombstone existed and be copying it, byte for byte, into a new pack that
 * this process has not seen yet; its carry-over of the tombstone to the new
 * copy comes later. A delete that finds the repack lock held therefore
 * remembers the digests of the copies it deleted, and the store hides (and
 * tombstones) any copy it learns later with the same kind, id and digest: the
 * same bytes, which only a repacker's copy has (every envelope has a fresh
 * random nonce, README 4.4). A watch ends when the refresh that finds its
 * packs gone has loaded their replacements (written before the removal).
 */
import type { Kind } from '../format/version.js';

export class DeletedDuringRepack {
  /** "KIND/ID" -> the digests of the deleted copies and the packs they were in. */
  private readonly byKey = new Map<string, { digests: Buffer[]; packs: Set<string> }>();
  /** Pack -> the watched keys with a deleted copy in it. */
  private readonly byPack = new Map<string, Set<string>>();

  get size(): number {
    return this.byKey.size;
  }

  /** Watches for copies of the copy of an object in `pack`, whose bytes have this digest. */
  add(kind: Kind, id: string, pack: string, digest: Buffer): void {
    const key = `${kind}/${id}`;
    let w = this.byKey.get(key);
    if (!w) {
      w = { digests: [], packs: new Set() };
      this.byKey.set(key, w);
    }
    if (!w.digests.some((d) => d.equals(digest))) w.digests.push(digest);
    w.packs.add(pack);
    let keys = this.byPack.get(pack);
    if (!keys) {
      keys = new Set();
      this.byPack.set(pack, keys);
    }
    keys.add(key);
  }

  /** Whether copies of this object are watched (a digest decides whether one is a copy). */
  watches(kind: Kind, id: string): boolean {
    return this.byKey.has(`${kind}/${id}`);
  }

  /** Whether a copy with this digest is a copy of a deleted one. */
  matches(kind: Kind, id: string, digest: Buffer): boolean {
    return this.byKey.get(`${kind}/${id}`)?.digests.some((d) => d.equals(digest)) ?? false;
  }

  /** The packs are gone and their replacements loaded: their copies need no watching any more. */
  forgetPacks(packs: Iterable<string>): void {
    if (!this.byKey.size) return;
    for (const pack of packs) {
      const keys = this.byPack.get(pack);
      if (!keys) continue;
      this.byPack.delete(pack);
      for (const key of keys) {
        const w = this.byKey.get(key);
        if (!w) continue;
        w.packs.delete(pack);
        if (!w.packs.size) this.byKey.delete(key);
      }
    }
  }

  /**
   * The entries (of a pack or journal just learnt) that are copies of deleted
   * ones; `digestOf` gives an entry's digest (read from its record header
   * where the index that listed it has none), undefined if it cannot be read.
   */
  async copiesIn<E extends { kind: Kind; id: string; digest?: Buffer }>(entries: Iterable<E>, digestOf: (e: E) => Promise<Buffer | undefined>): Promise<E[]> {
    const out: E[] = [];
    if (!this.byKey.size) return out;
    for (const e of entries) {
      if (!this.watches(e.kind, e.id)) continue;
      const digest = e.digest ?? (await digestOf(e));
      if (digest && this.matches(e.kind, e.id, digest)) out.push(e);
    }
    return out;
  }
}
