/**
 * LocalStore: a repository's objects in a local directory. Used for local
 * repositories and, one directory per client, by obnam-server (one engine).
 *
 *   DIR/obnam-store          marker: "obnam local store 1"
 *   DIR/config/ID            config, keys and snapshots: one framed file each
 *   DIR/keys/ID              (few objects, written rarely, deleted one by one)
 *   DIR/snapshots/ID
 *   DIR/packs/AB/PACKID      trees and chunks, in packs (see pack-format.ts)
 *   DIR/deleted/KIND-ID-PACK tombstones: this copy of a packed object is deleted
 *   DIR/tmp/                 files being written
 *
 * Durability and atomicity: a pack is written whole to tmp/, fsynced, then
 * linked into packs/ and the directory fsynced, so a pack under its final
 * name is always complete; a framed file is written the same way. An
 * interrupted writer leaves at most files in tmp/. put() adds trees and chunks
 * to an in-memory pack that is written when it reaches its target size;
 * flush() writes it early and resolves once every object put before it is
 * durable. Several processes may write to one store: each writes its own
 * packs, and an object stored twice is harmless (both copies are valid).
 * repack() (repack.ts) rewrites packs with unused space; readers whose pack
 * vanished refresh and retry once (format-spec 14.8).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errnoCode, ObnamError, throwIfAborted } from '../errors.js';
import { sha256 } from '../crypto/hash.js';
import { isId } from '../format/ids.js';
import { isKind, Kind } from '../format/version.js';
import { FRAME_HEADER_BYTES, frameDigest, frameHeader, unframe } from './framing.js';
import * as io from './localfs.js';
import { FILE_DIRS, framedPath, INDEX_DIR, LATER_DIRS, MARKER, MARKER_TEXT, MARKER_TEXT_V1, PACKED, packPath, segmentPath, SHARDS } from './local-layout.js';
import { decodeSegment, encodeSegment } from './index-segment.js';
import { ScrubProblem, scrubDirectory } from './local-scrub.js';
import { intactRecords, journals, orphanJournals, recoverJournal } from './pack-recover.js';
import { PackWriter } from './pack-writer.js';
import { FOOTER_BYTES, INDEX_ENTRY_BYTES, indexLengthFromFooter, PACK_HEADER_BYTES, parsePackIndex, RECORD_HEADER_BYTES } from './pack-format.js';
import { KIND_CODE } from '../format/version.js';
import { CompactPackIndex } from './compact-index.js';
import { DeletedDuringRepack } from './moved-copies.js';
import { Location, PackIndex, parseTombstoneKey, tombstoneKey } from './pack-index.js';
import { pageOfListing } from './list-page.js';
import { RepackHost, repackStore, RepackWriter, tombstonesNaming } from './repack.js';
import { ownerAlive, ownerTag } from '../util/owner.js';
import type { ObjectStore, RepackOptions, RepackResult, StoreOptions } from './store.js';

export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
/** Bytes a pack may hold in memory, waiting for its file, before put() waits. */
const MAX_BACKLOG = 8 * 1024 * 1024;
const MAX_OPEN_PACKS = 64;
const STALE_TMP_MS = 24 * 3600 * 1000;
/** The repack lock (local-store.md section 5.1): holds the owner tag of the repacking process. */
const REPACK_LOCK = 'repack-lock';

export interface PutOptions extends StoreOptions {
  /** SHA-256 of `data` as computed by the sender; the put fails with CORRUPT if it differs. */
  sha256?: Uint8Array;
}

export interface LocalStoreOptions {
  /** Target pack size in bytes. */
  packSize?: number;
  /**
   * flush() makes objects durable by syncing the open pack's journal instead
   * of finishing the pack (obnam-server, which flushes for every request:
   * otherwise each request would make a pack). Objects flushed this way are
   * visible to this process at once and to others once the pack is finished
   * (or recovered after a crash).
   */
  journalFlush?: boolean;
}

export type { ScrubProblem } from './local-scrub.js';

export class LocalStore implements ObjectStore {
  readonly location: string;
  /** Where each tree and chunk in a finished pack is (compact: no digests, see compact-index.ts). */
  private readonly index = new CompactPackIndex();
  /** Objects in other live writers' journals (few: at most a pack's worth per writer), with digests. */
  private readonly journalIndex = new PackIndex();
  private readonly packSize: number;
  private current?: PackWriter;
  /** Objects in packs not yet durable: the pack that holds each. */
  private readonly unsealed = new Map<string, PackWriter>();
  private readonly sealing = new Set<Promise<void>>();
  /** A failure to write a pack, reported (once) by the next put or flush. */
  private sealError?: unknown;
  /**
   * Journals that failed (a full disk): their durable records were
   * acknowledged, so they are kept and finished as packs once that works
   * (at a later flush or close), never removed.
   */
  private readonly retired = new Set<PackWriter>();
  /** Tombstone keys (see pack-index.ts) known to this process. */
  private readonly tombstones = new Set<string>();
  private readonly openPacks = new Map<string, Promise<fs.FileHandle>>();
  private refreshing?: Promise<void>;
  /** Other live writers' journals read so far: path -> [pack id, bytes parsed, objects]. */
  private readonly journalsSeen = new Map<string, { pack: string; parsed: number; keys: [Kind, string][] }>();

  private readonly journalFlush: boolean;
  /** Index segments read or written (file name -> the packs it covers). */
  private readonly segments = new Map<string, Set<string>>();
  /** Packs no segment covers: read through their footers, or written by this process. */
  private readonly uncovered = new Set<string>();
  /** Packs being written by a repack of this process (their journals are not another writer's). */
  private readonly repackWriters = new Set<PackWriter>();
  /** Copies deleted while a repack ran: a repacker's copy of one is hidden too (moved-copies.ts). */
  private readonly moved = new DeletedDuringRepack();

