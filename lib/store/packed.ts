/**
 * PackedStore: an ObjectStore on any blob backend (lib/blob/), in the blob
 * store layout (format-spec/local-store.md, sections 1-8 and 11):
 *
 *   obnam-store              marker
 *   config/ID keys/ID snapshots/ID ...   framed objects, one blob each (framing.ts)
 *   packs/XX/PACK            trees and chunks in packs (pack-format.ts)
 *   index/SEG                index segments: where the objects of some packs are
 *   deleted/KIND-ID-PACK     tombstones: this copy of a packed object is deleted
 *
 * Trees and chunks gather in a pack being filled (filling-pack.ts): in
 * memory, written as one blob when finished (S3), or, with a journal area
 * (journals.ts; the local directory store, local.ts), appended record by
 * record to a journal that becomes the pack. flush() resolves once every
 * object put before it is durable: by finishing the pack (group commit:
 * concurrent callers share one pack) or, with `journalFlush`, by syncing the
 * journal. A pack that fails to be written is kept and written again by the
 * next flush, which fails while any pack is still not written: an object put
 * is never forgotten and never acknowledged before it is durable.
 *
 * Several processes over one backend need no coordination beyond what the
 * backend gives: every pack and segment has a random name, a tombstone is an
 * empty blob, and a framed object's name is its id. Opening lists packs/ and
 * index/, reads the segments and reads the footer of only the packs no
 * segment covers (11.3); with journals, it first recovers the journals of
 * writers that died (J1), and other live writers' journals are read in place
 * (J2).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { BlobBackend } from '../blob/backend.js';
import { ObnamError, throwIfAborted } from '../errors.js';
import { sha256 } from '../crypto/hash.js';
import { isId } from '../format/ids.js';
import { isKind, Kind, KIND_CODE, KINDS } from '../format/version.js';
import { ownerAlive, ownerTag } from '../util/owner.js';
import { CompactPackIndex, PackedEntry, PackedLocation } from './compact-index.js';
import { FillingPack, MemoryPack } from './filling-pack.js';
import { frameHeader, unframe } from './framing.js';
import { DecodedSegmentPack, decodeSegment, encodeSegment } from './index-segment.js';
import type { PackJournals } from './journals.js';
import { pageOfListing } from './list-page.js';
import { FILE_DIRS, PACKED } from './local-layout.js';
import { ioError } from './localfs.js';
import { DeletedDuringRepack } from './moved-copies.js';
import { checkRecord, FOOTER_BYTES, indexLengthFromFooter, PACK_HEADER_BYTES, packRecords, parsePackIndex, RECORD_HEADER_BYTES } from './pack-format.js';
import { PackIndex, parseTombstoneKey, tombstoneKey } from './pack-index.js';
import { PackWriter } from './pack-writer.js';
import { RepackHost, repackStore, RepackWriter, tombstonesNaming } from './repack.js';
import type { ScrubProblem } from './local-scrub.js';
import type { ObjectStore, RepackOptions, RepackResult, StoreOptions } from './store.js';

export type { ScrubProblem } from './local-scrub.js';

export const BLOB_MARKER = 'obnam-store';
export const BLOB_MARKER_TEXT = 'obnam blob store 2\n';
export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
/** Uncovered packs found at open beyond which one segment for all is written. */
const MERGE_UNCOVERED = 16;
/** Segments beyond which they are merged at open. */
const MERGE_SEGMENTS = 32;
const READERS = 16;
/** Bytes a journal may hold in memory, waiting for its file, before put() waits. */
const MAX_BACKLOG = 8 * 1024 * 1024;
/** Packs being written at once before put() waits; packs that failed before put() fails. */
const MAX_SEALING = 2;
/** The repack lock blob (local-store.md 11.5): "HOST OWNER MS RANDOM". */
const REPACK_LOCK = 'repack-lock';
/** A repack lock of another host older than this is taken over (its owner cannot be asked whether it runs). */
const FOREIGN_LOCK_STALE_MS = 24 * 3600 * 1000;

export interface PackedStoreOptions {
  packSize?: number;
  /**
   * How stale has() may be about objects other processes stored: a has()
   * that finds nothing refreshes if the last refresh is older (get(),
   * digest() and listings always refresh on a miss). Default: never.
   */
  maxStaleMs?: number;
  /** The clock (tests). */
  now?: () => number;
  /** Where packs being filled are journaled (local-store.md 6); without, they are held in memory. */
  journals?: PackJournals;
  /**
   * With journals: flush() makes objects durable by syncing the open pack's
   * journal instead of finishing the pack (obnam-server, which flushes for
   * every request: otherwise each request would make a pack). Objects
   * flushed this way are visible to other processes through the journal
   * (J2) and become a pack at the target size or at close.
   */
  journalFlush?: boolean;
}

const isMissing = (e: unknown) => e instanceof ObnamError && e.code === 'NOT_FOUND';
export const packName = (pack: string) => `packs/${pack.slice(0, 2)}/${pack}`;
export const framedName = (kind: Kind, id: string) => `${FILE_DIRS[kind]}/${id}`;
const PACK_NAME = /^packs\/([0-9a-f]{2})\/([0-9a-f]{64})$/;
const SEGMENT_NAME = /^index\/([0-9a-f]{64})$/;
const keyOf = (kind: Kind, id: string) => `${kind}/${id}`;

/** Where a packed object is: in a finished pack, or (digest and file known) in another writer's journal. */
type Where = PackedLocation & { digest?: Buffer; journal?: string };

/** A pack that could not be written, kept to be written again (see the module comment). */
interface Retired {
  pack: FillingPack;
  error: unknown;
}

/**
 * The packed store's workings, on a backend given by a subclass: PackedStore
 * (any blob backend, the blob store layout) and LocalStore (local.ts: a local
 * directory, with journals).
 */
