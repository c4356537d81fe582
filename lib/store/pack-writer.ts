/**
 * A pack being written: each object is appended to a temporary file as it
 * arrives (so a pack never sits whole in memory), and the index and footer
 * are added when the pack is finished. Until its write completes an object
 * is also held in memory, so it can be read back at once.
 *
 * The temporary file is a journal: sync() makes every object added so far
 * durable without finishing the pack, and if the writer dies, the next
 * process to open the store recovers the complete records (pack-recover.ts).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Kind } from '../format/version.js';
import { ownerTag } from '../util/owner.js';
import { writeAll } from './localfs.js';
import { PACK_HEADER_BYTES, PackEntry, packHeader, packTrailer, RECORD_HEADER_BYTES, recordHeader } from './pack-format.js';

export class PackWriter {
  readonly id = randomBytes(32).toString('hex');
  readonly entries: PackEntry[] = [];
  /** Bytes in the pack so far (header and records). */
  size = PACK_HEADER_BYTES;
  /** Bytes added but not yet written to the file. */
  backlog = 0;
  private readonly byKey = new Map<string, PackEntry>();
  private readonly inMemory = new Map<string, Uint8Array>();
  private file?: Promise<fs.FileHandle>;
  private writing: Promise<void> = Promise.resolve();
  private finished = false;
  /** Where the finished pack can be read: its temporary name, then its final one. */
  readPath: string;

  readonly tmpPath: string;

  /** `tmpDir`: where the journal lives, named PACKID.OWNER.pack (OWNER: util/owner.ts). */
  constructor(tmpDir: string) {
    this.tmpPath = path.join(tmpDir, `${this.id}.${ownerTag()}.pack`);
    this.readPath = this.tmpPath;
  }

  private open(): Promise<fs.FileHandle> {
    this.file ??= fs.open(this.tmpPath, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600).then(async (fh) => {
      try {
        await writeAll(fh, [packHeader()], 0);
      } catch (e) {
        await fh.close().catch(() => undefined);
        throw e;
      }
      return fh;
    });
    return this.file;
  }

  add(kind: Kind, id: string, data: Uint8Array, digest: Buffer): void {
    const key = `${kind}/${id}`;
    const at = this.size;
    const offset = at + RECORD_HEADER_BYTES;
    const entry: PackEntry = { kind, id, offset, length: data.length, digest };
    this.entries.push(entry);
    this.byKey.set(key, entry);
    this.inMemory.set(key, data);
    this.size = offset + data.length;
    this.backlog += data.length;
    const parts = [recordHeader(kind, id, data.length, digest), data];
    this.writing = this.writing.then(async () => {
      const fh = await this.open();
      // A short write (a disk filling up) is never taken as a written record (localfs.ts).
      await writeAll(fh, parts, at);
      this.backlog -= data.length;
      this.inMemory.delete(key);
    });
    this.writing.catch(() => undefined); // surfaced by drained() and finish()
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  /** Resolves when everything added so far is in the file (not yet durable). */
  drained(): Promise<void> {
    return this.writing;
  }

  private synced = 0;
  private syncing?: Promise<void>;

  /** How many of `entries` (from the first) an fsync has made durable. */
  get durableCount(): number {
    return this.synced;
  }

  /**
   * Makes every object added so far durable (fsync of the journal).
   * Concurrent callers share fsyncs: one covers all objects added before it.
   */
  async sync(): Promise<void> {
    const upTo = this.entries.length;
    while (this.synced < upTo) {
      if (!this.syncing) {
        const covers = this.entries.length;
        this.syncing = (async () => {
          await this.writing;
          // A pack being finished (its file about to close) is made durable by finish(): wait for that.
          if (this.finishing) await this.finishing;
          else await (await this.open()).sync();
          this.synced = Math.max(this.synced, covers);
        })().finally(() => (this.syncing = undefined));
      }
      await this.syncing;
    }
  }

  /** An object of this pack, readable before the pack is finished. */
  async lookup(kind: Kind, id: string): Promise<{ data: Uint8Array; digest: Buffer } | undefined> {
    const key = `${kind}/${id}`;
    const entry = this.byKey.get(key);
    if (!entry) return undefined;
    const held = this.inMemory.get(key);
    if (held) return { data: held, digest: entry.digest };
    const data = Buffer.allocUnsafe(entry.length);
    if (this.finished) {
      // Being moved into place by the store: read through a handle of our own.
      const fh = await fs.open(this.readPath, 'r');
      try {
        await fh.read(data, 0, entry.length, entry.offset);
      } finally {
        await fh.close();
      }
    } else {
      await (await this.open()).read(data, 0, entry.length, entry.offset);
    }
    return { data, digest: entry.digest };
  }

  digestOf(kind: Kind, id: string): Buffer | undefined {
    return this.byKey.get(`${kind}/${id}`)?.digest;
  }

  private finishing?: Promise<void>;

  /** Appends the index and footer, fsyncs and closes the file (once: later calls wait for the first). */
  finish(): Promise<void> {
    this.finishing ??= this.finishFile();
    return this.finishing;
  }

  private async finishFile(): Promise<void> {
    await this.writing;
    const fh = await this.open();
    try {
      const trailer = packTrailer(this.entries);
      await writeAll(fh, [trailer], this.size);
      await fh.sync();
    } finally {
      this.finished = true;
      await fh.close();
    }
  }

  /** Closes the file without finishing it (the caller removes it). */
  async abandon(): Promise<void> {
    await this.writing.catch(() => undefined);
    // The file may never have opened (a full disk while writing its header).
    if (this.file) await this.file.then((fh) => fh.close()).catch(() => undefined);
  }
}
