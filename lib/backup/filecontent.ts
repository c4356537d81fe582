/**
 * Backs up one file's content: read, chunk, hash, skip chunks the store
 * already has, seal and store the rest. Runs inside a worker thread (see
 * lib/workers/worker.ts), one call per changed file.
 */
import * as fs from 'node:fs';
import { errnoCode, ObnamError, throwIfAborted } from '../errors.js';
import type { Repository } from '../repo/repository.js';

export interface FileContentResult {
  chunks: [string, number][];
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

const MAX_PENDING_PUTS = 3;
const READ_BLOCK = 1 << 20;

/** Read buffers (max chunk size + one read) reused across files: allocating one per file is costly. */
const freeBuffers: Uint8Array[] = [];

function takeBuffer(size: number): Uint8Array {
  const b = freeBuffers.pop();
  return b && b.length === size ? b : new Uint8Array(size);
}

export async function backupFileContent(
  repo: Repository,
  path: Buffer,
  recent: RecentIds,
  onProgress?: (bytes: number) => void,
  signal?: AbortSignal,
): Promise<FileContentResult> {
  let fd: number;
  try {
    fd = openNoAtime(path);
  } catch (e) {
    throw fileError(path, e);
  }
  const chunker = repo.chunker();
  const result: FileContentResult = { chunks: [], size: 0, newChunks: 0, newBytes: 0, storedBytes: 0 };
  const pending: Promise<void>[] = [];

  const store = async (chunk: Uint8Array): Promise<void> => {
    const id = repo.contentId(chunk);
    result.chunks.push([id, chunk.length]);
    if (recent.has(id)) return;
    recent.add(id);
    const put = (async () => {
      if (await repo.store.has('chunk', id, { signal })) return;
      const sealed = repo.seal('chunk', id, chunk);
      const storedBytes = sealed.length; // read before put: the bytes may be transferred away
      if (await repo.store.put('chunk', id, sealed, { signal })) {
        result.newChunks++;
        result.newBytes += chunk.length;
        result.storedBytes += storedBytes;
      }
    })();
    pending.push(put);
    if (pending.length >= MAX_PENDING_PUTS) await pending.shift();
  };

  const buf = takeBuffer(chunker.max + READ_BLOCK);
  try {
    let len = 0;
    let eof = false;
    while (!eof) {
      throwIfAborted(signal);
      const want = Math.min(READ_BLOCK, buf.length - len);
      let n: number;
      try {
        // Blocking read: this runs in a worker thread (see inspect.ts for why).
        n = fs.readSync(fd, buf, len, want, null);
      } catch (e) {
        throw fileError(path, e);
      }
      if (n === 0) eof = true;
      len += n;
      result.size += n;
      onProgress?.(n);
      let start = 0;
      while (start < len) {
        const c = chunker.cut(buf, start, len, eof);
        if (c < 0) break;
        await store(buf.slice(start, start + c));
        start += c;
      }
      buf.copyWithin(0, start, len);
      len -= start;
    }
    await Promise.all(pending);
  } finally {
    await Promise.allSettled(pending);
    fs.closeSync(fd);
    if (freeBuffers.length < 2) freeBuffers.push(buf);
  }
  return result;
}

function openNoAtime(path: Buffer): number {
  const { O_RDONLY, O_NOATIME, O_NOFOLLOW } = fs.constants;
  try {
    return fs.openSync(path, O_RDONLY | O_NOATIME | O_NOFOLLOW);
  } catch (e) {
    // O_NOATIME is allowed only to the file's owner (or root).
    if (errnoCode(e) === 'EPERM') return fs.openSync(path, O_RDONLY | O_NOFOLLOW);
    throw e;
  }
}

/**
 * A failure to read the source file (as opposed to a failure of the
 * repository): the backup reports it, leaves the file out and goes on.
 */
export class SourceFileError extends ObnamError {}

function fileError(path: Buffer, e: unknown): ObnamError {
  if (e instanceof ObnamError) return e;
  const code = errnoCode(e);
  const kind = code === 'EACCES' || code === 'EPERM' ? 'PERMISSION' : code === 'ENOENT' ? 'NOT_FOUND' : 'IO';
  return new SourceFileError(kind, `cannot read ${path}: ${(e as Error).message}`);
}