export class PackedStoreBase implements ObjectStore {
  readonly location: string;
  /** Where each tree and chunk in a finished pack is (compact: no digests, see compact-index.ts). */
  protected readonly index = new CompactPackIndex();
  private readonly packSize: number;
  private readonly maxStaleMs: number;
  private readonly now: () => number;
  protected readonly journals?: PackJournals;
  private readonly journalFlush: boolean;
  private current?: FillingPack;
  /** Objects not yet in a finished pack: the pack being filled or written that holds each. */
  private readonly unsealed = new Map<string, FillingPack>();
  /** Packs being written (the promises never reject: a failure retires the pack). */
  private readonly sealing = new Map<FillingPack, Promise<void>>();
  private retrying?: Promise<void>;
  private readonly retired = new Map<FillingPack, Retired>();
  /** Journals this process writes (never read as another writer's). */
  private readonly ownJournals = new Set<string>();
  private readonly tombstones = new Set<string>();
  /** Copies deleted while a repack ran: a repacker's copy of one is hidden too (moved-copies.ts). */
  private readonly moved = new DeletedDuringRepack();
  /** Segments read (name -> the packs it covers). */
  private readonly segments = new Map<string, Set<string>>();
  /** Packs no segment covers (read by their footer, or written by this process). */
  private readonly uncovered = new Set<string>();
  /** Objects in other live writers' journals (few: at most a pack's worth per writer), with digests. */
  private readonly journalIndex = new PackIndex();
  /** Other live writers' journals read so far: file -> pack, bytes parsed, objects. */
  private readonly journalsSeen = new Map<string, { pack: string; parsed: number; keys: [Kind, string][] }>();
  private refreshing?: Promise<void>;
  private lastRefresh = 0;

  protected constructor(
    readonly backend: BlobBackend,
    opts: PackedStoreOptions,
  ) {
    this.location = backend.location;
    this.packSize = opts.packSize ?? DEFAULT_PACK_SIZE;
    this.maxStaleMs = opts.maxStaleMs ?? Infinity;
    this.now = opts.now ?? Date.now;
    this.journals = opts.journals;
    this.journalFlush = !!opts.journals && !!opts.journalFlush;
  }

  /** Recovers dead writers' journals (J1), loads the index, removes stale temporary files (J3). */
  protected async load(): Promise<void> {
    if (this.journals) {
      for (const j of await this.journals.list()) {
        if (j.alive) continue;
        try {
          await this.journals.recover(j.file, j.pack);
        } catch (e) {
          throw new ObnamError('IO', `cannot recover pack journal ${j.file}: ${(e as Error).message}`);
        }
      }
    }
    await this.refresh();
    // The index as read: one sorted run, no delta (compact-index.ts).
    this.index.compact();
    await this.journals?.removeStale(this.now());
  }

  private checkId(kind: Kind, id: string): void {
    if (!isKind(kind)) throw new ObnamError('NOT_FOUND', `unknown object kind ${JSON.stringify(kind)}`);
    if (!isId(id)) throw new ObnamError('NOT_FOUND', `invalid object id ${JSON.stringify(String(id).slice(0, 80))}`);
  }

  /** Whether a packed object is known: in a finished pack, being filled or written, or in another writer's journal. */
  private knows(kind: Kind, id: string): boolean {
    return this.index.has(kind, id) || this.unsealed.has(keyOf(kind, id)) || this.journalIndex.get(kind, id) !== undefined;
  }

  /** Where a packed object is, without refreshing. */
  protected where(kind: Kind, id: string): Where | undefined {
    return this.index.get(kind, id) ?? this.journalIndex.get(kind, id);
  }

  async put(kind: Kind, id: string, data: Uint8Array, opts: StoreOptions & { sha256?: Uint8Array } = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    this.checkId(kind, id);
    const digest = sha256(data);
    if (opts.sha256 && !digest.equals(Buffer.from(opts.sha256))) {
      throw new ObnamError('CORRUPT', `${kind} ${id}: received bytes do not match the sender's SHA-256 digest`);
    }
    if (!PACKED.has(kind)) return this.backend.put(framedName(kind, id), [frameHeader(digest), data], opts);
    if (this.knows(kind, id)) return false;
    // Packs that could not be written hold memory (or a full disk): stop taking more.
    if (this.retired.size > MAX_SEALING) throw [...this.retired.values()][0]!.error;
    const p = (this.current ??= this.newFilling());
    p.add(kind, id, data, digest);
    this.unsealed.set(keyOf(kind, id), p);
    // Back-pressure: do not let bytes waiting for the disk pile up in memory.
    if (p instanceof PackWriter && p.backlog > MAX_BACKLOG) await p.drained().catch(() => undefined);
    if (p.size >= this.packSize) {
      this.startSeal();
      while (this.sealing.size > MAX_SEALING) await Promise.race(this.sealing.values());
    }
    return true;
  }

  private newFilling(): FillingPack {
    if (!this.journals) return new MemoryPack();
    const w = this.journals.start();
    this.ownJournals.add(w.tmpPath);
    return w;
  }

  /** Starts writing the pack being filled (in the background; flush() waits for it). */
  private startSeal(): void {
    const p = this.current;
    if (!p || p.empty) return;
    this.current = undefined;
    const done = this.writePack(p).then(
      (size) => this.packWritten(p, p.entries, size),
      (e: unknown) => this.packFailed(p, e),
    );
    this.sealing.set(p, done);
    void done.finally(() => this.sealing.delete(p));
  }

  /** Writes a finished pack under its final name; resolves with its size once durable. */
  private async writePack(p: FillingPack): Promise<number> {
    if (p instanceof PackWriter) return this.journals!.publish(p);
    const { parts, size } = (p as MemoryPack).bytes();
    await this.backend.put(packName(p.id), parts, { unique: true });
    return size;
  }

  /** A pack is durable under its final name: its objects move to the index. */
  private packWritten(p: FillingPack, entries: readonly PackedEntry[], size: number | undefined): void {
    if (p instanceof PackWriter) this.ownJournals.delete(p.tmpPath);
    if (size !== undefined) {
      // Entries deleted while the pack was being filled have tombstones naming it.
      this.index.addPack(p.id, entries, this.tombstones, size);
      this.uncovered.add(p.id);
    }
    for (const e of p.entries) {
      const key = keyOf(e.kind, e.id);
      if (this.unsealed.get(key) === p) this.unsealed.delete(key);
    }
  }

