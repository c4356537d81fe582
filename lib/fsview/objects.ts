/**
 * The repository objects a file-system view needs (decoded trees, decrypted
 * chunks, snapshots), read through the repository's ObjectReader view and
 * kept in an ObjectCache.
 *
 * Trees are cached compact (compact.ts): a walk through a snapshot keeps
 * names and attributes, not the inline contents of the files it passes;
 * fullTree reads a node with those contents, for opening a file.
 *
 * The reader does the expensive part: fetching, decrypting, decompressing and
 * checking an object against its id. In the mount it is poolReader, which
 * does that on the worker pool, so none of it runs on the event loop; only
 * the decoding of trees and snapshots (the repository's own, lib/repo/views.ts)
 * happens on the main thread. Any failure to read an object becomes an
 * FsError UNREADABLE naming the object.
 */
import { describeError } from '../errors.js';
import type { TreeNode } from '../format/tree.js';
import type { Kind } from '../format/version.js';
import { decodeSnapshotObject, decodeTreeObject, ObjectReader, SnapshotInfo } from '../repo/views.js';
import type { TaskRunner } from '../workers/protocol.js';
import type { FsviewTasks } from './worker-tasks.js';
import { ObjectCache } from './cache.js';
import { compactSize, compactTree } from './compact.js';
import { FsError } from './errors.js';

/**
 * An ObjectReader that fetches, decrypts and verifies every object on the
 * repository's worker pool; trees and snapshots are decoded here. In a
 * shared repository (format version 3: `shared` given) trees are read with
 * the content keys of their references, and snapshots through the main
 * thread's repository, which holds the identity.
 */
export function poolReader(pool: TaskRunner<FsviewTasks>, shared?: Pick<ObjectReader, 'getSnapshot'>): ObjectReader {
  const load = (kind: Kind, id: string, key?: Uint8Array) => pool.run({ op: 'load', kind, id, key });
  return {
    getObject: (kind, id, opts) => load(kind, id, opts?.key),
    getTree: async (id, opts) => decodeTreeObject(id, await load('tree', id, opts?.key), !!shared),
    getSnapshot: shared ? (id, opts) => shared.getSnapshot(id, opts) : async (id) => decodeSnapshotObject(id, await load('snapshot', id)),
  };
}

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

/** Bytes of full tree nodes (inline contents included) kept for opening files, at most. */
export const FULL_TREE_BYTES = 4 * 1024 * 1024;

export class RepoObjects {
  /** The few full nodes last needed for their inline contents (files being opened). */
  readonly fullTrees: ObjectCache;

  constructor(
    private readonly reader: ObjectReader,
    readonly cache: ObjectCache,
  ) {
    this.fullTrees = new ObjectCache(Math.min(FULL_TREE_BYTES, cache.maxBytes));
  }

  /**
   * A decoded tree node, compact (compact.ts): without the inline contents
   * of its files and holding no part of its plaintext. What paths, listings
   * and attributes need.
   */
  tree(id: string, key?: Uint8Array): Promise<TreeNode> {
    return this.cache.get(`tree:${id}`, () => this.read('tree', id, async () => compactTree(await this.reader.getTree(id, { key }))), compactSize);
  }

  /** A decoded tree node as stored, inline file contents included (kept in a small cache of its own). */
  fullTree(id: string, key?: Uint8Array): Promise<TreeNode> {
    return this.fullTrees.get(`tree:${id}`, () => this.read('tree', id, () => this.reader.getTree(id, { key })), compactSize);
  }

  /** A chunk's plaintext. */
  chunk(id: string, key?: Uint8Array): Promise<Buffer> {
    return this.cache.get(`chunk:${id}`, () => this.read('chunk', id, async () => asBuffer(await this.reader.getObject('chunk', id, { key }))), (b) => b.length);
  }

  /** A chunk's plaintext fetched from the repository now, neither taken from the cache nor kept in it. */
  chunkFromRepository(id: string, key?: Uint8Array): Promise<Buffer> {
    return this.read('chunk', id, async () => asBuffer(await this.reader.getObject('chunk', id, { key })));
  }

  /** Starts loading a chunk into the cache; resolves (never rejects) when done. */
  prefetchChunk(id: string, key?: Uint8Array): Promise<void> {
    if (this.cache.has(`chunk:${id}`)) return Promise.resolve();
    return this.chunk(id, key).then(
      () => undefined,
      () => undefined, // a read that needs it will fetch it again and report the failure
    );
  }

  /** A snapshot object, decoded. */
  snapshot(id: string): Promise<SnapshotInfo> {
    return this.read('snapshot', id, () => this.reader.getSnapshot(id));
  }

  private async read<T>(kind: Kind, id: string, get: () => Promise<T>): Promise<T> {
    try {
      return await get();
    } catch (e) {
      throw new FsError('UNREADABLE', `${kind} ${id}: ${describeError(e)}`, { cause: e });
    }
  }
}
