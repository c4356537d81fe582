/**
 * LocalStore: objects as files in a directory. Used for local repositories
 * and, one namespace per client, by obnam-server (one engine, not two).
 *
 *   DIR/obnam-store          marker: "obnam local store 1"
 *   DIR/config/ID            kinds with few objects: flat
 *   DIR/keys/ID
 *   DIR/snapshots/ID
 *   DIR/trees/AB/ID          trees and chunks: sharded by the id's first byte
 *   DIR/chunks/AB/ID
 *   DIR/tmp/                 files being written
 *
 * A put writes a temp file, fsyncs it, links it to its final name (link fails
 * if the name exists, so nothing is ever overwritten and two writers of the
 * same object are safe), fsyncs the directory, then removes the temp name.
 * File operations come from localfs.ts: async on event loops, blocking in
 * worker threads.
 * An interrupted put leaves at most a temp file, never a partial object.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errnoCode, ObnamError, throwIfAborted } from '../errors.js';
import { sha256 } from '../crypto/hash.js';
import { isId } from '../format/ids.js';
import { Kind, KINDS } from '../format/version.js';
import { frameHeader, unframe } from './framing.js';
import { asyncOps, blockingOps, LocalFileOps } from './localfs.js';
import { ObjectStore, StoreOptions } from './store.js';

const MARKER = 'obnam-store';
const MARKER_TEXT = 'obnam local store 1\n';
const DIRS: Record<Kind, string> = {
  config: 'config',
  key: 'keys',
  snapshot: 'snapshots',
  tree: 'trees',
  chunk: 'chunks',
};
const SHARDED: ReadonlySet<Kind> = new Set<Kind>(['tree', 'chunk']);
const HEX = '0123456789abcdef';

export interface PutOptions extends StoreOptions {
  /** SHA-256 of `data` as computed by the sender; the put fails with CORRUPT if it differs. */
  sha256?: Uint8Array;
}

export interface LocalStoreOptions {
  /**
   * Use blocking file system calls. Only for worker threads, where blocking
   * is harmless and much cheaper than Node's async thread-pool hand-off.
   */
  blocking?: boolean;
}

export class LocalStore implements ObjectStore {
  readonly location: string;
  private readonly dirSyncs = new Map<string, Promise<void>>();
  private readonly io: LocalFileOps;

  private constructor(
    readonly dir: string,
    opts: LocalStoreOptions = {},
  ) {
    this.location = dir;
    this.io = opts.blocking ? blockingOps : asyncOps;
  }

  /** Creates the directory layout (idempotent) and returns the store. */
  static async create(dir: string): Promise<LocalStore> {
    const abs = path.resolve(dir);
    await fs.mkdir(abs, { recursive: true, mode: 0o700 });
    await fs.mkdir(path.join(abs, 'tmp'), { recursive: true, mode: 0o700 });
    for (const kind of KINDS) {
      const d = path.join(abs, DIRS[kind]);
      await fs.mkdir(d, { recursive: true, mode: 0o700 });
      if (SHARDED.has(kind)) {
        for (let i = 0; i < 256; i++) {
          await fs.mkdir(path.join(d, HEX[i >> 4]! + HEX[i & 15]!), { recursive: true, mode: 0o700 });
        }
      }
    }
    await fs.writeFile(path.join(abs, MARKER), MARKER_TEXT, { mode: 0o600 });
    return new LocalStore(abs);
  }