  /**
   * A pack could not be written (a full disk, an unreachable endpoint): it
   * is kept, its objects stay readable, and the next flush writes it again.
   */
  private packFailed(p: FillingPack, e: unknown): void {
    if (this.current === p) this.current = undefined;
    if (!this.retired.has(p)) this.retired.set(p, { pack: p, error: ioError(e, `cannot write pack ${p.id}`) });
  }

  /**
   * Writes the retired packs again. A memory pack is written whole; a
   * journal is finished from its intact records (as J1 would), and the
   * objects whose records did not reach it are put again into the pack
   * being filled, from the journal writer's memory.
   */
  private retryRetired(): Promise<void> {
    this.retrying ??= this.writeRetired().finally(() => (this.retrying = undefined));
    return this.retrying;
  }

  private async writeRetired(): Promise<void> {
    for (const [p, r] of [...this.retired]) {
      try {
        if (!(p instanceof PackWriter)) {
          this.packWritten(p, p.entries, await this.writePack(p));
        } else {
          await p.drained().catch(() => undefined);
          const intact = new Set((await this.journals!.recordsFrom(p.tmpPath, PACK_HEADER_BYTES) ?? []).map((e) => `${keyOf(e.kind, e.id)}@${e.offset}`));
          const again: { kind: Kind; id: string; data: Uint8Array; digest: Buffer }[] = [];
          for (const e of p.entries) {
            if (intact.has(`${keyOf(e.kind, e.id)}@${e.offset}`) || this.unsealed.get(keyOf(e.kind, e.id)) !== p) continue;
            const held = await p.lookup(e.kind, e.id).catch(() => undefined);
            // Never put again bytes that do not match (a record that did not reach the file whole).
            if (held && sha256(held.data).equals(held.digest)) again.push({ kind: e.kind, id: e.id, ...held });
          }
          // A journal that is gone (its file never got its header) holds nothing: all is put again.
          const { entries, size } = intact.size ? await this.journals!.recover(p.tmpPath, p.id) : { entries: [], size: undefined };
          if (!intact.size) await this.journals!.discard(p);
          await p.abandon();
          this.packWritten(p, entries, size);
          for (const o of again) {
            if (this.index.has(o.kind, o.id)) continue;
            const c = (this.current ??= this.newFilling());
            c.add(o.kind, o.id, o.data, o.digest);
            this.unsealed.set(keyOf(o.kind, o.id), c);
          }
        }
        this.retired.delete(p);
      } catch (e) {
        r.error = ioError(e, `cannot write pack ${p.id}`);
      }
    }
  }

  /** Throws the error of a pack that is still not written (see the module comment). */
  private throwIfRetired(): void {
    const r = this.retired.values().next().value as Retired | undefined;
    if (r) throw r.error;
  }

  /**
   * Resolves once every object put before the call is durable. Group commit:
   * while packs are being written, objects of concurrent callers gather in
   * the pack being filled; then one of them writes it for all. (A server
   * acknowledges every upload only after a flush: without this, each request
   * would make a pack of its own.) A flush waits only for the packs that hold
   * objects put before it, however busy the store is.
   */
  async flush(): Promise<void> {
    if (this.retired.size) await this.retryRetired();
    const inFlight = [...this.sealing.values()];
    if (this.journalFlush) {
      const w = this.current as PackWriter | undefined;
      try {
        await w?.sync();
      } catch (e) {
        // The journal cannot take more (a full disk): later puts go to a new one; this one is
        // finished from what reached it, and the rest put again, at the next flush.
        if (w) this.packFailed(w, e);
        throw ioError(e, 'cannot write pack journal');
      }
      await Promise.all(inFlight);
    } else {
      const mine = this.current;
      await Promise.all(inFlight);
      // Unless another caller has started writing it meanwhile.
      if (mine && this.current === mine) this.startSeal();
      const own = mine && this.sealing.get(mine);
      if (own) await own;
    }
    this.throwIfRetired();
  }

  /** Finishes the pack being filled, so that other processes see its objects as a pack. */
  async seal(): Promise<void> {
    if (this.retired.size) await this.retryRetired();
    this.startSeal();
    while (this.sealing.size) await Promise.all(this.sealing.values());
    this.throwIfRetired();
  }

  /** A packed object not yet in a finished pack (its digest checked: a journal is read back from disk). */
  private async pending(kind: Kind, id: string): Promise<{ data: Uint8Array; digest: Buffer } | undefined> {
    const p = this.unsealed.get(keyOf(kind, id));
    const got = await p?.lookup(kind, id);
    if (got && p instanceof PackWriter && !sha256(got.data).equals(got.digest)) {
      throw new ObnamError('CORRUPT', `${kind} ${id}: stored bytes do not match their SHA-256 digest`);
    }
    return got;
  }

  async get(kind: Kind, id: string, opts: StoreOptions = {}): Promise<Uint8Array> {
    return (await this.getWithDigest(kind, id, opts)).data;
  }

  /** The bytes and the SHA-256 the store keeps for them (checked). */
  async getWithDigest(kind: Kind, id: string, opts: StoreOptions = {}): Promise<{ data: Uint8Array; digest: Buffer }> {
    throwIfAborted(opts.signal);
    this.checkId(kind, id);
    if (!PACKED.has(kind)) {
      const { data, digest } = unframe(await this.backend.get(framedName(kind, id), undefined, opts), `${kind} ${id}`);
      return { data, digest: Buffer.from(digest) };
    }
    const p = await this.pending(kind, id);
    if (p) return p;
    return this.readFresh(kind, id, true, opts);
  }

  /** Reads a packed object's record; if its pack vanished (repacked), refreshes and tries once more (14.8). */
  private async readFresh(kind: Kind, id: string, withData: boolean, opts: StoreOptions = {}): Promise<{ data: Buffer; digest: Buffer }> {
    try {
      return await this.readRecord(kind, id, await this.locateFresh(kind, id), withData, opts);
    } catch (e) {
      if (!isMissing(e)) throw e;
      await this.refresh();
      const loc = this.where(kind, id);
      if (!loc) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      return this.readRecord(kind, id, loc, withData, opts);
    }
  }

  /** Where an object is, refreshing once if it is not known. */
  private async locateFresh(kind: Kind, id: string): Promise<Where> {
    let loc = this.where(kind, id);
    if (!loc) {
      await this.refresh();
      loc = this.where(kind, id);
    }
    if (!loc) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
    return loc;
  }

