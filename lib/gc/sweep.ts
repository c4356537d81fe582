/**
 * The collector's sweep of one plan (format-spec 14.5): after the grace
 * period, refresh the store view, list the trees (Lt), compute Keep (what the
 * snapshots reach, and what every non-candidate tree of Lt reaches), delete
 * the candidates not in Keep — trees before chunks, NOT_FOUND counting as
 * done — and the plan last. Idempotent: an interrupted sweep is run again.
 */
import { ObnamError } from '../errors.js';
import { fromTimestamp } from '../util/clock.js';
import type { ConfigView, GcPlanInfo, ObjectInventory, ObjectRemover, PlanCatalog, ReferenceReader, SnapshotCatalog } from '../repo/views.js';
import { addReachable } from '../repo/treewalk.js';
import { IdSet } from '../util/id-map.js';
import type { Clock } from '../util/clock.js';
import { addSnapshotReachable, damaged, emptyReachable, listAll } from './reach.js';

export interface SweepOptions {
  clock: Clock;
  signal?: AbortSignal;
  /** Skip S1 (the grace period): only when nothing else writes to the repository (prune --exclusive). */
  exclusive?: boolean;
  onPhase?: (phase: string) => void;
}

export interface SweepResult {
  plan: string;
  trees: number;
  chunks: number;
  /** Stored bytes of the deleted objects. */
  bytes: number;
  /** Candidates kept because something written since the mark reaches them. */
  kept: number;
}

/** When a plan may be swept (S1), in ms since the epoch. */
/** What the sweep reads and deletes. */
export type SweepRepository = ConfigView &
  Pick<SnapshotCatalog, 'listSnapshotIds'> &
  ReferenceReader &
  Pick<ObjectInventory, 'listIds' | 'refresh' | 'storedSize'> &
  ObjectRemover &
  Pick<PlanCatalog, 'deletePlan'>;

export function sweepDue(repo: ConfigView, plan: GcPlanInfo): number {
  return fromTimestamp(plan.created) + repo.config.gcGrace! * 1000;
}

export async function sweep(repo: SweepRepository, plan: GcPlanInfo, opts: SweepOptions): Promise<SweepResult> {
  const signal = opts.signal;
  if (!opts.exclusive && opts.clock.now() < sweepDue(repo, plan)) {
    throw new ObnamError('INTERNAL', `plan ${plan.id.slice(0, 8)} is still in its grace period`); // S1
  }
  opts.onPhase?.('sweep');
  // S2: a fresh view, Lt, then the snapshots.
  await repo.refresh();
  const lt = await listAll(repo, 'tree', signal);
  const candidateTrees = new IdSet();
  for (const id of plan.trees) candidateTrees.add(id);
  const keep = emptyReachable(lt.size, plan.chunks.length);
  await addSnapshotReachable(repo, keep, signal);
  const load = (id: string) => repo.getTreeRefs(id, { signal });
  for (const t of lt) {
    if (candidateTrees.has(t) || keep.trees.has(t)) continue;
    try {
      // A tree written since the mark protects all it names. One that names a tree which
      // is not there (left by an interrupted backup) protects the rest of what it names.
      await addReachable(load, t, keep, true);
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
      throw damaged(`tree ${t.slice(0, 8)} is damaged`, e);
    }
  }
  // S3: trees first, then the chunks they name.
  const result: SweepResult = { plan: plan.id, trees: 0, chunks: 0, bytes: 0, kept: 0 };
  for (const [kind, ids, keepSet] of [['tree', plan.trees, keep.trees], ['chunk', plan.chunks, keep.chunks]] as const) {
    for (const id of ids) {
      if (keepSet.has(id)) {
        result.kept++;
        continue;
      }
      const size = await storedSize(repo, kind, id, signal);
      if (size === undefined) continue;
      try {
        await repo.deleteObject(kind, id, { signal });
      } catch (e) {
        if (e instanceof ObnamError && e.code === 'NOT_FOUND') continue;
        throw e;
      }
      if (kind === 'tree') result.trees++;
      else result.chunks++;
      result.bytes += size;
    }
  }
  // S4: the plan, last.
  try {
    await repo.deletePlan(plan.id, { signal });
  } catch (e) {
    if (!(e instanceof ObnamError && e.code === 'NOT_FOUND')) throw e;
  }
  return result;
}

/** The stored size of an object, or undefined if it is gone (deleted by an earlier, interrupted sweep). */
async function storedSize(repo: Pick<ObjectInventory, 'storedSize'>, kind: 'tree' | 'chunk', id: string, signal?: AbortSignal): Promise<number | undefined> {
  try {
    return await repo.storedSize(kind, id, { signal });
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'NOT_FOUND') return undefined;
    if (e instanceof ObnamError && e.code === 'CORRUPT') return 0; // damaged garbage: deleted all the same
    throw e;
  }
}
