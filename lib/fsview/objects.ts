/**
 * The repository objects a file-system view needs (decoded trees, decrypted
 * chunks, snapshots), read through the repository's ObjectReader view and
 * kept in ObjectCaches: chunks in most of the budget, compact trees in a
 * share of their own (TREE_SHARE), so neither pushes the other out.
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
import { CacheStats, ObjectCache } from './cache.js';
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

/**
 * The share of the cache's bytes that compact tree nodes may take (the rest
 * is for chunks), but at least TREE_MIN_BYTES (a leaf of a large directory
 * takes about 2 MiB), and at most half.
 */
export const TREE_SHARE = 1 / 4;
export const TREE_MIN_BYTES = 8 * 1024 * 1024;
/** Bytes of full tree nodes (inline contents included) kept for opening files, at most (and at most a 16th of the cache). */
export const FULL_TREE_BYTES = 4 * 1024 * 1024;

const sum = (a: CacheStats, b: CacheStats): CacheStats => ({ hits: a.hits + b.hits, joined: a.joined + b.joined, loads: a.loads + b.loads, bytes: a.bytes + b.bytes });

export class RepoObjects {
  /** Decrypted chunks. */
  private readonly chunks: ObjectCache;
  /** Compact tree nodes: a walk needs those on its path, so a small share keeps it from fetching a node twice. */
  private readonly trees: ObjectCache;
  /** The few full nodes last needed for their inline contents (files being opened). */
  private readonly fullTrees: ObjectCache;

  /** `cacheBytes`: what the cached chunks and trees may add up to (by their estimated size). */
  constructor(
    private readonly reader: ObjectReader,
    cacheBytes: number,
  ) {
    const full = Math.min(FULL_TREE_BYTES, Math.floor(cacheBytes / 16));
    const trees = Math.floor(Math.min(cacheBytes / 2, Math.max(cacheBytes * TREE_SHARE, TREE_MIN_BYTES)));
    this.fullTrees = new ObjectCache(full);
    this.trees = new ObjectCache(trees);
    this.chunks = new ObjectCache(cacheBytes - trees - full);
  }

  /** What the caches hold and did, added up. */
  stats(): CacheStats {
    return sum(sum(this.chunks.stats(), this.trees.stats()), this.fullTrees.stats());
  }

  /**
   * A decoded tree node, compact (compact.ts): without the inline contents
   * of its files and holding no part of its plaintext. What paths, listings
   * and attributes need.
   */
  tree(id: string, key?: Uint8Array): Promise<TreeNode> {
    return this.trees.get(`tree:${id}`, () => this.read('tree', id, async () => compactTree(await this.reader.getTree(id, { key }))), compactSize);
  }

  /** A decoded tree node as stored, inline file contents included (kept in a small cache of its own). */
  fullTree(id: string, key?: Uint8Array): Promise<TreeNode> {
    return this.fullTrees.get(`tree:${id}`, () => this.read('tree', id, () => this.reader.getTree(id, { key })), compactSize);
  }

  /** A chunk's plaintext. */
  chunk(id: string, key?: Uint8Array): Promise<Buffer> {
    return this.chunks.get(`chunk:${id}`, () => this.read('chunk', id, async () => asBuffer(await this.reader.getObject('chunk', id, { key }))), (b) => b.length);
  }

  /** A chunk's plaintext fetched from the repository now, neither taken from the cache nor kept in it. */
  chunkFromRepository(id: string, key?: Uint8Array): Promise<Buffer> {
    return this.read('chunk', id, async () => asBuffer(await this.reader.getObject('chunk', id, { key })));
  }

  /** Starts loading a chunk into the cache; resolves (never rejects) when done. */
  prefetchChunk(id: string, key?: Uint8Array): Promise<void> {
    if (this.chunks.has(`chunk:${id}`)) return Promise.resolve();
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