  /** Reads a record header (and the bytes, if `withData`); CORRUPT if it does not fit the index or its digest. */
  private async readRecord(kind: Kind, id: string, loc: Where, withData: boolean, opts: StoreOptions = {}): Promise<{ data: Buffer; digest: Buffer }> {
    const what = `${kind} ${id}`;
    if (loc.journal) {
      // In another live writer's journal (J2): the index has the digest; the bytes are read in place.
      if (!withData) return { data: Buffer.alloc(0), digest: loc.digest! };
      const data = await this.journals!.read(loc.journal, loc.offset, loc.length);
      if (!sha256(data).equals(loc.digest!)) throw new ObnamError('CORRUPT', `${what}: stored bytes do not match their SHA-256 digest`);
      return { data, digest: loc.digest! };
    }
    let bytes: Buffer;
    try {
      bytes = await this.backend.get(
        packName(loc.pack),
        { offset: loc.offset - RECORD_HEADER_BYTES, length: RECORD_HEADER_BYTES + (withData ? loc.length : 0) },
        opts,
      );
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') throw new ObnamError('NOT_FOUND', `${what} not found (its pack is gone)`);
      if (e instanceof ObnamError && e.code === 'CORRUPT') throw new ObnamError('CORRUPT', `${what}: pack ${loc.pack} is truncated`);
      throw e;
    }
    return checkRecord(bytes, kind, id, loc.length, withData, what, loc.pack);
  }

  /**
   * Many objects in order, within a byte budget: neighbours in one pack (a gap
   * of at most 1 MiB) are read with one ranged read, up to 8 reads at once.
   */
  async getManyWithDigest(
    kind: Kind,
    ids: readonly string[],
    budget: number,
  ): Promise<({ data: Uint8Array; digest: Buffer } | { missing: true } | { damaged: true } | { later: true })[]> {
    type R = { data: Uint8Array; digest: Buffer } | { missing: true } | { damaged: true } | { later: true };
    const out: R[] = new Array(ids.length);
    if (!isKind(kind) || !PACKED.has(kind)) {
      for (const [i, id] of ids.entries()) {
        if (budget <= 0) out[i] = { later: true };
        else out[i] = await this.getWithDigest(kind, id).then(
          (r) => ((budget -= r.data.length), r),
          (e: unknown) => (e instanceof ObnamError && e.code === 'CORRUPT' ? { damaged: true as const } : isMissing(e) ? { missing: true as const } : Promise.reject(e)),
        );
      }
      return out;
    }
    if (ids.some((id) => isId(id) && !this.knows(kind, id))) await this.refresh();
    const runs: { pack: string; from: number; to: number; items: { i: number; loc: PackedLocation }[] }[] = [];
    for (const [i, id] of ids.entries()) {
      const p = isId(id) ? await this.pending(kind, id).catch(() => 'damaged' as const) : undefined;
      const loc = isId(id) ? this.where(kind, id) : undefined;
      if (budget <= 0) out[i] = { later: true };
      else if (p === 'damaged') out[i] = { damaged: true };
      else if (p) {
        out[i] = p;
        budget -= p.data.length;
      } else if (!loc) out[i] = { missing: true };
      else if (loc.journal) {
        budget -= loc.length;
        out[i] = await this.readRecord(kind, id, loc, true).catch((e: unknown) => (isMissing(e) ? this.readFresh(kind, id, true) : Promise.reject(e))).catch((e: unknown) => (isMissing(e) ? { missing: true as const } : { damaged: true as const }));
      } else {
        budget -= loc.length;
        const from = loc.offset - RECORD_HEADER_BYTES;
        const last = runs[runs.length - 1];
        if (last && last.pack === loc.pack && from >= last.from && from - last.to <= 1 << 20) {
          last.to = Math.max(last.to, loc.offset + loc.length);
          last.items.push({ i, loc });
        } else runs.push({ pack: loc.pack, from, to: loc.offset + loc.length, items: [{ i, loc }] });
      }
    }
    await this.parallel(runs, async (run) => {
      let bytes: Buffer | undefined;
      try {
        bytes = await this.backend.get(packName(run.pack), { offset: run.from, length: run.to - run.from });
      } catch (e) {
        if (!(e instanceof ObnamError && (e.code === 'NOT_FOUND' || e.code === 'CORRUPT'))) throw e;
      }
      for (const { i, loc } of run.items) {
        const id = ids[i]!;
        if (!bytes) {
          // The pack is gone (repacked: look again) or short: read each on its own for the exact answer.
          out[i] = await this.readFresh(kind, id, true).catch((e: unknown) => (isMissing(e) ? { missing: true as const } : { damaged: true as const }));
          continue;
        }
        const rec = bytes.subarray(loc.offset - RECORD_HEADER_BYTES - run.from, loc.offset + loc.length - run.from);
        const digest = Buffer.from(rec.subarray(37, RECORD_HEADER_BYTES));
        const data = rec.subarray(RECORD_HEADER_BYTES);
        const ok = rec[0] === KIND_CODE[kind] && rec.toString('hex', 1, 33) === id && rec.readUInt32BE(33) === loc.length && sha256(data).equals(digest);
        out[i] = ok ? { data, digest } : { damaged: true };
      }
    }, 8);
    return out;
  }

  /** The SHA-256 the store keeps for an object (one small read for a packed one). */
  async digest(kind: Kind, id: string, opts: StoreOptions = {}): Promise<Buffer> {
    this.checkId(kind, id);
    if (!PACKED.has(kind)) return (await this.getWithDigest(kind, id, opts)).digest;
    const p = this.unsealed.get(keyOf(kind, id))?.digestOf(kind, id);
    if (p) return p;
    return (await this.readFresh(kind, id, false, opts)).digest;
  }

  async has(kind: Kind, id: string, opts: StoreOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    if (!isKind(kind) || !isId(id)) return false;
    if (!PACKED.has(kind)) return (await this.backend.stat(framedName(kind, id), opts)) !== undefined;
    if (this.knows(kind, id)) return true;
    if (this.now() - this.lastRefresh > this.maxStaleMs) {
      await this.refresh();
      return this.knows(kind, id);
    }
    return false;
  }