  private constructor(
    readonly dir: string,
    opts: LocalStoreOptions,
  ) {
    this.location = dir;
    this.packSize = opts.packSize ?? DEFAULT_PACK_SIZE;
    this.journalFlush = !!opts.journalFlush;
  }

  /** Creates the directory layout (idempotent) and returns the store. */
  static async create(dir: string, opts: LocalStoreOptions = {}): Promise<LocalStore> {
    const abs = path.resolve(dir);
    const mk = (d: string) => fs.mkdir(path.join(abs, d), { recursive: true, mode: 0o700 });
    await mk('.');
    for (const d of ['tmp', 'deleted', INDEX_DIR, ...Object.values(FILE_DIRS)]) await mk(d!);
    for (const s of SHARDS) await mk(path.join('packs', s));
    await fs.writeFile(path.join(abs, MARKER), MARKER_TEXT, { mode: 0o600 });
    return LocalStore.open(abs, opts);
  }

  /** Opens an existing store and loads its pack indexes; NO_REPOSITORY if `dir` is not one. */
  static async open(dir: string, opts: LocalStoreOptions = {}): Promise<LocalStore> {
    const abs = path.resolve(dir);
    let marker: string;
    try {
      marker = await fs.readFile(path.join(abs, MARKER), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') {
        throw new ObnamError('NO_REPOSITORY', `no obnam repository at ${abs}`);
      }
      throw new ObnamError('IO', `cannot open repository at ${abs}: ${(e as Error).message}`);
    }
    if (marker !== MARKER_TEXT && marker !== MARKER_TEXT_V1) {
      throw new ObnamError('UNSUPPORTED_VERSION', `${abs} holds an obnam store layout this version does not know`);
    }
    const store = new LocalStore(abs, opts);
    await store.recoverJournals();
    await store.refresh();
    // The index as read: one sorted run, no delta (compact-index.ts).
    store.index.compact();
    await store.removeStaleTemp();
    if (marker === MARKER_TEXT_V1) await store.migrateFromV1();
    else await store.compactSegments();
    return store;
  }

  /**
   * Layout 1 -> 2: one index segment for every pack, then the new marker
   * (written atomically). On a read-only file system the store is used as it
   * is (layout 1 is readable: it only lacks segments).
   */
  private async migrateFromV1(): Promise<void> {
    try {
      await fs.mkdir(path.join(this.dir, INDEX_DIR), { recursive: true, mode: 0o700 });
      if (this.index.packCount) await this.writeSegment(new Set(this.index.packs()));
      const tmp = path.join(this.dir, 'tmp', `${MARKER}.${randomBytes(6).toString('hex')}`);
      await io.writeDurable(tmp, [Buffer.from(MARKER_TEXT)]);
      await fs.rename(tmp, path.join(this.dir, MARKER));
      await io.fsyncDir(this.dir);
    } catch (e) {
      if (['EROFS', 'EACCES', 'EPERM'].includes(errnoCode(e) ?? '')) return;
      throw io.ioError(e, `cannot upgrade the store layout of ${this.dir} to version 2`);
    }
  }

  /** Writes one index segment for these packs, from the index in memory (D1-D3). */
  private async writeSegment(packs: ReadonlySet<string>): Promise<void> {
    const entries = this.index.segmentOf(packs);
    if (!entries.size) return;
    const name = randomBytes(32).toString('hex');
    const tmp = path.join(this.dir, 'tmp', `${name}.${randomBytes(6).toString('hex')}`);
    try {
      await io.writeDurable(tmp, [encodeSegment(entries)]);
      const dir = path.join(this.dir, INDEX_DIR);
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await io.linkNoReplace(tmp, segmentPath(this.dir, name));
      await io.fsyncDir(dir);
    } finally {
      await io.unlink(tmp, true).catch(() => undefined);
    }
    this.segments.set(name, new Set(entries.keys()));
    for (const p of entries.keys()) this.uncovered.delete(p);
  }

  /**
   * At open: with many uncovered packs or many segments, one segment for all
   * packs, then the segments it replaces are removed. Best effort: segments
   * only save reading footers, so a failure here (a full or read-only disk)
   * changes nothing.
   */
  private async compactSegments(): Promise<void> {
    if (this.uncovered.size <= 16 && this.segments.size <= 32) return;
    try {
      const old = [...this.segments.keys()];
      const all = new Set(this.index.packs());
      await this.writeSegment(all);
      for (const name of old) {
        if ([...this.segments.get(name)!].every((p) => all.has(p) || !this.index.hasPack(p))) {
          await io.unlink(segmentPath(this.dir, name), true);
          this.segments.delete(name);
        }
      }
      await io.fsyncDir(path.join(this.dir, INDEX_DIR));
    } catch {
      // Footers remain the fallback.
    }
  }

  static async exists(dir: string): Promise<boolean> {
    try {
      await fs.access(path.join(path.resolve(dir), MARKER));
      return true;
    } catch {
      return false;
    }
  }

  private filePath(kind: Kind, id: string): string {
    if (!isId(id)) throw new ObnamError('NOT_FOUND', `invalid object id ${JSON.stringify(String(id).slice(0, 80))}`);
    return framedPath(this.dir, kind, id);
  }

  private packPath(pack: string): string {
    return packPath(this.dir, pack);
  }

  private checkId(kind: Kind, id: string): void {
    if (!isKind(kind)) throw new ObnamError('NOT_FOUND', `unknown object kind ${JSON.stringify(kind)}`);
    if (!isId(id)) throw new ObnamError('NOT_FOUND', `invalid object id ${JSON.stringify(String(id).slice(0, 80))}`);
  }

