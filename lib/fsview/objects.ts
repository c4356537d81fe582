/**
 * The repository objects a file-system view needs (decoded trees, decrypted
 * chunks, snapshots), read through the repository's ObjectReader view and
 * kept in an ObjectCache.
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

/** A rough in-memory size of a decoded tree node, for the cache's byte budget. */
function treeSize(node: TreeNode): number {
  let bytes = 0;
  if (node.kind === 'index') for (const p of node.pages) bytes += 200 + p.first.length;
  else for (const e of node.entries) bytes += 260 + e.name.length + (e.data?.length ?? 0) + 48 * (e.chunks?.length ?? 0) + (e.target?.length ?? 0) + (e.link?.length ?? 0);
  return bytes;
}

export class RepoObjects {
  constructor(
    private readonly reader: ObjectReader,
    readonly cache: ObjectCache,
  ) {}

  /** A decoded tree node. */
  tree(id: string, key?: Uint8Array): Promise<TreeNode> {
    return this.cache.get(`tree:${id}`, () => this.read('tree', id, () => this.reader.getTree(id, { key })), treeSize);
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
