/**
 * What the snapshots reach (format-spec 14.4 M1/M2 and 14.5 S2): every tree
 * node and chunk reachable from any snapshot, in compact id sets. Any
 * snapshot or reachable tree that is missing or fails to open stops the
 * collection (GC_DAMAGED): with damage it cannot know what is reachable.
 */
import { IdSpool } from '../util/id-spool.js';
import { describeError, ObnamError } from '../errors.js';
import type { ObjectInventory, ReferenceReader, SnapshotCatalog } from '../repo/views.js';
import { addReachable, Reachable } from '../repo/treewalk.js';
import { IdList, IdPrefixSet } from '../util/id-prefix-set.js';

/**
 * Sets of what is reachable, by id prefix (membership only). Trees by 16
 * bytes: a false "present" would skip a directory's walk (leaving what only
 * it names unprotected), and needs two ids sharing 128 bits of a keyed hash,
 * as unlikely as an id collision. Chunks by 8 bytes (a quarter of the
 * memory of full ids): a false "present" only keeps a garbage chunk (not a
 * candidate in the mark, kept by the sweep), about once in 10^12 chunks at
 * 10 million reachable ones.
 */
export function emptyReachable(expectedTrees = 1024, expectedChunks = 1024): Reachable {
  return { trees: new IdPrefixSet(expectedTrees), chunks: new IdPrefixSet(expectedChunks, { width: 8 }) };
}

export function damaged(what: string, e: unknown): ObnamError {
  return new ObnamError(
    'GC_DAMAGED',
    `garbage collection stopped without deleting anything more: ${what} (${describeError(e)}); run obnam fsck, forget the damaged snapshots, and prune again`,
    { cause: e },
  );
}

/**
 * Adds what every snapshot in the store reaches to `reach`; returns the
 * number of snapshots. Reads only snapshot roots and tree reference lists,
 * so in a shared repository it needs no identity or content key (sharing.md 10.5).
 */
export async function addSnapshotReachable(repo: Pick<SnapshotCatalog, 'listSnapshotIds'> & ReferenceReader, reach: Reachable, signal?: AbortSignal): Promise<number> {
  const ids: string[] = [];
  for await (const id of repo.listSnapshotIds({ signal })) ids.push(id);
  const load = (id: string) => repo.getTreeRefs(id, { signal });
  for (const id of ids) {
    let tree: string;
    try {
      tree = await repo.getSnapshotRoot(id, { signal });
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
      throw damaged(`snapshot ${id.slice(0, 8)} cannot be read`, e);
    }
    try {
      await addReachable(load, tree, reach);
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
      throw damaged(`a tree of snapshot ${id.slice(0, 8)} is missing or damaged`, e);
    }
  }
  return ids.length;
}

/** Every id of a kind the store lists now, spooled to an unlinked temporary file (the mark's L: no memory per id). */
export async function spoolAll(repo: Pick<ObjectInventory, 'listIds'>, kind: 'tree' | 'chunk', signal?: AbortSignal): Promise<IdSpool> {
  const out = await IdSpool.create();
  try {
    for await (const id of repo.listIds(kind, { signal })) {
      const writing = out.push(id);
      if (writing) await writing;
    }
    return out;
  } catch (e) {
    await out.close();
    throw e;
  }
}

/** Every id of a kind the store lists now. */
export async function listAll(repo: Pick<ObjectInventory, 'listIds'>, kind: 'tree' | 'chunk', signal?: AbortSignal): Promise<IdList> {
  const out = new IdList();
  for await (const id of repo.listIds(kind, { signal })) out.push(id);
  return out;
}
