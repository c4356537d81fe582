/**
 * PackedStore: an ObjectStore on any blob backend (lib/blob/), in the blob
 * store layout (format-spec/local-store.md, section 11):
 *
 *   obnam-store              marker
 *   config/ID keys/ID snapshots/ID   framed objects, one blob each (framing.ts)
 *   packs/XX/PACK            trees and chunks in packs (pack-format.ts)
 *   index/SEG                index segments: where the objects of some packs are
 *   deleted/KIND-ID-PACK     tombstones: this copy of a packed object is deleted
 *
 * put() gathers trees and chunks in an in-memory pack; flush() writes it as
 * one blob (group commit: concurrent callers share one pack) and resolves once
 * it is durable in the backend. Nothing is acknowledged before that, so
 * several processes over one backend need no coordination beyond what the
 * backend gives: every pack and segment has a random name, a tombstone is an
 * empty blob, and a framed object's name is its id.
 *
 * Opening lists packs/ and index/, reads the segments and reads the footer of
 * only the packs no segment covers. Segments are written when a store closes
 * (for the packs it wrote) and at open when many packs were uncovered (one
 * segment for all, replacing the ones it covers). Rule: a segment is valid if
 * its digest matches; its entries count only for packs that are listed, so a
 * pack removed by repacking (repack hooks below) drops out by itself.
 */
import { randomBytes } from 'node:crypto';
import type { BlobBackend } from '../blob/backend.js';
import { ObnamError, throwIfAborted } from '../errors.js';
import { sha256 } from '../crypto/hash.js';
import { isId } from '../format/ids.js';
import { isKind, Kind, KINDS } from '../format/version.js';
import { CompactPackIndex, PackedEntry, PackedLocation } from './compact-index.js';
import { frameHeader, unframe } from './framing.js';
import { DeletedDuringRepack } from './moved-copies.js';
import { DecodedSegmentPack, decodeSegment, encodeSegment } from './index-segment.js';
import { FILE_DIRS, PACKED } from './local-layout.js';
import {
  FOOTER_BYTES,
  indexLengthFromFooter,
  PACK_HEADER_BYTES,
  packHeader,
  packRecords,
  packTrailer,
  parsePackIndex,
  RECORD_HEADER_BYTES,
  recordHeader,
} from './pack-format.js';
import { parseTombstoneKey, tombstoneKey } from './pack-index.js';
import { pageOfListing } from './list-page.js';
import { hostname } from 'node:os';
import { ownerAlive, ownerTag } from '../util/owner.js';
import { RepackHost, repackStore, RepackWriter, tombstonesNaming } from './repack.js';
import type { ObjectStore, RepackOptions, RepackResult, StoreOptions } from './store.js';
import { KIND_CODE } from '../format/version.js';

export const BLOB_MARKER = 'obnam-store';
export const BLOB_MARKER_TEXT = 'obnam blob store 2\n';
export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
/** Uncovered packs found at open beyond which one segment for all is written. */
const MERGE_UNCOVERED = 16;
/** Segments beyond which they are merged at open. */
const MERGE_SEGMENTS = 32;
const READERS = 16;
/** The repack lock blob (local-store.md 11.5): "HOST OWNER MS". */
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
}

export type { ScrubProblem } from './local-scrub.js';
import type { ScrubProblem } from './local-scrub.js';

const isMissing = (e: unknown) => e instanceof ObnamError && e.code === 'NOT_FOUND';
const packName = (pack: string) => `packs/${pack.slice(0, 2)}/${pack}`;
const framedName = (kind: Kind, id: string) => `${FILE_DIRS[kind]}/${id}`;
const PACK_NAME = /^packs\/([0-9a-f]{2})\/([0-9a-f]{64})$/;
const SEGMENT_NAME = /^index\/([0-9a-f]{64})$/;

/** A pack being filled in memory. */
class PackBuilder {
  readonly id = randomBytes(32).toString('hex');
  readonly parts: Uint8Array[] = [packHeader()];
  readonly entries: (PackedEntry & { digest: Buffer })[] = [];
  readonly byKey = new Map<string, { data: Uint8Array; digest: Buffer }>();
  size = PACK_HEADER_BYTES;
  /** Settles once the pack is durable (or failed). */
  sealed?: Promise<void>;