  async put(kind: Kind, id: string, data: Uint8Array, opts: PutOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    this.checkId(kind, id);
    const digest = sha256(data);
    if (opts.sha256 && !digest.equals(Buffer.from(opts.sha256))) {
      throw new ObnamError('CORRUPT', `${kind} ${id}: received bytes do not match the sender's SHA-256 digest`);
    }
    if (!PACKED.has(kind)) return this.putFile(kind, id, data, digest);
    this.throwSealError();
    if (this.hasPacked(kind, id)) return false;
    const key = `${kind}/${id}`;
    const w = (this.current ??= new PackWriter(path.join(this.dir, 'tmp')));
    w.add(kind, id, data, digest);
    this.unsealed.set(key, w);
    // Back-pressure: do not let bytes waiting for the disk pile up in memory.
    if (w.backlog > MAX_BACKLOG) await w.drained().catch(() => undefined);
    if (w.size >= this.packSize) {
      this.startSeal();
      while (this.sealing.size > 2) await Promise.race(this.sealing);
    }
    return true;
  }

  private async putFile(kind: Kind, id: string, data: Uint8Array, digest: Buffer): Promise<boolean> {
    const final = this.filePath(kind, id);
    if (await io.exists(final)) return false;
    const tmp = path.join(this.dir, 'tmp', `${id}.${randomBytes(6).toString('hex')}`);
    try {
      await io.writeDurable(tmp, [frameHeader(digest), data]);
      if (LATER_DIRS.has(kind)) await fs.mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
      const created = await io.linkNoReplace(tmp, final);
      if (created) await io.fsyncDir(path.dirname(final));
      return created;
    } catch (e) {
      throw io.ioError(e, `cannot store ${kind} ${id}`);
    } finally {
      await io.unlink(tmp, true).catch(() => undefined);
    }
  }

  /** Writes the current pack now (in the background); flush() waits for it. */
  private startSeal(): void {
    const b = this.current;
    if (!b || b.empty) return;
    this.current = undefined;
    const p = this.finishPack(b).catch((e) => {
      // Flushing by journal, the pack's objects are durable in its journal (retired, finished
      // later): nobody's request failed. Otherwise they were never acknowledged: forget them
      // (has() must not claim them) and report the failure once.
      if (this.journalFlush) return;
      this.forgetUnsealed(b, 0);
      this.sealError ??= io.ioError(e, `cannot write pack ${b.id}`);
    });
    this.sealing.add(p);
    void p.finally(() => this.sealing.delete(p));
  }

  private async finishPack(b: PackWriter): Promise<void> {
    const tmp = b.tmpPath;
    const final = this.packPath(b.id);
    try {
      await b.finish();
      // Shard directories may be missing (a store copied by tools that drop empty directories).
      await fs.mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
      await io.linkNoReplace(tmp, final);
      b.readPath = final;
      await io.fsyncDir(path.dirname(final));
    } catch (e) {
      if (this.journalFlush) {
        this.retire(b);
        throw e;
      }
      await b.abandon();
      await io.unlink(tmp, true).catch(() => undefined);
      throw e;
    }
    await io.unlink(tmp, true).catch(() => undefined);
    for (const e of b.entries) {
      const key = `${e.kind}/${e.id}`;
      if (this.unsealed.get(key) === b) this.unsealed.delete(key);
    }
    // Entries deleted while the pack was being filled have tombstones naming it.
    this.index.addPack(b.id, b.entries, this.tombstones, b.size + b.entries.length * INDEX_ENTRY_BYTES + FOOTER_BYTES);
    this.uncovered.add(b.id);
  }

  /**
   * Resolves once every object put so far is durable. Group commit: while packs are being written, objects of concurrent
   * callers gather in the current pack; then one of them writes it for all.
   * (A server acknowledges every upload only after a flush: without this,
   * each request would make a pack of its own.)
   */
  async flush(): Promise<void> {
    if (this.journalFlush) {
      const w = this.current;
      try {
        await w?.sync();
      } catch (e) {
        // The journal cannot take more (a full disk): start a new one for later puts; what was
        // already durable in this one stays readable and becomes a pack later (retired).
        if (w) this.retire(w);
        throw io.ioError(e, 'cannot write pack journal');
      }
      await this.finishRetired();
    } else {
      while (this.sealing.size) await Promise.all(this.sealing);
      this.startSeal();
    }
    while (this.sealing.size) await Promise.all(this.sealing);
    this.throwSealError();
  }

  /** Reports a pack write failure once: the store goes on working afterwards. */
  private throwSealError(): void {
    const e = this.sealError;
    if (e === undefined) return;
    this.sealError = undefined;
    throw e;
  }

  /** Forgets the objects of a pack from entry `from` on (they were not stored durably). */
  private forgetUnsealed(w: PackWriter, from: number): void {
    for (const e of w.entries.slice(from)) {
      const key = `${e.kind}/${e.id}`;
      if (this.unsealed.get(key) === w) this.unsealed.delete(key);
    }
  }

  /** Stops using a journal that failed; keeps its durable records (see `retired`). */
  private retire(w: PackWriter): void {
    if (this.current === w) this.current = undefined;
    if (this.retired.has(w)) return;
    this.forgetUnsealed(w, w.durableCount);
    this.retired.add(w);
  }

  /** Finishes retired journals as packs, if the disk lets us now (J1's recovery, in-process). */
  private async finishRetired(): Promise<void> {
    for (const w of [...this.retired]) {
      try {
        await w.drained().catch(() => undefined);
        const entries = await recoverJournal(w.tmpPath, this.packPath(w.id));
        const size = (await fs.stat(this.packPath(w.id)).catch(() => undefined))?.size;
        this.index.addPack(w.id, entries, this.tombstones, size);
        this.uncovered.add(w.id);
        this.forgetUnsealed(w, 0);
        this.retired.delete(w);
        await w.abandon();
      } catch {
        // Still no space: the journal stays (durable); try again at the next flush.
      }
    }
  }

  /** Finishes the open pack, so that other processes see its objects too. */
  async seal(): Promise<void> {
    this.startSeal();
    while (this.sealing.size) await Promise.all(this.sealing);
    await this.finishRetired();
    this.throwSealError();
  }

