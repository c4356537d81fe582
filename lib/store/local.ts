/**
 * LocalStore: a repository's objects in a local directory (format-spec/
 * local-store.md). Used for local repositories and, one directory per
 * client, by obnam-server. It is the packed store (packed.ts) on a local
 * blob backend (lib/blob/local.ts), with a journal area in DIR/tmp/
 * (local-journals.ts), so that packs are written as they fill, never held
 * whole in memory:
 *
 *   DIR/obnam-store          marker: "obnam local store 2"
 *   DIR/config/ID ...        config, keys, snapshots, ...: one framed file each
 *   DIR/packs/AB/PACKID      trees and chunks, in packs (see pack-format.ts)
 *   DIR/index/SEG            index segments
 *   DIR/deleted/KIND-ID-PACK tombstones: this copy of a packed object is deleted
 *   DIR/tmp/                 files being written, and journals
 *
 * What is local only: the marker (and the upgrade from layout 1), the
 * directories made by create, locate() for tests and reports, and a scrub
 * that also checks the journals of live writers (local-scrub.ts).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LocalBlobBackend } from '../blob/local.js';
import { errnoCode, ObnamError } from '../errors.js';
import type { Kind } from '../format/version.js';
import { FRAME_HEADER_BYTES } from './framing.js';
import { LocalJournals } from './local-journals.js';
import { FILE_DIRS, framedPath, INDEX_DIR, MARKER, MARKER_TEXT, MARKER_TEXT_V1, PACKED, packPath, SHARDS } from './local-layout.js';
import { ScrubProblem, scrubDirectory } from './local-scrub.js';
import * as io from './localfs.js';
import { ownerTag } from '../util/owner.js';
import { PackedStoreBase } from './packed.js';
import { RECORD_HEADER_BYTES } from './pack-format.js';
import type { FileRecord, FileRecordLocator } from './store.js';
import { isId } from '../format/ids.js';

export type { ScrubProblem } from './local-scrub.js';

export interface LocalStoreOptions {
  /** Target pack size in bytes. */
  packSize?: number;
  /**
   * flush() makes objects durable by syncing the open pack's journal instead
   * of finishing the pack (obnam-server, which flushes for every request:
   * otherwise each request would make a pack). Objects flushed this way are
   * visible to other processes through the journal and become a pack at the
   * target size or at close (or are recovered after a crash).
   */
  journalFlush?: boolean;
  /** The clock (tests). */
  now?: () => number;
}

export class LocalStore extends PackedStoreBase implements FileRecordLocator {
  private constructor(
    readonly dir: string,
    opts: LocalStoreOptions,
  ) {
    super(new LocalBlobBackend(dir), { ...opts, journals: new LocalJournals(dir) });
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

  /** Opens an existing store and loads its index; NO_REPOSITORY if `dir` is not one. */
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
    await store.load();
    if (marker === MARKER_TEXT_V1) await store.migrateFromV1();
    else await store.compactSegments();
    return store;
  }

  static async exists(dir: string): Promise<boolean> {
    try {
      await fs.access(path.join(path.resolve(dir), MARKER));
      return true;
    } catch {
      return false;
    }
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

  /** The repack lock of a local directory holds the owner tag only (local-store.md 5.1), as it always has. */
  protected override lockText(): string {
    return ownerTag();
  }

  /** Where an object's bytes are on disk (for tests that damage objects, and for scrub reports). */
  locate(kind: Kind, id: string): { file: string; offset: number; length: number } | undefined {
    if (!PACKED.has(kind)) return { file: framedPath(this.dir, kind, id), offset: FRAME_HEADER_BYTES, length: -1 };
    const loc = this.where(kind, id);
    return loc && { file: loc.journal ?? packPath(this.dir, loc.pack), offset: loc.offset, length: loc.length };
  }

  /**
   * Where a packed object's record is, for a worker thread to read itself
   * (FileRecordLocator): only objects in a finished pack, not in a journal
   * (this process's pack being filled, or another writer's). No refresh:
   * undefined sends the caller to get().
   */
  fileRecord(kind: Kind, id: string): FileRecord | undefined {
    if (!PACKED.has(kind) || !isId(id)) return undefined;
    const loc = this.where(kind, id);
    if (!loc || loc.journal) return undefined;
    return { file: packPath(this.dir, loc.pack), offset: loc.offset - RECORD_HEADER_BYTES, length: loc.length, pack: loc.pack };
  }

  /** Checks every stored byte against its digest, without any repository key (local-scrub.ts). */
  override async *scrub(): AsyncGenerator<ScrubProblem> {
    await this.flush();
    yield* scrubDirectory(this.dir);
  }
}