  async hasMany(kind: Kind, ids: readonly string[], opts: StoreOptions = {}): Promise<boolean[]> {
    if (!PACKED.has(kind)) return Promise.all(ids.map((id) => this.has(kind, id, opts)));
    const known = (id: string) => isKind(kind) && isId(id) && this.knows(kind, id);
    if (ids.some((id) => !known(id)) && this.now() - this.lastRefresh > this.maxStaleMs) await this.refresh();
    return ids.map(known);
  }

  /** Ids of packed objects not in a finished pack: this process's pending ones and other writers' journals (few). */
  private unfinishedIds(kind: Kind): string[] {
    const prefix = `${kind}/`;
    const out: string[] = [];
    for (const key of this.unsealed.keys()) if (key.startsWith(prefix)) out.push(key.slice(prefix.length));
    for (const id of this.journalIndex.ids(kind)) out.push(id);
    return [...new Set(out)].filter((id) => !this.index.has(kind, id));
  }

  async *list(kind: Kind, opts: StoreOptions = {}): AsyncIterable<string> {
    throwIfAborted(opts.signal);
    if (!PACKED.has(kind)) {
      for await (const b of this.backend.list(`${FILE_DIRS[kind]}/`, opts)) {
        const id = b.name.slice(FILE_DIRS[kind]!.length + 1);
        if (isId(id)) yield id;
      }
      return;
    }
    await this.refresh();
    // Streamed from the compact index: no string per stored object is kept (a repository may
    // hold millions); only the few unfinished ones are.
    const extra = this.unfinishedIds(kind);
    yield* extra;
    for (const id of this.index.ids(kind)) yield id;
  }

  /**
   * Up to `limit` ids of `kind` greater than `after`, ascending (resumable
   * listings). A listing that starts (no `after`) refreshes and sees every
   * object acknowledged before it, by any process.
   */
  async listPage(kind: Kind, after: string | undefined, limit: number): Promise<string[]> {
    if (!PACKED.has(kind)) return pageOfListing(this.list(kind), after, limit);
    if (after === undefined) await this.refresh();
    const out = this.index.page(kind, after, limit);
    const extra = this.unfinishedIds(kind).filter((id) => after === undefined || id > after);
    if (!extra.length) return out;
    return [...new Set([...out, ...extra])].sort().slice(0, limit);
  }

  async delete(kind: Kind, id: string, opts: StoreOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    this.checkId(kind, id);
    if (!PACKED.has(kind)) {
      if (!(await this.backend.delete(framedName(kind, id), opts))) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      return;
    }
    if (!this.knows(kind, id)) await this.refresh();
    const key = keyOf(kind, id);
    for (let round = 0; round < 2; round++) {
      const finished = this.index.remove(kind, id);
      const packs = [...finished.map((l) => l.pack), ...this.journalIndex.remove(kind, id).map((l) => l.pack)];
      const filling = this.unsealed.get(key);
      if (round === 0 && !packs.length && !filling) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      if (filling) packs.push(filling.id);
      this.unsealed.delete(key);
      for (const pack of new Set(packs)) {
        const t = tombstoneKey(kind, id, pack);
        this.tombstones.add(t);
        await this.backend.put(`deleted/${t}`, new Uint8Array(0), opts);
      }
      // A pack removed meanwhile by a repack elsewhere: the object may have a new copy that our tombstone
      // does not hide; learn it and hide it too (local-store.md 5.1).
      if (!(await this.needsRefreshAfterDelete(kind, id, finished, opts))) return;
      await this.refresh();
      if (!this.knows(kind, id)) return;
    }
  }

  /**
   * After a delete's tombstones are durable (local-store.md 5.1 and 11.5):
   * if a repack holds the lock, the digests of the deleted copies are watched
   * (a repacker may be copying them into a pack this process has not seen);
   * returns true if one of their packs is gone (repacked meanwhile). The lock
   * first: a repack that copied a record before its tombstone holds the lock
   * from before the tombstone until after it removed the record's pack.
   */
  private async needsRefreshAfterDelete(kind: Kind, id: string, copies: readonly PackedLocation[], opts: StoreOptions): Promise<boolean> {
    if (!copies.length) return false;
    const repacking = (await this.backend.stat(REPACK_LOCK, opts)) !== undefined;
    let vanished = false;
    for (const loc of copies) {
      if (!repacking) {
        if ((await this.backend.stat(packName(loc.pack), opts)) === undefined) vanished = true;
        continue;
      }
      try {
        // The record header gives the digest and proves the pack is still there, in one request.
        this.moved.add(kind, id, loc.pack, (await this.readRecord(kind, id, loc, false, opts)).digest);
      } catch (e) {
        if (isMissing(e)) vanished = true;
        else if (!(e instanceof ObnamError && e.code === 'CORRUPT')) throw e;
      }
    }
    return vanished;
  }

  /**
   * Before a pack or journal of another process (or of this process's
   * repack) is indexed: tombstones its copies of objects deleted while a
   * repack ran (moved-copies.ts), so that they stay hidden. Best effort in the
   * backend (the repacker carries the tombstone over too); hidden in memory
   * regardless.
   */
  private async hideMovedCopies(pack: string, entries: Iterable<PackedEntry & { digest?: Buffer }>): Promise<void> {
    const copies = await this.moved.copiesIn(entries, (e) =>
      this.readRecord(e.kind, e.id, { pack, offset: e.offset, length: e.length }, false).then(
        (r) => r.digest,
        () => undefined,
      ),
    );
    for (const e of copies) {
      const key = tombstoneKey(e.kind, e.id, pack);
      if (this.tombstones.has(key)) continue;
      this.tombstones.add(key);
      await this.backend.put(`deleted/${key}`, new Uint8Array(0)).catch(() => undefined);
    }
  }