  /** Finishes the journals of writers that died (see pack-recover.ts). */
  private async recoverJournals(): Promise<void> {
    for (const [pack, journal] of await orphanJournals(path.join(this.dir, 'tmp'))) {
      try {
        await recoverJournal(journal, this.packPath(pack));
      } catch (e) {
        throw new ObnamError('IO', `cannot recover pack journal ${journal}: ${(e as Error).message}`);
      }
    }
  }

  private hasPacked(kind: Kind, id: string): boolean {
    return this.unsealed.has(`${kind}/${id}`) || this.where(kind, id) !== undefined;
  }

  /** Where a packed object is: in a finished pack, or in another writer's journal. */
  private where(kind: Kind, id: string): (Omit<Location, 'digest'> & { digest?: Buffer }) | undefined {
    return this.index.get(kind, id) ?? this.journalIndex.get(kind, id);
  }

  async get(kind: Kind, id: string, opts: StoreOptions = {}): Promise<Uint8Array> {
    throwIfAborted(opts.signal);
    this.checkId(kind, id);
    if (!PACKED.has(kind)) return unframe(await this.readFile(kind, id), `${kind} ${id}`).data;
    const pending = await this.unsealed.get(`${kind}/${id}`)?.lookup(kind, id);
    if (pending) {
      if (!sha256(pending.data).equals(pending.digest)) {
        throw new ObnamError('CORRUPT', `${kind} ${id}: stored bytes do not match their SHA-256 digest`);
      }
      return pending.data;
    }
    let loc = this.where(kind, id);
    if (!loc) {
      await this.refresh();
      loc = this.where(kind, id);
    }
    if (!loc) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
    try {
      return await this.readLocated(kind, id, loc);
    } catch (e) {
      // Its pack was removed (repacked) or another writer's journal became a pack: look again, once (14.8).
      if (!(e instanceof ObnamError && e.code === 'NOT_FOUND')) throw e;
      await this.refresh();
      loc = this.where(kind, id);
      if (!loc) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      return this.readLocated(kind, id, loc);
    }
  }

  private async readLocated(kind: Kind, id: string, loc: Omit<Location, 'digest'> & { digest?: Buffer }): Promise<Uint8Array> {
    if (!loc.journal) return (await this.readRecord(kind, id, loc, true)).data;
    const data = await this.readAt(loc as Location, `${kind} ${id}`);
    if (!sha256(data).equals(loc.digest!)) {
      throw new ObnamError('CORRUPT', `${kind} ${id}: stored bytes do not match their SHA-256 digest`);
    }
    return data;
  }

