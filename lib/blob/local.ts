/**
 * LocalBlobBackend: blobs as files under a directory, one file per blob at
 * DIR/NAME. Writes are atomic and durable: the bytes go to DIR/tmp/ first
 * (O_EXCL, fsync), are linked to the final name without replacing
 * (link(2); rename(2) where the file system has no hard links), and the
 * directory is fsynced. `tmp/` is the backend's own and never listed.
 * Files read by range stay open (open-files.ts), up to 64, until deleted.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errnoCode, ObnamError, throwIfAborted } from '../errors.js';
import * as io from '../store/localfs.js';
import { ioError } from '../store/localfs.js';
import type { StoreOptions } from '../store/store.js';
import { BlobBackend, BlobInfo, ByteRange, checkBlobName } from './backend.js';
import { OpenFiles } from './open-files.js';

export const BLOB_TMP = 'tmp';
const MAX_OPEN_FILES = 64;
/** Stats in flight while listing one directory. */
const LIST_STATS = 32;

export class LocalBlobBackend implements BlobBackend {
  readonly atomicCreate = true;
  readonly location: string;
  /** Ranged reads (records of packs) reuse open files: a restore reads many records of one pack. */
  private readonly handles = new OpenFiles(MAX_OPEN_FILES);

  constructor(readonly dir: string) {
    this.dir = path.resolve(dir);
    this.location = this.dir;
  }

  /** Makes the directory (and its tmp/) if missing. */
  static async create(dir: string): Promise<LocalBlobBackend> {
    const b = new LocalBlobBackend(dir);
    await fs.mkdir(path.join(b.dir, BLOB_TMP), { recursive: true, mode: 0o700 });
    return b;
  }

  private file(name: string): string {
    checkBlobName(name);
    if (name === BLOB_TMP || name.startsWith(`${BLOB_TMP}/`)) throw new Error(`blob name ${name} is reserved`);
    return path.join(this.dir, ...name.split('/'));
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[], opts: StoreOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    const final = this.file(name);
    if (await io.exists(final).catch(() => false)) return false;
    const tmp = path.join(this.dir, BLOB_TMP, `${path.basename(final)}.${randomBytes(6).toString('hex')}`);
    try {
      await fs.mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
      await fs.mkdir(path.dirname(tmp), { recursive: true, mode: 0o700 });
      await io.writeDurable(tmp, data instanceof Uint8Array ? [data] : [...data]);
      const created = await io.linkNoReplace(tmp, final);
      if (created) await io.fsyncDir(path.dirname(final));
      return created;
    } catch (e) {
      throw ioError(e, `cannot store ${name} in ${this.dir}`);
    } finally {
      await io.unlink(tmp, true).catch(() => undefined);
    }
  }

  async get(name: string, range?: ByteRange, opts: StoreOptions = {}): Promise<Buffer> {
    throwIfAborted(opts.signal);
    const file = this.file(name);
    try {
      if (!range) return await fs.readFile(file);
      const h = await this.handles.acquire(file);
      try {
        const length = range.length ?? Math.max(0, (await h.fh.stat()).size - range.offset);
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await h.fh.read(buf, 0, length, range.offset);
        if (bytesRead !== length) throw new ObnamError('CORRUPT', `${name}: range ${range.offset}+${length} is past the end of the blob`);
        return buf;
      } finally {
        this.handles.release(h);
      }
    } catch (e) {
      if (e instanceof ObnamError) throw e;
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') throw new ObnamError('NOT_FOUND', `${name} not found`);
      throw ioError(e, `cannot read ${name} in ${this.dir}`);
    }
  }

  async stat(name: string, _opts: StoreOptions = {}): Promise<{ size: number } | undefined> {
    try {
      return { size: (await fs.stat(this.file(name))).size };
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw ioError(e, `cannot look at ${name} in ${this.dir}`);
    }
  }

  async *list(prefix: string, opts: StoreOptions = {}): AsyncIterable<BlobInfo> {
    throwIfAborted(opts.signal);
    // The deepest directory the prefix names in full, walked recursively.
    const cut = prefix.lastIndexOf('/');
    const base = cut < 0 ? '' : prefix.slice(0, cut);
    const stack = [base];
    while (stack.length) {
      const rel = stack.pop()!;
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(path.join(this.dir, ...rel.split('/').filter(Boolean)), { withFileTypes: true });
      } catch (e) {
        if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') continue;
        throw ioError(e, `cannot list ${prefix} in ${this.dir}`);
      }
      const files: string[] = [];
      for (const d of entries) {
        const name = rel ? `${rel}/${d.name}` : d.name;
        if (name === BLOB_TMP) continue;
        if (d.isDirectory()) {
          if (name.startsWith(prefix) || prefix.startsWith(`${name}/`)) stack.push(name);
        } else if (d.isFile() && name.startsWith(prefix)) files.push(name);
      }
      // The sizes of one directory's files, several stats at a time (a store may hold many packs).
      for (let i = 0; i < files.length; i += LIST_STATS) {
        const batch = files.slice(i, i + LIST_STATS);
        const stats = await Promise.all(batch.map((n) => fs.stat(path.join(this.dir, ...n.split('/'))).catch(() => undefined)));
        for (const [k, st] of stats.entries()) if (st) yield { name: batch[k]!, size: st.size };
      }
    }
  }

  async delete(name: string, opts: StoreOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    const file = this.file(name);
    this.handles.evict(file);
    try {
      await fs.unlink(file);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
      throw ioError(e, `cannot delete ${name} in ${this.dir}`);
    }
    await io.fsyncDir(path.dirname(file)).catch((e: unknown) => {
      throw ioError(e, `cannot delete ${name} in ${this.dir}`);
    });
    return true;
  }

  async close(): Promise<void> {
    await this.handles.closeAll();
  }
}