  /** Opens an existing store; NO_REPOSITORY if `dir` is not one. */
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
    if (marker !== MARKER_TEXT) {
      throw new ObnamError('UNSUPPORTED_VERSION', `${abs} holds an obnam store layout this version does not know`);
    }
    return new LocalStore(abs, opts);
  }

  static async exists(dir: string): Promise<boolean> {
    try {
      await fs.access(path.join(path.resolve(dir), MARKER));
      return true;
    } catch {
      return false;
    }
  }

  /** The file that holds an object (exported for tests and scrub). */
  objectPath(kind: Kind, id: string): string {
    if (!isId(id)) throw new ObnamError('NOT_FOUND', `invalid object id ${JSON.stringify(String(id).slice(0, 80))}`);
    const base = path.join(this.dir, DIRS[kind]);
    return SHARDED.has(kind) ? path.join(base, id.slice(0, 2), id) : path.join(base, id);
  }

  async put(kind: Kind, id: string, data: Uint8Array, opts: PutOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    const final = this.objectPath(kind, id);
    const digest = sha256(data);
    if (opts.sha256 && !digest.equals(Buffer.from(opts.sha256))) {
      throw new ObnamError('CORRUPT', `${kind} ${id}: received bytes do not match the sender's SHA-256 digest`);
    }
    if (await this.has(kind, id)) return false;
    const tmp = path.join(this.dir, 'tmp', `${id}.${randomBytes(6).toString('hex')}`);
    let created = false;
    try {
      await this.io.writeDurable(tmp, [frameHeader(digest), data]);
      throwIfAborted(opts.signal);
      created = await this.io.linkNoReplace(tmp, final);
      if (created) await this.syncDir(path.dirname(final));
    } catch (e) {
      if (e instanceof ObnamError) throw e;
      throw new ObnamError('IO', `cannot store ${kind} ${id}: ${(e as Error).message}`);
    } finally {
      await this.io.unlink(tmp, true).catch(() => undefined);
    }
    return created;
  }

  async get(kind: Kind, id: string, opts: StoreOptions = {}): Promise<Uint8Array> {
    throwIfAborted(opts.signal);
    const file = await this.readFramed(kind, id);
    return unframe(file, `${kind} ${id}`).data;
  }

  /** The framed file as stored: digest and bytes, for scrub and for serving. */
  async readFramed(kind: Kind, id: string): Promise<Buffer> {
    try {
      return await this.io.readFile(this.objectPath(kind, id));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      throw new ObnamError('IO', `cannot read ${kind} ${id}: ${(e as Error).message}`);
    }
  }

  async has(kind: Kind, id: string, opts: StoreOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    if (!isId(id)) return false;
    try {
      return await this.io.exists(this.objectPath(kind, id));
    } catch (e) {
      throw new ObnamError('IO', `cannot check ${kind} ${id}: ${(e as Error).message}`);
    }
  }

  hasMany(kind: Kind, ids: readonly string[], opts: StoreOptions = {}): Promise<boolean[]> {
    return Promise.all(ids.map((id) => this.has(kind, id, opts)));
  }

  async *list(kind: Kind, opts: StoreOptions = {}): AsyncIterable<string> {
    const base = path.join(this.dir, DIRS[kind]);
    const dirs = SHARDED.has(kind) ? Array.from({ length: 256 }, (_, i) => path.join(base, HEX[i >> 4]! + HEX[i & 15]!)) : [base];
    for (const d of dirs) {
      throwIfAborted(opts.signal);
      let handle;
      try {
        handle = await fs.opendir(d, { bufferSize: 256 });
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue;
        throw new ObnamError('IO', `cannot list ${d}: ${(e as Error).message}`);
      }
      for await (const ent of handle) {
        if (isId(ent.name) && (!SHARDED.has(kind) || ent.name.startsWith(path.basename(d)))) yield ent.name;
      }
    }
  }

  async delete(kind: Kind, id: string, opts: StoreOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    const p = this.objectPath(kind, id);
    try {
      await this.io.unlink(p);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
      throw new ObnamError('IO', `cannot delete ${kind} ${id}: ${(e as Error).message}`);
    }
    await this.syncDir(path.dirname(p));
  }

  async close(): Promise<void> {
    await Promise.all(this.dirSyncs.values());
  }

  /**
   * fsyncs a directory so a new name in it is durable. Concurrent callers for
   * the same directory that arrive while a sync is queued share it (group
   * commit), which keeps many small puts from costing one fsync each.
   */
  private syncDir(dir: string): Promise<void> {
    const pending = this.dirSyncs.get(dir);
    if (pending) return pending;
    const p = (async () => {
      await Promise.resolve();
      this.dirSyncs.delete(dir);
      await this.io.fsyncDir(dir);
    })();
    this.dirSyncs.set(dir, p);
    return p;
  }
}