  add(kind: Kind, id: string, data: Uint8Array, digest: Buffer): void {
    this.parts.push(recordHeader(kind, id, data.length, digest), data);
    this.entries.push({ kind, id, offset: this.size + RECORD_HEADER_BYTES, length: data.length, digest });
    this.byKey.set(`${kind}/${id}`, { data, digest });
    this.size += RECORD_HEADER_BYTES + data.length;
  }
}

export class PackedStore implements ObjectStore {
  readonly location: string;
  private readonly index = new CompactPackIndex();
  private readonly packSize: number;
  private readonly maxStaleMs: number;
  private readonly now: () => number;
  private current?: PackBuilder;
  /** Builders whose pack is being written. */
  private readonly sealing = new Set<PackBuilder>();
  private readonly tombstones = new Set<string>();
  /** Copies deleted while a repack ran: a repacker's copy of one is hidden too (moved-copies.ts). */
  private readonly moved = new DeletedDuringRepack();
  /** Segments read (name -> the packs it covers). */
  private readonly segments = new Map<string, Set<string>>();
  /** Packs no segment covers (read by their footer, or written by this process). */
  private readonly uncovered = new Set<string>();
  private refreshing?: Promise<void>;
  private lastRefresh = 0;

  private constructor(
    readonly backend: BlobBackend,
    opts: PackedStoreOptions,
  ) {
    this.location = backend.location;
    this.packSize = opts.packSize ?? DEFAULT_PACK_SIZE;
    this.maxStaleMs = opts.maxStaleMs ?? Infinity;
    this.now = opts.now ?? Date.now;
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
    await store.refresh();
    // The index as read: one sorted run, no delta (compact-index.ts).
    store.index.compact();
    await store.compactSegments();
    return store;
  }

  static async exists(backend: BlobBackend): Promise<boolean> {
    return (await backend.stat(BLOB_MARKER)) !== undefined;
  }

  private checkId(kind: Kind, id: string): void {
    if (!isKind(kind)) throw new ObnamError('NOT_FOUND', `unknown object kind ${JSON.stringify(kind)}`);
    if (!isId(id)) throw new ObnamError('NOT_FOUND', `invalid object id ${JSON.stringify(String(id).slice(0, 80))}`);
  }

  private pending(kind: Kind, id: string): { data: Uint8Array; digest: Buffer } | undefined {
    const key = `${kind}/${id}`;
    const c = this.current?.byKey.get(key);
    if (c) return c;
    for (const b of this.sealing) {
      const x = b.byKey.get(key);
      if (x) return x;
    }
    return undefined;
  }

  async put(kind: Kind, id: string, data: Uint8Array, opts: StoreOptions & { sha256?: Uint8Array } = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    this.checkId(kind, id);
    const digest = sha256(data);
    if (opts.sha256 && !digest.equals(Buffer.from(opts.sha256))) {
      throw new ObnamError('CORRUPT', `${kind} ${id}: received bytes do not match the sender's SHA-256 digest`);
    }
    if (!PACKED.has(kind)) {
      const created = await this.backend.put(framedName(kind, id), [frameHeader(digest), data], opts);
      return created;
    }
    if (this.index.has(kind, id) || this.pending(kind, id)) return false;
    const b = (this.current ??= new PackBuilder());
    b.add(kind, id, data, digest);
    if (b.size >= this.packSize) {
      this.startSeal();
      // Back-pressure: at most a few packs in flight.
      while (this.sealing.size > 2) await Promise.race([...this.sealing].map((x) => x.sealed!.catch(() => undefined)));
    }
    return true;
  }

  /** Starts writing the current pack. */
  private startSeal(): void {
    const b = this.current;
    if (!b || !b.entries.length) return;
    this.current = undefined;
    this.sealing.add(b);
    b.sealed = (async () => {
      try {
        const trailer = packTrailer(b.entries);
        await this.backend.put(packName(b.id), [...b.parts, trailer], { unique: true });
        this.index.addPack(b.id, b.entries, this.tombstones, b.size + trailer.length);
        this.uncovered.add(b.id);
      } finally {
        // On failure the pack's objects are forgotten: they were not acknowledged, and has()
        // must not claim them (the caller stores them again). Nothing sticks: the next
        // flush starts afresh.
        this.sealing.delete(b);
      }
    })();
    b.sealed.catch(() => undefined);
  }

