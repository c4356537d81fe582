/**
 * The repository objects a file-system view needs (decoded trees, decrypted
 * chunks, snapshots), fetched through a loader and kept in an ObjectCache.
 *
 * The loader does the expensive part: fetching, decrypting, decompressing and
 * checking an object against its id. In the mount it is the worker pool
 * (poolLoader), so none of that runs on the event loop; only the CBOR
 * decoding of trees happens here. Any failure to load an object becomes an
 * FsError UNREADABLE naming the object.
 */
import { describeError } from '../errors.js';
import { decodeCbor } from '../format/cbor.js';
import { decodeSnapshot } from '../format/snapshot.js';
import { decodeTreeNode, TreeNode } from '../format/tree.js';
import type { Kind } from '../format/version.js';
import type { SnapshotInfo } from '../repo/repository.js';
import type { TaskRunner } from '../workers/protocol.js';
import type { FsviewTasks } from './worker-tasks.js';
import { ObjectCache } from './cache.js';
import { FsError } from './errors.js';

/** Fetches one object's plaintext, decrypted and verified against its id. */
export type ObjectLoader = (kind: Kind, id: string) => Promise<Uint8Array>;

/** A loader that runs every fetch on the repository's worker pool. */
export function poolLoader(pool: TaskRunner<FsviewTasks>): ObjectLoader {
  return (kind, id) => pool.run({ op: 'load', kind, id });
}

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

/** A rough in-memory size of a decoded tree node, for the cache's byte budget. */
function treeSize(node: TreeNode, plainBytes: number): number {
  const n = node.kind === 'leaf' ? node.entries.length : node.pages.length;
  return plainBytes + 200 * n;
}

export class RepoObjects {
  constructor(
    private readonly load: ObjectLoader,
    readonly cache: ObjectCache,
  ) {}

  /** A decoded tree node. */
  tree(id: string): Promise<TreeNode> {
    let plainBytes = 0;
    return this.cache.get(
      `tree:${id}`,
      () =>
        this.fetch('tree', id).then((plain) => {
          plainBytes = plain.length;
          try {
            return decodeTreeNode(decodeCbor(plain, `tree ${id}`), `tree ${id}`);
          } catch (e) {
            throw new FsError('UNREADABLE', `tree ${id}: ${describeError(e)}`, { cause: e });
          }
        }),
      (node) => treeSize(node, plainBytes),
    );
  }

  /** A chunk's plaintext. */
  chunk(id: string): Promise<Buffer> {
    return this.cache.get(`chunk:${id}`, () => this.fetch('chunk', id), (b) => b.length);
  }

  /** A chunk's plaintext fetched from the repository now, neither taken from the cache nor kept in it. */
  chunkFromRepository(id: string): Promise<Buffer> {
    return this.fetch('chunk', id);
  }

  /** Starts loading a chunk into the cache; resolves (never rejects) when done. */
  prefetchChunk(id: string): Promise<void> {
    if (this.cache.has(`chunk:${id}`)) return Promise.resolve();
    return this.chunk(id).then(
      () => undefined,
      () => undefined, // a read that needs it will fetch it again and report the failure
    );
  }

  /** A snapshot object, decoded. */
  async snapshot(id: string): Promise<SnapshotInfo> {
    const plain = await this.fetch('snapshot', id);
    try {
      return { id, ...decodeSnapshot(decodeCbor(plain, `snapshot ${id}`), `snapshot ${id}`) };
    } catch (e) {
      throw new FsError('UNREADABLE', `snapshot ${id}: ${describeError(e)}`, { cause: e });
    }
  }

  private async fetch(kind: Kind, id: string): Promise<Buffer> {
    try {
      return asBuffer(await this.load(kind, id));
    } catch (e) {
      throw new FsError('UNREADABLE', `${kind} ${id}: ${describeError(e)}`, { cause: e });
    }
  }
}
