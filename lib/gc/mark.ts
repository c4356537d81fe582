/**
 * The collector's mark (format-spec 14.4): list every tree and chunk (L)
 * before the snapshots, compute what the snapshots reach (R), and put plans
 * holding the candidates C = L − R. Deletes nothing (except a plan whose put
 * took longer than G/8, M3).
 */
import * as os from 'node:os';
import { ObnamError } from '../errors.js';
import { MAX_PLAN_CANDIDATES } from '../format/gcplan.js';
import type { ConfigView, ObjectInventory, PlanCatalog, ReferenceReader, SnapshotCatalog } from '../repo/views.js';

/** What the mark reads and writes: listings, trees and snapshots, and plans. */
export type MarkRepository = ConfigView &
  Pick<SnapshotCatalog, 'listSnapshotIds'> &
  ReferenceReader &
  Pick<ObjectInventory, 'listIds' | 'refresh'> &
  Pick<PlanCatalog, 'putPlan' | 'deletePlan'>;
import { Clock, toTimestamp } from '../util/clock.js';
import { addSnapshotReachable, emptyReachable, spoolAll } from './reach.js';

export interface MarkOptions {
  clock: Clock;
  signal?: AbortSignal;
  hostname?: string;
  /** Compute the candidates, write no plan. */
  dryRun?: boolean;
  onPhase?: (phase: string) => void;
}

export interface MarkResult {
  plans: string[];
  /** Candidate counts. */
  trees: number;
  chunks: number;
  snapshots: number;
}

const MARK_ATTEMPTS = 3;

export async function mark(repo: MarkRepository, opts: MarkOptions): Promise<MarkResult> {
  const graceMs = repo.config.gcGrace! * 1000;
  for (let attempt = 1; ; attempt++) {
    opts.onPhase?.('mark');
    // M1: L first; an object written after this is not a candidate.
    await repo.refresh();
    // L is spooled to a temporary file (32 bytes per id there, none in memory).
    const trees = await spoolAll(repo, 'tree', opts.signal);
    const chunks = await spoolAll(repo, 'chunk', opts.signal).catch(async (e: unknown) => {
      await trees.close();
      throw e;
    });
    try {
      const reach = emptyReachable(trees.size, chunks.size);
      const snapshots = await addSnapshotReachable(repo, reach, opts.signal); // M2 inside
      // M3: C = L − R, put as plans of at most MAX_PLAN_CANDIDATES, each list sorted.
      const result: MarkResult = { plans: [], trees: 0, chunks: 0, snapshots };
      const hostname = opts.hostname ?? os.hostname();
      let ct: string[] = [];
      let cc: string[] = [];
      let late = false;
      const putPlan = async () => {
        if (ct.length + cc.length === 0 || opts.dryRun) return;
        const createdMs = opts.clock.now();
        const id = await repo.putPlan({ created: toTimestamp(createdMs), hostname, trees: ct.sort(), chunks: cc.sort() }, { signal: opts.signal });
        result.plans.push(id);
        if (opts.clock.now() > createdMs + graceMs / 8) late = true;
      };
      for (const [list, set, kind] of [[trees, reach.trees, 'tree'], [chunks, reach.chunks, 'chunk']] as const) {
        for await (const b of list.drain()) {
          if (set.has(b)) continue;
          const hex = Buffer.from(b.buffer, b.byteOffset, 32).toString('hex');
          if (kind === 'tree') {
            ct.push(hex);
            result.trees++;
          } else {
            cc.push(hex);
            result.chunks++;
          }
          if (ct.length + cc.length >= MAX_PLAN_CANDIDATES) {
            await putPlan();
            ct = [];
            cc = [];
            if (late) break;
          }
        }
        if (late) break;
      }
      if (!late) await putPlan();
      if (!late) return result;
      // A plan put later than G/8 after its created time: withdraw this mark and start over.
      for (const id of result.plans) await repo.deletePlan(id).catch(() => undefined);
    } finally {
      await Promise.all([trees.close(), chunks.close()]);
    }
    if (attempt >= MARK_ATTEMPTS) throw new ObnamError('IO', `writing a garbage-collection plan took longer than an eighth of gc_grace ${MARK_ATTEMPTS} times; the store is too slow for this grace period`);
  }
}