  /**
   * Resolves once every object put before the call is durable in the backend.
   * Group commit: while packs are being written, objects of concurrent callers
   * gather in the current pack, and one of them writes it for all.
   */
  async flush(): Promise<void> {
    const inFlight = [...this.sealing];
    const mine = this.current;
    if (inFlight.length) await Promise.allSettled(inFlight.map((b) => b.sealed));
    if (mine && this.current === mine) this.startSeal();
    const all = [...inFlight, ...(mine ? [mine] : [])];
    const results = await Promise.allSettled(all.map((b) => b.sealed ?? Promise.resolve()));
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
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
    const p = this.pending(kind, id);
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
      const loc = this.index.get(kind, id);
      if (!loc) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      return this.readRecord(kind, id, loc, withData, opts);
    }
  }

  /** Where an object is, refreshing once if it is not known. */
  private async locateFresh(kind: Kind, id: string): Promise<PackedLocation> {
    let loc = this.index.get(kind, id);
    if (!loc) {
      await this.refresh();
      loc = this.index.get(kind, id);
    }
    if (!loc) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
    return loc;
  }

  /** Reads a record header (and the bytes, if `withData`); CORRUPT if it does not fit the index or its digest. */
  private async readRecord(kind: Kind, id: string, loc: PackedLocation, withData: boolean, opts: StoreOptions = {}): Promise<{ data: Buffer; digest: Buffer }> {
    const what = `${kind} ${id}`;
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
    if (bytes[0] !== KIND_CODE[kind] || bytes.toString('hex', 1, 33) !== id || bytes.readUInt32BE(33) !== loc.length) {
      throw new ObnamError('CORRUPT', `${what}: the record in pack ${loc.pack} does not match the index`);
    }
    const digest = Buffer.from(bytes.subarray(37, RECORD_HEADER_BYTES));
    const data = bytes.subarray(RECORD_HEADER_BYTES);
    if (withData && !sha256(data).equals(digest)) {
      throw new ObnamError('CORRUPT', `${what}: stored bytes do not match their SHA-256 digest`);
    }
    return { data, digest };
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
    if (ids.some((id) => isId(id) && !this.index.has(kind, id) && !this.pending(kind, id))) await this.refresh();
    const runs: { pack: string; from: number; to: number; items: { i: number; loc: PackedLocation }[] }[] = [];
    for (const [i, id] of ids.entries()) {
      const p = isId(id) ? this.pending(kind, id) : undefined;
      const loc = isId(id) ? this.index.get(kind, id) : undefined;
      if (budget <= 0) out[i] = { later: true };
      else if (p) {
        out[i] = p;
        budget -= p.data.length;
      } else if (!loc) out[i] = { missing: true };
      else {
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
    const p = this.pending(kind, id);
    if (p) return p.digest;
    return (await this.readFresh(kind, id, false, opts)).digest;
  }

  async has(kind: Kind, id: string, opts: StoreOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    if (!isKind(kind) || !isId(id)) return false;
    if (!PACKED.has(kind)) return (await this.backend.stat(framedName(kind, id), opts)) !== undefined;
    if (this.index.has(kind, id) || this.pending(kind, id)) return true;
    if (this.now() - this.lastRefresh > this.maxStaleMs) {
      await this.refresh();
      return this.index.has(kind, id);
    }
    return false;
  }

  async hasMany(kind: Kind, ids: readonly string[], opts: StoreOptions = {}): Promise<boolean[]> {
    if (!PACKED.has(kind)) return Promise.all(ids.map((id) => this.has(kind, id, opts)));
    const known = (id: string) => isKind(kind) && isId(id) && (this.index.has(kind, id) || !!this.pending(kind, id));
    if (ids.some((id) => !known(id)) && this.now() - this.lastRefresh > this.maxStaleMs) await this.refresh();
    return ids.map(known);
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
    const seen = new Set<string>();
    for (const b of [this.current, ...this.sealing]) {
      for (const e of b?.entries ?? []) {
        if (e.kind === kind && !this.index.has(kind, e.id) && !seen.has(e.id)) {
          seen.add(e.id);
          yield e.id;
        }
      }
    }
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
    // Objects not yet in a pack (not acknowledged yet, but listed as list() does).
    const extra = [this.current, ...this.sealing].flatMap((b) => (b?.entries ?? []).filter((e) => e.kind === kind && (after === undefined || e.id > after)).map((e) => e.id));
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
    if (!this.index.has(kind, id)) await this.refresh();
    for (let round = 0; round < 2; round++) {
      const pendingIn = [this.current, ...this.sealing].filter((b) => b?.byKey.has(`${kind}/${id}`)) as PackBuilder[];
      const finished = this.index.remove(kind, id);
      const packs = finished.map((l) => l.pack);
      if (round === 0 && !packs.length && !pendingIn.length) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      for (const b of pendingIn) {
        packs.push(b.id);
        b.byKey.delete(`${kind}/${id}`);
      }
      for (const pack of packs) {
        const t = tombstoneKey(kind, id, pack);
        this.tombstones.add(t);
        await this.backend.put(`deleted/${t}`, new Uint8Array(0), opts);
      }
      // A pack removed meanwhile by a repack elsewhere: the object may have a new copy that our tombstone
      // does not hide; learn it and hide it too (local-store.md 5.1).
      if (!(await this.needsRefreshAfterDelete(kind, id, finished, opts))) return;
      await this.refresh();
      if (!this.index.has(kind, id)) return;
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
   * Before a pack of another process (or of this process's repack) is
   * indexed: tombstones its copies of objects deleted while a repack ran
   * (moved-copies.ts), so that they stay hidden. Best effort in the backend
   * (the repacker carries the tombstone over too); hidden in memory regardless.
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

  /** Learns packs, segments and tombstones written since the last look (by any process). */
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
    // Packs known before the listing (packs this process writes meanwhile are not in the listing).
    const known = new Set(this.index.packs());
    let listed = await this.listPacks();
    const gone = () => [...known].filter((p) => !listed.has(p) && ![...this.sealing].some((b) => b.id === p));
    // A repacker writes its new packs before it removes the old ones (14.8): a listing that starts after a
    // removal was seen also lists their replacements.
    if (gone().length) listed = await this.listPacks();
    const newSegments: string[] = [];
    for await (const b of this.backend.list('index/')) if (SEGMENT_NAME.test(b.name) && !this.segments.has(b.name)) newSegments.push(b.name);
    const covered = new Set<string>();
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
        covered.add(pack);
        this.uncovered.delete(pack);
        if (this.index.hasPack(pack)) continue;
        await this.hideMovedCopies(pack, entries);
        if (!this.index.hasPack(pack)) this.index.addPack(pack, entries, this.tombstones, size);
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
      this.index.addPack(pack, entries, this.tombstones, entries.length ? listed.get(pack) : undefined);
      if (entries.length) this.uncovered.add(pack);
    });
    // Packs removed by repacking elsewhere.
    const removed = gone();
    this.index.forgetPacks(new Set(removed));
    // Their replacements were written before they were removed, so they are loaded by now.
    this.moved.forgetPacks(removed);
    for (const pack of removed) this.uncovered.delete(pack);
    this.lastRefresh = started;
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
  private async writeSegment(packs: ReadonlySet<string>): Promise<string | undefined> {
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
  private async compactSegments(): Promise<void> {
    if (this.uncovered.size <= MERGE_UNCOVERED && this.segments.size <= MERGE_SEGMENTS) return;
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
  private async repackLock(): Promise<() => Promise<void>> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const mine = `${hostname()} ${ownerTag()} ${this.now()} ${randomBytes(6).toString('hex')}`;
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
      const [host, owner, ms] = holder.split(' ');
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
      newPack: (): RepackWriter => {
        const b = new PackBuilder();
        return {
          get size() {
            return b.size;
          },
          get count() {
            return b.entries.length;
          },
          add: async (kind, id, data, digest) => b.add(kind, id, data, digest),
          finish: async () => {
            const trailer = packTrailer(b.entries);
            const size = b.size + trailer.length;
            await this.backend.put(packName(b.id), [...b.parts, trailer], { unique: true });
            await this.hideMovedCopies(b.id, b.entries);
            this.index.addPack(b.id, b.entries, this.tombstones, size);
            this.uncovered.add(b.id);
            return { pack: b.id, size };
          },
          abandon: async () => undefined,
        };
      },
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
      await this.flush();
      if (this.uncovered.size) await this.writeSegment(new Set(this.uncovered));
    } finally {
      await this.backend.close();
    }
  }
}