  /**
   * Reads an object's record header (and bytes, if `withData`) from its pack:
   * the digest is the record header's, checked against the bytes; the header
   * must name this object with the index's length (CORRUPT otherwise).
   */
  private async readRecord(kind: Kind, id: string, loc: { pack: string; offset: number; length: number }, withData: boolean): Promise<{ data: Buffer; digest: Buffer }> {
    const what = `${kind} ${id}`;
    const want = RECORD_HEADER_BYTES + (withData ? loc.length : 0);
    const buf = Buffer.allocUnsafe(want);
    try {
      const { bytesRead } = await (await this.openPack(loc.pack)).read(buf, 0, want, loc.offset - RECORD_HEADER_BYTES);
      if (bytesRead !== want) throw new ObnamError('CORRUPT', `${what}: pack ${loc.pack} is truncated`);
    } catch (e) {
      if (e instanceof ObnamError) throw e;
      // EBADF: the handle was closed under us (its pack was removed by repacking).
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'EBADF') throw new ObnamError('NOT_FOUND', `${what} not found (its pack is gone)`);
      throw new ObnamError('IO', `cannot read ${what}: ${(e as Error).message}`);
    }
    if (buf[0] !== KIND_CODE[kind] || buf.toString('hex', 1, 33) !== id || buf.readUInt32BE(33) !== loc.length) {
      throw new ObnamError('CORRUPT', `${what}: the record in pack ${loc.pack} does not match the index`);
    }
    const digest = Buffer.from(buf.subarray(37, RECORD_HEADER_BYTES));
    const data = buf.subarray(RECORD_HEADER_BYTES);
    if (withData && !sha256(data).equals(digest)) {
      throw new ObnamError('CORRUPT', `${what}: stored bytes do not match their SHA-256 digest`);
    }
    return { data, digest };
  }

  private async readFile(kind: Kind, id: string): Promise<Buffer> {
    try {
      return await io.readFile(this.filePath(kind, id));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      throw new ObnamError('IO', `cannot read ${kind} ${id}: ${(e as Error).message}`);
    }
  }

  private async readAt(loc: Location, what: string): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(loc.length);
    try {
      const fh = loc.journal ? await fs.open(loc.journal, 'r') : await this.openPack(loc.pack);
      if (loc.journal) {
        try {
          await fh.read(buf, 0, loc.length, loc.offset);
        } finally {
          await fh.close();
        }
        return buf;
      }
      const { bytesRead } = await fh.read(buf, 0, loc.length, loc.offset);
      if (bytesRead !== loc.length) throw new ObnamError('CORRUPT', `${what}: pack ${loc.pack} is truncated`);
    } catch (e) {
      if (e instanceof ObnamError) throw e;
      if (errnoCode(e) === 'ENOENT') throw new ObnamError('NOT_FOUND', `${what} not found (its pack is gone)`);
      throw new ObnamError('IO', `cannot read ${what}: ${(e as Error).message}`);
    }
    return buf;
  }

  private openPack(pack: string): Promise<fs.FileHandle> {
    let p = this.openPacks.get(pack);
    if (p) {
      this.openPacks.delete(pack); // re-insert: most recently used last
      this.openPacks.set(pack, p);
      return p;
    }
    if (this.openPacks.size >= MAX_OPEN_PACKS) {
      const [oldest, handle] = this.openPacks.entries().next().value as [string, Promise<fs.FileHandle>];
      this.openPacks.delete(oldest);
      void handle.then((h) => h.close()).catch(() => undefined);
    }
    p = fs.open(this.packPath(pack), 'r');
    p.catch(() => this.openPacks.delete(pack));
    this.openPacks.set(pack, p);
    return p;
  }

  async has(kind: Kind, id: string, opts: StoreOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    if (!isKind(kind) || !isId(id)) return false;
    if (PACKED.has(kind)) return this.hasPacked(kind, id);
    try {
      return await io.exists(this.filePath(kind, id));
    } catch (e) {
      throw new ObnamError('IO', `cannot check ${kind} ${id}: ${(e as Error).message}`);
    }
  }

  hasMany(kind: Kind, ids: readonly string[], opts: StoreOptions = {}): Promise<boolean[]> {
    return Promise.all(ids.map((id) => this.has(kind, id, opts)));
  }

  async *list(kind: Kind, opts: StoreOptions = {}): AsyncIterable<string> {
    throwIfAborted(opts.signal);
    if (PACKED.has(kind)) {
      await this.refresh();
      // Streamed from the compact index: no string or set entry per stored object
      // is kept (a repository may hold millions); only the few unsealed ids are.
      const unsealed = new Set<string>();
      for (const key of this.unsealed.keys()) {
        if (!key.startsWith(`${kind}/`)) continue;
        const id = key.slice(kind.length + 1);
        if (this.index.has(kind, id)) continue;
        unsealed.add(id);
        yield id;
      }
      for (const id of this.index.ids(kind)) yield id;
      for (const id of [...this.journalIndex.ids(kind)]) if (!unsealed.has(id) && !this.index.has(kind, id)) yield id;
      return;
    }
    let names: string[];
    try {
      names = await fs.readdir(path.join(this.dir, FILE_DIRS[kind]!));
    } catch (e) {
      if (LATER_DIRS.has(kind) && errnoCode(e) === 'ENOENT') return;
      throw new ObnamError('IO', `cannot list ${kind} objects: ${(e as Error).message}`);
    }
    for (const n of names) if (isId(n)) yield n;
  }

  /** Up to `limit` ids of `kind` greater than `after`, in ascending order (resumable listings). */
  async listPage(kind: Kind, after: string | undefined, limit: number): Promise<string[]> {
    if (!PACKED.has(kind)) return pageOfListing(this.list(kind), after, limit);
    // A listing that starts learns what other processes stored.
    if (after === undefined) await this.refresh();
    const page = this.index.page(kind, after, limit);
    // Objects not in a finished pack (this process's open pack, other writers' journals): few, merged in.
    const prefix = `${kind}/`;
    const extra: string[] = [];
    for (const key of this.unsealed.keys()) if (key.startsWith(prefix)) extra.push(key.slice(prefix.length));
    for (const id of this.journalIndex.ids(kind)) extra.push(id);
    const more = extra.filter((id) => (after === undefined || id > after) && !this.index.has(kind, id));
    if (!more.length) return page;
    return [...new Set([...page, ...more])].sort().slice(0, limit);
  }

  async delete(kind: Kind, id: string, opts: StoreOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    this.checkId(kind, id);
    if (!PACKED.has(kind)) {
      const p = this.filePath(kind, id);
      try {
        await io.unlink(p);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
        throw new ObnamError('IO', `cannot delete ${kind} ${id}: ${(e as Error).message}`);
      }
      await io.fsyncDir(path.dirname(p));
      return;
    }
    if (!this.hasPacked(kind, id)) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
    const key = `${kind}/${id}`;
    for (let round = 0; round < 2; round++) {
      const finished = this.index.remove(kind, id);
      const packs = [...finished.map((l) => l.pack), ...this.journalIndex.remove(kind, id).map((l) => l.pack)];
      const builder = this.unsealed.get(key);
      if (builder) packs.push(builder.id);
      this.unsealed.delete(key);
      try {
        for (const pack of packs) await this.writeTombstone(tombstoneKey(kind, id, pack));
        await io.fsyncDir(path.join(this.dir, 'deleted'));
        if (!(await this.needsRefreshAfterDelete(kind, id, finished))) return;
      } catch (e) {
        throw io.ioError(e, `cannot delete ${kind} ${id}`);
      }
      await this.refresh();
      if (!this.hasPacked(kind, id)) return;
    }
  }

  /**
   * After a delete's tombstones are durable (local-store.md 5.1, "Deletes
   * during a repack"): if a repack holds the lock, it may be copying these
   * records into a pack this process has not seen yet, so their digests are
   * watched (copies with them are hidden when learnt); and if one of their
   * packs is gone (repacked meanwhile), returns true: the caller refreshes
   * and deletes the new copies too. The lock is looked at first: a repack
   * that copied a record before its tombstone holds the lock from before
   * the tombstone until after it removed the record's pack.
   */
  private async needsRefreshAfterDelete(kind: Kind, id: string, copies: readonly { pack: string; offset: number; length: number }[]): Promise<boolean> {
    if (!copies.length) return false;
    const repacking = await io.exists(path.join(this.dir, REPACK_LOCK));
    let vanished = false;
    for (const loc of copies) {
      if (!(await io.exists(this.packPath(loc.pack)))) {
        vanished = true;
        continue;
      }
      if (!repacking) continue;
      try {
        this.moved.add(kind, id, loc.pack, (await this.readRecord(kind, id, loc, false)).digest);
      } catch (e) {
        if (e instanceof ObnamError && e.code === 'NOT_FOUND') vanished = true;
        else if (!(e instanceof ObnamError && e.code === 'CORRUPT')) throw e;
      }
    }
    return vanished;
  }

  /**
   * Before a pack or journal of another writer (or of this process's repack)
   * is indexed: tombstones its copies of objects deleted while a repack ran
   * (moved-copies.ts), so that they stay hidden. Best effort on disk (the
   * repacker carries the tombstone over too); hidden in memory regardless.
   */
  private async hideMovedCopies(pack: string, entries: Iterable<{ kind: Kind; id: string; offset: number; length: number; digest?: Buffer }>): Promise<void> {
    const copies = await this.moved.copiesIn(entries, (e) =>
      this.readRecord(e.kind, e.id, { pack, offset: e.offset, length: e.length }, false).then(
        (r) => r.digest,
        () => undefined,
      ),
    );
    let wrote = false;
    for (const e of copies) {
      const key = tombstoneKey(e.kind, e.id, pack);
      if (this.tombstones.has(key)) continue;
      wrote = true;
      await this.writeTombstone(key).catch(() => this.tombstones.add(key));
    }
    if (wrote) await io.fsyncDir(path.join(this.dir, 'deleted')).catch(() => undefined);
  }

  /** Writes one tombstone (D1-D2; the caller fsyncs deleted/). */
  private async writeTombstone(t: string): Promise<void> {
    this.tombstones.add(t);
    const tmp = path.join(this.dir, 'tmp', `${t}.${randomBytes(6).toString('hex')}`);
    await io.writeDurable(tmp, []);
    await io.linkNoReplace(tmp, path.join(this.dir, 'deleted', t));
    await io.unlink(tmp, true);
  }

  /** The bytes and the SHA-256 the store keeps for them (checked). */
  async getWithDigest(kind: Kind, id: string, opts: StoreOptions = {}): Promise<{ data: Uint8Array; digest: Buffer }> {
    const digest = await this.digest(kind, id);
    return { data: await this.get(kind, id, opts), digest };
  }

  /** The SHA-256 the store keeps for an object (without reading it). */
  async digest(kind: Kind, id: string): Promise<Buffer> {
    this.checkId(kind, id);
    if (PACKED.has(kind)) {
      const pending = this.unsealed.get(`${kind}/${id}`)?.digestOf(kind, id);
      if (pending) return pending;
      const loc = this.where(kind, id);
      if (!loc) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      if (loc.digest) return loc.digest;
      try {
        return (await this.readRecord(kind, id, loc, false)).digest;
      } catch (e) {
        if (!(e instanceof ObnamError && e.code === 'NOT_FOUND')) throw e;
        await this.refresh();
        const again = this.where(kind, id);
        if (!again) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
        return again.digest ?? (await this.readRecord(kind, id, again, false)).digest;
      }
    }
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.filePath(kind, id), 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      throw new ObnamError('IO', `cannot read ${kind} ${id}: ${(e as Error).message}`);
    }
    try {
      const header = Buffer.alloc(FRAME_HEADER_BYTES);
      const { bytesRead } = await fh.read(header, 0, FRAME_HEADER_BYTES, 0);
      return Buffer.from(frameDigest(header.subarray(0, bytesRead), `${kind} ${id}`));
    } finally {
      await fh.close();
    }
  }

  /** Where an object's bytes are on disk (for tests that damage objects, and for scrub reports). */
  locate(kind: Kind, id: string): { file: string; offset: number; length: number } | undefined {
    if (!PACKED.has(kind)) return { file: this.filePath(kind, id), offset: FRAME_HEADER_BYTES, length: -1 };
    const loc = this.where(kind, id);
    return loc && { file: loc.journal ?? this.packPath(loc.pack), offset: loc.offset, length: loc.length };
  }

  /** Learns packs and tombstones written since the last look (by this or other processes). */
  refresh(): Promise<void> {
    this.refreshing ??= this.loadNew().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Learns the tombstones in deleted/ not seen yet, hiding the copies they name. */
  private async loadTombstones(): Promise<void> {
    try {
      for (const name of await fs.readdir(path.join(this.dir, 'deleted'))) {
        const t = parseTombstoneKey(name);
        if (t && !this.tombstones.has(name)) {
          this.tombstones.add(name);
          this.index.hide(t.kind, t.id, t.pack);
          this.journalIndex.hide(t.kind, t.id, t.pack);
        }
      }
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw new ObnamError('IO', `cannot read ${this.dir}/deleted: ${(e as Error).message}`);
    }
  }

  /** The names of every pack on disk. */
  private async listPacks(): Promise<Set<string>> {
    const out = new Set<string>();
    await Promise.all(
      SHARDS.map(async (s) => {
        let names: string[];
        try {
          names = await fs.readdir(path.join(this.dir, 'packs', s));
        } catch (e) {
          if (errnoCode(e) === 'ENOENT') return;
          throw new ObnamError('IO', `cannot list packs: ${(e as Error).message}`);
        }
        for (const n of names) if (isId(n) && n.startsWith(s)) out.add(n);
      }),
    );
    return out;
  }

  private async loadNew(): Promise<void> {
    await this.loadTombstones();
    // Packs known before the listing: one that is not listed was removed by repacking (packs this
    // process adds while we list are not in it).
    const known = new Set(this.index.packs());
    let onDisk = await this.listPacks();
    const gone = () => [...known].filter((p) => !onDisk.has(p));
    // A repacker links its new packs before it removes the old ones (14.8): a listing that started
    // after a removal was seen also sees their replacements.
    if (gone().length) onDisk = await this.listPacks();
    const todo = [...onDisk].filter((n) => !this.index.hasPack(n));
    const sizes = new Map<string, number>();
    // Index segments first: the packs they cover need no footer read (section 4.8).
    if (todo.length) {
      const onDisk = new Set(todo);
      let names: string[] = [];
      try {
        names = (await fs.readdir(path.join(this.dir, INDEX_DIR))).filter((n) => isId(n) && !this.segments.has(n));
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw new ObnamError('IO', `cannot list index segments: ${(e as Error).message}`);
      }
      for (const name of names) {
        let packs: Map<string, import('./index-segment.js').DecodedSegmentPack>;
        try {
          packs = decodeSegment(await fs.readFile(segmentPath(this.dir, name)), `index segment ${name}`);
        } catch {
          continue; // removed meanwhile, or damaged (scrub reports it): footers instead
        }
        this.segments.set(name, new Set(packs.keys()));
        for (const [pack, { size, entries }] of packs) {
          if (!onDisk.has(pack) || this.index.hasPack(pack)) continue;
          // A pack whose size differs from the segment's is not the pack described (truncated): its footer decides.
          if (sizes.get(pack) === undefined) sizes.set(pack, (await fs.stat(this.packPath(pack)).catch(() => undefined))?.size ?? -1);
          if (sizes.get(pack) !== size) continue;
          await this.hideMovedCopies(pack, entries);
          this.index.addPack(pack, entries, this.tombstones, size);
        }
      }
    }
    const footers = todo.filter((p) => !this.index.hasPack(p));
    let next = 0;
    const worker = async () => {
      while (next < footers.length) {
        const pack = footers[next++]!;
        try {
          const { entries, size } = await this.readPackIndex(pack);
          await this.hideMovedCopies(pack, entries);
          this.index.addPack(pack, entries, this.tombstones, size);
          this.uncovered.add(pack);
        } catch {
          // A damaged pack index hides that pack's objects; fsck reports them
          // as missing and scrub names the pack.
          this.index.addPack(pack, [], this.tombstones);
        }
      }
    };
    // Journals that other writers finished since: their objects are now in the packs loaded below.
    const live = await journals(path.join(this.dir, 'tmp'));
    const present = new Set(live.map(([, file]) => file));
    for (const [file, seen] of this.journalsSeen) {
      if (!present.has(file)) {
        this.journalIndex.forgetPack(seen.pack, seen.keys);
        this.journalsSeen.delete(file);
      }
    }
    await Promise.all(Array.from({ length: Math.min(16, footers.length) }, worker));
    const removed = gone();
    if (removed.length) this.forgetPacks(new Set(removed));
    // Objects other live writers made durable in their journals are visible too.
    for (const [pack, file, alive] of live) {
      if (!alive || this.current?.tmpPath === file || this.index.hasPack(pack)) continue;
      if ([...this.retired].some((w) => w.tmpPath === file)) continue; // our own, finished later
      if ([...this.repackWriters].some((w) => w.tmpPath === file)) continue; // our own repack's
      await this.readJournal(pack, file);
    }
  }

  /** Adds the records another writer appended to its journal since we last looked. */
  private async readJournal(pack: string, file: string): Promise<void> {
    const seen = this.journalsSeen.get(file) ?? { pack, parsed: PACK_HEADER_BYTES, keys: [] };
    let bytes: Buffer;
    try {
      const fh = await fs.open(file, 'r');
      try {
        const { size } = await fh.stat();
        bytes = Buffer.alloc(Math.max(0, size - seen.parsed));
        await fh.read(bytes, 0, bytes.length, seen.parsed);
        if (seen.parsed === PACK_HEADER_BYTES) {
          const head = Buffer.alloc(PACK_HEADER_BYTES);
          await fh.read(head, 0, PACK_HEADER_BYTES, 0);
          bytes = Buffer.concat([head, bytes]);
        }
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return; // finished meanwhile: its pack shows up next time
      throw new ObnamError('IO', `cannot read journal ${file}: ${(e as Error).message}`);
    }
    const base = seen.parsed === PACK_HEADER_BYTES ? 0 : seen.parsed;
    const entries = intactRecords(bytes, seen.parsed, base);
    await this.hideMovedCopies(pack, entries);
    for (const e of entries) {
      if (this.tombstones.has(tombstoneKey(e.kind, e.id, pack))) continue;
      this.journalIndex.add({ ...e, pack, journal: file });
      seen.keys.push([e.kind, e.id]);
      seen.parsed = e.offset + e.length;
    }
    this.journalsSeen.set(file, seen);
  }

  private async readPackIndex(pack: string) {
    const file = this.packPath(pack);
    const fh = await fs.open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size < FOOTER_BYTES) throw new ObnamError('CORRUPT', `pack ${pack} is truncated`);
      const footer = Buffer.alloc(FOOTER_BYTES);
      await fh.read(footer, 0, FOOTER_BYTES, size - FOOTER_BYTES);
      const len = indexLengthFromFooter(footer, `pack ${pack}`) + FOOTER_BYTES;
      if (len > size) throw new ObnamError('CORRUPT', `pack ${pack} is truncated`);
      const tail = Buffer.alloc(len);
      await fh.read(tail, 0, len, size - len);
      return { entries: parsePackIndex(tail, size, `pack ${pack}`), size };
    } finally {
      await fh.close();
    }
  }

  /** Forgets packs that are no longer on disk (removed by repacking), closing their handles. */
  private forgetPacks(packs: ReadonlySet<string>): void {
    this.index.forgetPacks(packs);
    // Their replacements were written before they were removed, so they are loaded by now.
    this.moved.forgetPacks(packs);
    for (const p of packs) {
      this.uncovered.delete(p);
      const h = this.openPacks.get(p);
      this.openPacks.delete(p);
      // A read in flight on it fails with EBADF, which reads treat as a vanished pack (and retry).
      void h?.then((x) => x.close()).catch(() => undefined);
    }
  }

  /** Rewrites packs with unused space (format-spec 14.8; repack.ts). Needs no repository key. */
  repack(opts: RepackOptions): Promise<RepackResult> {
    return repackStore(this.repackHost(), opts);
  }

  /** The repack lock: DIR/repack-lock holds the owner tag; one whose owner no longer runs is taken over. */
  private async repackLock(): Promise<() => Promise<void>> {
    const lock = path.join(this.dir, REPACK_LOCK);
    for (let attempt = 0; attempt < 3; attempt++) {
      const tmp = path.join(this.dir, 'tmp', `${REPACK_LOCK}.${randomBytes(6).toString('hex')}`);
      let created: boolean;
      try {
        await io.writeDurable(tmp, [Buffer.from(ownerTag())]);
        created = await io.linkNoReplace(tmp, lock);
        if (created) await io.fsyncDir(this.dir);
      } catch (e) {
        throw io.ioError(e, `cannot lock ${this.dir} for repacking`);
      } finally {
        await io.unlink(tmp, true).catch(() => undefined);
      }
      if (created) {
        return async () => {
          await io.unlink(lock, true).catch(() => undefined);
        };
      }
      const holder = await fs.readFile(lock, 'utf8').catch(() => undefined);
      if (holder === undefined) continue; // released meanwhile
      if (ownerAlive(holder.trim())) {
        throw new ObnamError('CONFLICT', `another repack of ${this.dir} is running (process ${holder.trim().split('-')[0]}); try again when it has finished`);
      }
      // Left by a repack that died: take it over, unless another process just did.
      const again = await fs.readFile(lock, 'utf8').catch(() => undefined);
      if (again === holder) await io.unlink(lock, true).catch(() => undefined);
    }
    throw new ObnamError('CONFLICT', `cannot lock ${this.dir} for repacking: another process keeps taking the lock`);
  }

  private repackWriter(): RepackWriter {
    const w = new PackWriter(path.join(this.dir, 'tmp'));
    this.repackWriters.add(w);
    const drop = async () => {
      await w.abandon();
      await io.unlink(w.tmpPath, true).catch(() => undefined);
      this.repackWriters.delete(w);
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
        const final = this.packPath(w.id);
        try {
          await w.finish();
          await fs.mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
          await io.linkNoReplace(w.tmpPath, final);
          await io.fsyncDir(path.dirname(final));
        } catch (e) {
          await drop().catch(() => undefined);
          throw io.ioError(e, `cannot write pack ${w.id}`);
        }
        await io.unlink(w.tmpPath, true).catch(() => undefined);
        const size = w.size + w.entries.length * INDEX_ENTRY_BYTES + FOOTER_BYTES;
        await this.hideMovedCopies(w.id, w.entries);
        this.index.addPack(w.id, w.entries, this.tombstones, size);
        this.uncovered.add(w.id);
        this.repackWriters.delete(w);
        return { pack: w.id, size };
      },
      abandon: drop,
    };
  }

  private repackHost(): RepackHost {
    const deleted = path.join(this.dir, 'deleted');
    return {
      packSize: this.packSize,
      lock: () => this.repackLock(),
      refresh: () => this.refresh(),
      usage: () => this.index.usage(),
      liveRecords: async (pack) => {
        let entries;
        try {
          entries = (await this.readPackIndex(pack)).entries;
        } catch {
          return undefined;
        }
        return entries
          .filter((e) => {
            const l = this.index.get(e.kind, e.id);
            return l?.pack === pack && l.offset === e.offset && l.length === e.length;
          })
          .sort((a, b) => a.offset - b.offset);
      },
      read: async (pack, offset, length) => {
        const buf = Buffer.allocUnsafe(length);
        try {
          const { bytesRead } = await (await this.openPack(pack)).read(buf, 0, length, offset);
          return buf.subarray(0, bytesRead);
        } catch (e) {
          throw io.ioError(e, `cannot read pack ${pack}`);
        }
      },
      newPack: () => this.repackWriter(),
      writeSegment: (packs) => this.writeSegment(new Set([...packs].filter((p) => this.index.hasPack(p)))).catch(() => undefined),
      locations: (kind, id) => this.index.locations(kind, id),
      tombstonesNaming: async (packs) => {
        await this.loadTombstones();
        return tombstonesNaming(this.tombstones, packs);
      },
      tombstone: async (t) => {
        const key = tombstoneKey(t.kind, t.id, t.pack);
        if (this.tombstones.has(key)) return;
        try {
          await this.writeTombstone(key);
          await io.fsyncDir(deleted);
        } catch (e) {
          throw io.ioError(e, `cannot delete ${t.kind} ${t.id}`);
        }
        this.index.hide(t.kind, t.id, t.pack);
      },
      removePacks: async (packs) => {
        const dirs = new Set<string>();
        try {
          for (const p of packs) {
            await io.unlink(this.packPath(p), true);
            dirs.add(path.dirname(this.packPath(p)));
          }
          for (const d of dirs) await io.fsyncDir(d);
        } catch (e) {
          throw io.ioError(e, 'cannot remove a repacked pack');
        }
        this.forgetPacks(packs);
      },
      done: () => this.index.compact(),
      removeTombstones: async (ts) => {
        if (!ts.length) return;
        try {
          for (const t of ts) {
            const key = tombstoneKey(t.kind, t.id, t.pack);
            await io.unlink(path.join(deleted, key), true);
            this.tombstones.delete(key);
          }
          await io.fsyncDir(deleted);
        } catch (e) {
          throw io.ioError(e, 'cannot remove the tombstones of a repacked pack');
        }
      },
    };
  }

  /** Checks every stored byte against its digest, without any repository key (local-scrub.ts). */
  async *scrub(): AsyncGenerator<ScrubProblem> {
    await this.flush();
    yield* scrubDirectory(this.dir);
  }

  /** Removes old temporary files, except journals (live writers' or recovered by now). */
  private async removeStaleTemp(): Promise<void> {
    const tmp = path.join(this.dir, 'tmp');
    const now = Date.now();
    for (const n of await fs.readdir(tmp).catch(() => [] as string[])) {
      if (/\.\d+-\d+\.pack$/.test(n)) continue;
      const p = path.join(tmp, n);
      const st = await fs.stat(p).catch(() => undefined);
      if (st && now - st.mtimeMs > STALE_TMP_MS) await fs.rm(p, { force: true }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    try {
      await this.seal();
      // A segment for the packs no segment covers yet, so the next open need not read their footers.
      if (this.uncovered.size) await this.writeSegment(new Set(this.uncovered)).catch(() => undefined);
    } finally {
      const handles = [...this.openPacks.values()];
      this.openPacks.clear();
      await Promise.all(handles.map((h) => h.then((x) => x.close()).catch(() => undefined)));
    }
  }
}