  /** Learns packs, segments, tombstones and journals written since the last look (by any process). */
  refresh(): Promise<void> {
    this.refreshing ??= this.loadNew().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Learns the tombstones not seen yet, hiding the copies they name. */
  private async loadTombstones(): Promise<void> {
    for await (const b of this.backend.list('deleted/')) {
      const key = b.name.slice('deleted/'.length);
      const t = b.name.startsWith('deleted/') ? parseTombstoneKey(key) : undefined;
      if (t && !this.tombstones.has(key)) {
        this.tombstones.add(key);
        this.index.hide(t.kind, t.id, t.pack);
        this.journalIndex.hide(t.kind, t.id, t.pack);
      }
    }
  }

  private async listPacks(): Promise<Map<string, number>> {
    const listed = new Map<string, number>();
    for await (const b of this.backend.list('packs/')) {
      const m = PACK_NAME.exec(b.name);
      if (m && m[2]!.startsWith(m[1]!)) listed.set(m[2]!, b.size);
    }
    return listed;
  }

  private async loadNew(): Promise<void> {
    const started = this.now();
    await this.loadTombstones();
    // Journals before packs: a journal that becomes a pack after this look is in the pack listing.
    const live = this.journals ? await this.journals.list() : [];
    // Packs known before the listing (packs this process writes meanwhile are not in the listing).
    const known = new Set(this.index.packs());
    let listed = await this.listPacks();
    const gone = () => [...known].filter((p) => !listed.has(p));
    // A repacker writes its new packs before it removes the old ones (14.8): a listing that starts after a
    // removal was seen also lists their replacements.
    if (gone().length) listed = await this.listPacks();
    const newSegments: string[] = [];
    for await (const b of this.backend.list('index/')) if (SEGMENT_NAME.test(b.name) && !this.segments.has(b.name)) newSegments.push(b.name);
    const learned = new Set<string>();
    await this.parallel(newSegments, async (name) => {
      let packs: Map<string, DecodedSegmentPack>;
      try {
        packs = decodeSegment(await this.backend.get(name), name);
      } catch (e) {
        // Removed meanwhile by a merge, or damaged: its packs are read by their footers.
        if (e instanceof ObnamError && (e.code === 'NOT_FOUND' || e.code === 'CORRUPT')) return;
        throw e;
      }
      this.segments.set(name, new Set(packs.keys()));
      for (const [pack, { size, entries }] of packs) {
        // A listed pack of another size is not the one described (truncated): its footer decides.
        if (listed.get(pack) !== size) continue;
        this.uncovered.delete(pack);
        if (this.index.hasPack(pack)) continue;
        await this.hideMovedCopies(pack, entries);
        if (!this.index.hasPack(pack)) {
          learned.add(pack);
          this.index.addPack(pack, entries, this.tombstones, size);
        }
      }
    });
    const todo = [...listed.keys()].filter((p) => !this.index.hasPack(p));
    await this.parallel(todo, async (pack) => {
      let entries: PackedEntry[] = [];
      try {
        entries = await this.readFooter(pack, listed.get(pack)!);
      } catch (e) {
        // A damaged pack index hides that pack's objects; fsck reports them missing, scrub names the pack.
        if (!(e instanceof ObnamError && (e.code === 'CORRUPT' || e.code === 'NOT_FOUND'))) throw e;
      }
      await this.hideMovedCopies(pack, entries);
      if (this.index.hasPack(pack)) return;
      learned.add(pack);
      this.index.addPack(pack, entries, this.tombstones, entries.length ? listed.get(pack) : undefined);
      if (entries.length) this.uncovered.add(pack);
    });
    // Which copy of an object stored twice is used must not depend on which read answered first (11.5).
    this.index.settleCopies(learned);
    // Packs removed by repacking elsewhere.
    const removed = gone();
    this.index.forgetPacks(new Set(removed));
    // Their replacements were written before they were removed, so they are loaded by now.
    this.moved.forgetPacks(removed);
    for (const pack of removed) this.uncovered.delete(pack);
    if (this.journals) await this.loadJournals(live);
    this.lastRefresh = started;
  }

  /**
   * Other live writers' journals (J2): their new intact records become
   * visible; journals that are gone (finished as packs, loaded above, or
   * abandoned) are forgotten.
   */
  private async loadJournals(live: readonly { pack: string; file: string; alive: boolean }[]): Promise<void> {
    const present = new Set(live.map((j) => j.file));
    for (const [file, seen] of this.journalsSeen) {
      if (!present.has(file) || this.index.hasPack(seen.pack)) {
        this.journalIndex.forgetPack(seen.pack, seen.keys);
        this.journalsSeen.delete(file);
      }
    }
    for (const { pack, file, alive } of live) {
      if (!alive || this.ownJournals.has(file) || this.index.hasPack(pack)) continue;
      const seen = this.journalsSeen.get(file) ?? { pack, parsed: PACK_HEADER_BYTES, keys: [] };
      const entries = await this.journals!.recordsFrom(file, seen.parsed);
      if (!entries) continue; // finished meanwhile: its pack shows up at the next refresh
      await this.hideMovedCopies(pack, entries);
      for (const e of entries) {
        seen.parsed = e.offset + e.length;
        if (this.tombstones.has(tombstoneKey(e.kind, e.id, pack))) continue;
        this.journalIndex.add({ ...e, pack, journal: file });
        seen.keys.push([e.kind, e.id]);
      }
      this.journalsSeen.set(file, seen);
    }
  }

  private async parallel<T>(items: T[], fn: (x: T) => Promise<void>, width = READERS): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < items.length) await fn(items[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  }

  private async readFooter(pack: string, size: number): Promise<PackedEntry[]> {
    const name = packName(pack);
    if (size < FOOTER_BYTES) throw new ObnamError('CORRUPT', `pack ${pack} is truncated`);
    const footer = await this.backend.get(name, { offset: size - FOOTER_BYTES, length: FOOTER_BYTES });
    const len = indexLengthFromFooter(footer, `pack ${pack}`) + FOOTER_BYTES;
    if (len > size) throw new ObnamError('CORRUPT', `pack ${pack} is truncated`);
    const tail = len === FOOTER_BYTES ? footer : await this.backend.get(name, { offset: size - len, length: len });
    return parsePackIndex(tail, size, `pack ${pack}`);
  }

  /** Writes one segment for these packs (from the index in memory); returns its name. */
  protected async writeSegment(packs: ReadonlySet<string>): Promise<string | undefined> {
    const entries = this.index.segmentOf(packs);
    if (!entries.size) return undefined;
    const name = `index/${randomBytes(32).toString('hex')}`;
    await this.backend.put(name, encodeSegment(entries), { unique: true });
    this.segments.set(name, new Set(entries.keys()));
    for (const p of entries.keys()) this.uncovered.delete(p);
    return name;
  }

  /**
   * At open: if many packs are uncovered or there are many segments, writes one
   * segment for every pack and then removes the segments it replaces. Safe with
   * concurrent processes doing the same: every valid segment is correct.
   */
  protected async compactSegments(): Promise<void> {
    if (this.uncovered.size <= MERGE_UNCOVERED && this.segments.size <= MERGE_SEGMENTS) return;
    try {
      const old = [...this.segments.keys()];
      const all = new Set(this.index.packs());
      const merged = await this.writeSegment(all);
      if (!merged) return;
      for (const name of old) {
        const packs = this.segments.get(name)!;
        if ([...packs].every((p) => all.has(p) || !this.index.hasPack(p))) {
          await this.backend.delete(name);
          this.segments.delete(name);
        }
      }
    } catch {
      // Best effort (a full or read-only disk, a passing endpoint failure): footers remain the fallback.
    }
  }

  // ---- repacking (format-spec 14.8, repack.ts) ----

  /** The packs this store knows, with their live objects. */
  packEntries(packs?: ReadonlySet<string>): Map<string, PackedEntry[]> {
    return this.index.entriesOf(packs ?? new Set(this.index.packs()));
  }

  /**
   * Removes a pack whose live objects all have copies elsewhere (a repacker
   * has written them to new packs and flushed). NOT_FOUND if unknown.
   */
  async removePack(pack: string): Promise<void> {
    if (!this.index.hasPack(pack)) throw new ObnamError('NOT_FOUND', `pack ${pack} not found`);
    this.index.forgetPack(pack);
    this.uncovered.delete(pack);
    await this.backend.delete(packName(pack));
  }

  /** Rewrites packs with unused space (format-spec 14.8; repack.ts). Needs no repository key. */
  repack(opts: RepackOptions): Promise<RepackResult> {
    return repackStore(this.repackHost(), opts);
  }

  /**
   * The repack lock: blob `repack-lock` ("HOST OWNER MS"), put if absent. One
   * of this host whose owner no longer runs, or of another host older than a
   * day, is taken over.
   */
  /** What the repack lock says of its holder (11.5): "HOST OWNER MS RANDOM". */
  protected lockText(): string {
    return `${hostname()} ${ownerTag()} ${this.now()} ${randomBytes(6).toString('hex')}`;
  }

  private async repackLock(): Promise<() => Promise<void>> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const mine = this.lockText();
      if (await this.backend.put(REPACK_LOCK, Buffer.from(mine))) {
        // Without atomic creation a concurrent put may have won whole: the blob says who holds it.
        const now = this.backend.atomicCreate ? mine : (await this.backend.get(REPACK_LOCK).catch(() => Buffer.alloc(0))).toString();
        if (now === mine) {
          return async () => {
            const still = (await this.backend.get(REPACK_LOCK).catch(() => Buffer.alloc(0))).toString();
            if (still === mine) await this.backend.delete(REPACK_LOCK).catch(() => undefined);
          };
        }
      }
      let holder: string;
      try {
        holder = (await this.backend.get(REPACK_LOCK)).toString();
      } catch (e) {
        if (isMissing(e)) continue; // released meanwhile
        throw e;
      }
      // A local store's lock holds only the owner tag (local-store.md 5.1): a process of this host.
      const fields = holder.trim().split(' ');
      const [host, owner, ms] = fields.length === 1 ? [hostname(), fields[0], '0'] : fields;
      const stale = host === hostname() ? !ownerAlive(owner ?? '') : this.now() - Number(ms) > FOREIGN_LOCK_STALE_MS;
      if (!stale) throw new ObnamError('CONFLICT', `another repack of ${this.location} is running (${host}, process ${owner?.split('-')[0]}); try again when it has finished`);
      const again = (await this.backend.get(REPACK_LOCK).catch(() => Buffer.alloc(0))).toString();
      if (again === holder) await this.backend.delete(REPACK_LOCK);
    }
    throw new ObnamError('CONFLICT', `cannot lock ${this.location} for repacking: another process keeps taking the lock`);
  }

  private repackHost(): RepackHost {
    return {
      packSize: this.packSize,
      lock: () => this.repackLock(),
      refresh: () => this.refresh(),
      usage: () => this.index.usage(),
      liveRecords: async (pack) => {
        const size = this.index.sizeOf(pack);
        if (size === undefined) return undefined;
        let entries;
        try {
          entries = await this.readFooter(pack, size);
        } catch (e) {
          if (e instanceof ObnamError && (e.code === 'CORRUPT' || e.code === 'NOT_FOUND')) return undefined;
          throw e;
        }
        return (entries as (PackedEntry & { digest: Buffer })[])
          .filter((e) => {
            const l = this.index.get(e.kind, e.id);
            return l?.pack === pack && l.offset === e.offset && l.length === e.length;
          })
          .sort((a, b) => a.offset - b.offset);
      },
      read: (pack, offset, length) => this.backend.get(packName(pack), { offset, length }),
      newPack: () => (this.journals ? this.journalRepackWriter(this.journals) : this.memoryRepackWriter()),
      writeSegment: async (packs) => {
        await this.writeSegment(new Set([...packs].filter((p) => this.index.hasPack(p)))).catch(() => undefined);
      },
      locations: (kind, id) => this.index.locations(kind, id),
      tombstonesNaming: async (packs) => {
        await this.loadTombstones();
        return tombstonesNaming(this.tombstones, packs);
      },
      tombstone: async (t) => {
        const key = tombstoneKey(t.kind, t.id, t.pack);
        if (this.tombstones.has(key)) return;
        this.tombstones.add(key);
        await this.backend.put(`deleted/${key}`, new Uint8Array(0));
        this.index.hide(t.kind, t.id, t.pack);
      },
      removePacks: async (packs) => {
        for (const p of packs) await this.backend.delete(packName(p));
        this.index.forgetPacks(packs);
        this.moved.forgetPacks(packs);
        for (const p of packs) this.uncovered.delete(p);
      },
      done: () => this.index.compact(),
      removeTombstones: async (ts) => {
        for (const t of ts) {
          const key = tombstoneKey(t.kind, t.id, t.pack);
          await this.backend.delete(`deleted/${key}`);
          this.tombstones.delete(key);
        }
      },
    };
  }

  /** A repack's new pack, held in memory and written as one blob. */
  private memoryRepackWriter(): RepackWriter {
    const b = new MemoryPack();
    return {
      get size() {
        return b.size;
      },
      get count() {
        return b.entries.length;
      },
      add: async (kind, id, data, digest) => b.add(kind, id, data, digest),
      finish: async () => {
        const size = await this.writePack(b);
        await this.hideMovedCopies(b.id, b.entries);
        this.index.addPack(b.id, b.entries, this.tombstones, size);
        this.uncovered.add(b.id);
        return { pack: b.id, size };
      },
      abandon: async () => undefined,
    };
  }

  /** A repack's new pack, appended to a journal as it is filled (never whole in memory). */
  private journalRepackWriter(journals: PackJournals): RepackWriter {
    const w = journals.start();
    this.ownJournals.add(w.tmpPath);
    const drop = async () => {
      await journals.discard(w);
      this.ownJournals.delete(w.tmpPath);
    };
    return {
      get size() {
        return w.size;
      },
      get count() {
        return w.entries.length;
      },
      add: async (kind, id, data, digest) => {
        w.add(kind, id, data, digest);
        if (w.backlog > MAX_BACKLOG) await w.drained();
      },
      finish: async () => {
        let size: number;
        try {
          size = await journals.publish(w);
        } catch (e) {
          await drop().catch(() => undefined);
          throw ioError(e, `cannot write pack ${w.id}`);
        }
        this.ownJournals.delete(w.tmpPath);
        await this.hideMovedCopies(w.id, w.entries);
        this.index.addPack(w.id, w.entries, this.tombstones, size);
        this.uncovered.add(w.id);
        return { pack: w.id, size };
      },
      abandon: drop,
    };
  }

  /** Index memory (bytes) and object count, for measurements. */
  indexStats(): { bytes: number; objects: number; packs: number; segments: number } {
    return { bytes: this.index.bytes, objects: this.index.objects, packs: this.index.packCount, segments: this.segments.size };
  }

  /** Checks every stored byte against its digest, without any repository key. */
  async *scrub(): AsyncGenerator<ScrubProblem> {
    await this.flush();
    for (const kind of KINDS) {
      if (PACKED.has(kind)) continue;
      for await (const b of this.backend.list(`${FILE_DIRS[kind]}/`)) {
        const id = b.name.slice(FILE_DIRS[kind]!.length + 1);
        if (!isId(id)) continue;
        try {
          unframe(await this.backend.get(b.name), `${kind} ${id}`);
        } catch (e) {
          if (e instanceof ObnamError && e.code === 'NOT_FOUND') continue;
          yield { kind, id, file: b.name, message: (e as Error).message };
        }
      }
    }
    for await (const b of this.backend.list('packs/')) {
      const m = PACK_NAME.exec(b.name);
      if (!m) continue;
      let bytes: Buffer;
      try {
        bytes = await this.backend.get(b.name);
      } catch (e) {
        yield { file: b.name, message: `cannot read pack: ${(e as Error).message}` };
        continue;
      }
      try {
        const tail = bytes.subarray(bytes.length - indexLengthFromFooter(bytes.subarray(bytes.length - FOOTER_BYTES), `pack ${m[2]}`) - FOOTER_BYTES);
        parsePackIndex(tail, bytes.length, `pack ${m[2]}`);
      } catch (e) {
        yield { file: b.name, message: (e as Error).message };
      }
      try {
        for (const r of packRecords(bytes, `pack ${m[2]}`)) {
          if (!sha256(r.data).equals(r.digest)) yield { kind: r.kind, id: r.id, file: b.name, message: `${r.kind} ${r.id}: stored bytes do not match their SHA-256 digest` };
        }
      } catch (e) {
        yield { file: b.name, message: (e as Error).message };
      }
    }
    for await (const b of this.backend.list('index/')) {
      if (!SEGMENT_NAME.test(b.name)) continue;
      try {
        decodeSegment(await this.backend.get(b.name), b.name);
      } catch (e) {
        if (!(e instanceof ObnamError && e.code === 'NOT_FOUND')) yield { file: b.name, message: (e as Error).message };
      }
    }
  }

  /** Flushes, writes a segment for the packs no segment covers yet, and releases the backend. */
  async close(): Promise<void> {
    try {
      await this.seal();
      // A segment for the packs no segment covers yet, so the next open need not read their footers.
      if (this.uncovered.size) await this.writeSegment(new Set(this.uncovered)).catch(() => undefined);
    } finally {
      await this.backend.close();
    }
  }
}

