/**
 * Backs up one file's content: read, chunk, hash, skip chunks the store
 * already has, seal and store the rest. Runs inside a worker thread (see
 * lib/backup/worker-tasks.ts), one call per changed file.
 *
 * Reads are asynchronous and large (1 MiB), so their hand-off cost is small
 * and a worker can chunk and seal one file while it waits for another's
 * data. The read buffer is sized to the file (a small file does not get a
 * max-chunk-size buffer) and is not zero-filled: only bytes read are used.
 */
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import { errnoCode, ObnamError, throwIfAborted } from '../errors.js';
import { chunkViews } from '../chunking/fastcdc.js';
import type { ChunkWriter } from '../repo/views.js';

export interface FileContentResult {
  /** [id, length] per chunk, and its content key in format version 3. */
  chunks: [string, number, Uint8Array?][];
  size: number;
  newChunks: number;
  newBytes: number;
  storedBytes: number;
}

/** Ids this thread stored or saw stored recently: repeated chunks skip even the store's has(). */
export class RecentIds {
  private readonly set = new Set<string>();
  constructor(private readonly limit = 65536) {}
  has(id: string): boolean {
    return this.set.has(id);
  }
  add(id: string): void {
    if (this.set.size >= this.limit) this.set.delete(this.set.values().next().value as string);
    this.set.add(id);
  }
}

const MAX_PENDING_PUTS = 4;
const READ_BLOCK = 1 << 20;
/** Progress is reported in steps of this many bytes (each report is a message to the main thread). */
const PROGRESS_STEP = 8 << 20;

/**
 * Read buffers (max chunk size + one read block) kept for the next file: a
 * worker runs a few files at a time, and allocating a buffer per file leaves
 * garbage that the process's memory use carries until it is collected.
 */
const spareBuffers: Buffer[] = [];
const SPARE_BUFFERS = 4;

function takeBuffer(size: number): Buffer {
  // (only full-window buffers are kept, so a spare one always has this size)
  const b = spareBuffers.pop();
  return b && b.length === size ? b : Buffer.allocUnsafeSlow(size);
}

function giveBack(b: Buffer): void {
  if (spareBuffers.length < SPARE_BUFFERS) spareBuffers.push(b);
}

/**
 * A failure to read the source file (as opposed to a failure of the
 * repository): the backup reports it, leaves the file out and goes on.
 */
export class SourceFileError extends ObnamError {}

export async function backupFileContent(
  repo: ChunkWriter,
  path: Buffer,
  expectedSize: number,
  recent: RecentIds,
  onProgress?: (bytes: number) => void,
  signal?: AbortSignal,
): Promise<FileContentResult> {
  let fh: fs.FileHandle;
  try {
    fh = await openNoAtime(path);
  } catch (e) {
    throw fileError(path, e);
  }
  const chunker = repo.chunker();
  const result: FileContentResult = { chunks: [], size: 0, newChunks: 0, newBytes: 0, storedBytes: 0 };
  const pending: Promise<void>[] = [];

  /**
   * Stores one chunk: `chunk` is a view into the read buffer, so it is hashed
   * and sealed before this resolves (no copy of it is kept); only the put of
   * the sealed bytes, which are transferred away at once, may still run.
   */
  const store = async (chunk: Uint8Array): Promise<void> => {
    const at = repo.address('chunk', chunk);
    const id = at.id;
    result.chunks.push(at.key ? [id, chunk.length, at.key] : [id, chunk.length]);
    if (recent.has(id)) return;
    recent.add(id);
    const started = await repo.startPut('chunk', at, chunk, { signal });
    if (!started) return;
    const length = chunk.length;
    const put = started.stored.then((r) => {
      if (r.isNew) {
        result.newChunks++;
        result.newBytes += length;
        result.storedBytes += r.storedBytes;
      }
    });
    pending.push(put);
    if (pending.length >= MAX_PENDING_PUTS) await pending.shift();
  };

  const fullSize = chunker.max + READ_BLOCK;
  const taken: Buffer[] = [];
  const buffer = (size: number): Buffer => {
    if (size !== fullSize) return Buffer.allocUnsafe(size);
    const b = takeBuffer(fullSize);
    taken.push(b);
    return b;
  };
  let unreported = 0;
  const read = async (buf: Uint8Array, offset: number, length: number): Promise<number> => {
    throwIfAborted(signal);
    let n: number;
    try {
      ({ bytesRead: n } = await fh.read(buf, offset, length, null));
    } catch (e) {
      throw fileError(path, e);
    }
    result.size += n;
    unreported += n;
    if (unreported >= PROGRESS_STEP) {
      onProgress?.(unreported);
      unreported = 0;
    }
    return n;
  };
  try {
    for await (const chunk of chunkViews(chunker, read, buffer, expectedSize, READ_BLOCK)) await store(chunk);
    await Promise.all(pending);
  } finally {
    await Promise.allSettled(pending);
    await fh.close();
    for (const b of taken) giveBack(b);
  }
  if (unreported) onProgress?.(unreported);
  return result;
}

async function openNoAtime(path: Buffer): Promise<fs.FileHandle> {
  try {
    return await fs.open(path, fsc.O_RDONLY | fsc.O_NOATIME | fsc.O_NOFOLLOW);
  } catch (e) {
    // O_NOATIME is allowed only to the file's owner (or root).
    if (errnoCode(e) === 'EPERM') return fs.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    throw e;
  }
}

function fileError(path: Buffer, e: unknown): ObnamError {
  if (e instanceof ObnamError) return e;
  const code = errnoCode(e);
  const kind = code === 'EACCES' || code === 'EPERM' ? 'PERMISSION' : code === 'ENOENT' ? 'NOT_FOUND' : 'IO';
  return new SourceFileError(kind, `cannot read ${path}: ${(e as Error).message}`);
}