/** A packed store on any blob backend, in the blob store layout (section 11). */
export class PackedStore extends PackedStoreBase {
  private constructor(backend: BlobBackend, opts: PackedStoreOptions) {
    super(backend, opts);
  }

  /** Writes the marker (idempotent) and opens the store. */
  static async create(backend: BlobBackend, opts: PackedStoreOptions = {}): Promise<PackedStore> {
    await backend.put(BLOB_MARKER, Buffer.from(BLOB_MARKER_TEXT));
    return PackedStore.open(backend, opts);
  }

  /** Opens a store; NO_REPOSITORY without a marker, UNSUPPORTED_VERSION for another layout. */
  static async open(backend: BlobBackend, opts: PackedStoreOptions = {}): Promise<PackedStore> {
    let marker: string;
    try {
      marker = (await backend.get(BLOB_MARKER)).toString('utf8');
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') throw new ObnamError('NO_REPOSITORY', `no obnam store at ${backend.location}`);
      throw e;
    }
    if (marker !== BLOB_MARKER_TEXT) {
      throw new ObnamError('UNSUPPORTED_VERSION', `${backend.location} holds an obnam store layout this version does not know`);
    }
    const store = new PackedStore(backend, opts);
    await store.load();
    await store.compactSegments();
    return store;
  }

  static async exists(backend: BlobBackend): Promise<boolean> {
    return (await backend.stat(BLOB_MARKER)) !== undefined;
  }
}
