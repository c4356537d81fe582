/**
 * One collection run (obnam prune; format-spec 14.4–14.5): finish the sweeps
 * whose grace period has passed, then mark if no plan is left waiting. With
 * `exclusive` (nothing else writes to the repository) every plan is swept at
 * once, and the new mark is swept right after it.
 *
 * Deleting trees and chunks gives their space back only where the store does
 * so itself; pack stores reclaim it by repacking (format-spec 14.8), the
 * `repack` hook below: the CLI passes the store's repack() (a local
 * repository's, or an obnam-server's, which repacks on request).
 */
import { describeError, ObnamError } from '../errors.js';
import { newPlanId } from '../format/gcplan.js';
import { GC_VERSION } from '../format/version.js';
import type { GcPlanInfo, PlanCatalog, RepackOptions, RepackResult } from '../repo/views.js';
import { Clock, systemClock } from '../util/clock.js';
import { mark, MarkRepository } from './mark.js';
import { sweep, sweepDue, SweepRepository, SweepResult } from './sweep.js';

/** What a collection run needs: the mark's and the sweep's views, and the plans. */
export type PruneRepository = MarkRepository & SweepRepository & Pick<PlanCatalog, 'listPlanIds' | 'getPlan'>;

/** The seam for repacking: rewrites packs with unused space (a store's repack(), format-spec 14.8). */
export type Repacker = (opts: RepackOptions) => Promise<RepackResult>;

export interface PruneOptions {
  clock?: Clock;
  signal?: AbortSignal;
  dryRun?: boolean;
  exclusive?: boolean;
  /** Repack when more than this percentage of stored bytes is unused (default 10). */
  maxUnusedPercent?: number;
  repack?: Repacker;
  /** Why there is no repacker, for the report (e.g. "the server repacks its storage itself"). */
  repackNote?: string;
  onRepackProgress?: (done: number, total: number) => void;
  hostname?: string;
  onPhase?: (phase: string) => void;
  onWarning?: (message: string) => void;
}

export interface PruneReport {
  dryRun: boolean;
  exclusive: boolean;
  swept: SweepResult[];
  deleted: { trees: number; chunks: number; bytes: number };
  /** Plans still in their grace period, and when each may be swept (ISO time). */
  waiting: { plan: string; due: string }[];
  /** Plans that could not be read (left alone). */
  damagedPlans: string[];
  /** The new mark, if one ran: its plans (none in a dry run) and candidate counts. */
  marked?: { plans: string[]; trees: number; chunks: number; snapshots: number };
  /** done: the repacker ran (in a dry run: computed what it would do, changing nothing). */
  repack: { done: boolean; maxUnusedPercent: number; note?: string } & Partial<RepackResult>;
}

export const DEFAULT_MAX_UNUSED_PERCENT = 10;

/** Refuses what prune must not run on: version 1 repositories, clients that may not delete. */
export async function checkCanPrune(repo: PruneRepository): Promise<void> {
  if (repo.config.version < GC_VERSION) {
    throw new ObnamError(
      'REFUSED',
      `this repository has format version ${repo.config.version}, which has no garbage collection; run obnam upgrade first (only while no older obnam writes to it)`,
    );
  }
  try {
    await repo.deletePlan(newPlanId()); // a random id: nothing is there to delete
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'NOT_FOUND') return;
    if (e instanceof ObnamError && e.code === 'PERMISSION') {
      throw new ObnamError('PERMISSION', `prune needs a client allowed to delete: ${e.message}`);
    }
    throw e;
  }
}

export async function prune(repo: PruneRepository, opts: PruneOptions = {}): Promise<PruneReport> {
  const clock = opts.clock ?? systemClock;
  const maxUnusedPercent = opts.maxUnusedPercent ?? DEFAULT_MAX_UNUSED_PERCENT;
  if (!(maxUnusedPercent >= 0 && maxUnusedPercent <= 100)) throw new ObnamError('USAGE', '--max-unused must be a percentage from 0 to 100');
  await checkCanPrune(repo);
  const report: PruneReport = {
    dryRun: !!opts.dryRun,
    exclusive: !!opts.exclusive,
    swept: [],
    deleted: { trees: 0, chunks: 0, bytes: 0 },
    waiting: [],
    damagedPlans: [],
    repack: { done: false, maxUnusedPercent },
  };
  const sweepOpts = { clock, signal: opts.signal, exclusive: opts.exclusive, onPhase: opts.onPhase };
  const doSweep = async (plan: GcPlanInfo) => {
    const r = await sweep(repo, plan, sweepOpts);
    report.swept.push(r);
    report.deleted.trees += r.trees;
    report.deleted.chunks += r.chunks;
    report.deleted.bytes += r.bytes;
  };

  // Pending sweeps first (14.5: before any new mark).
  for (const id of await repo.listPlanIds({ signal: opts.signal })) {
    let plan: GcPlanInfo;
    try {
      plan = await repo.getPlan(id, { signal: opts.signal });
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') continue; // swept by another collector
      if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
      report.damagedPlans.push(id);
      opts.onWarning?.(`plan ${id.slice(0, 8)} cannot be read, left alone: ${describeError(e)}`);
      continue;
    }
    const due = sweepDue(repo, plan);
    if (opts.exclusive || clock.now() >= due) {
      if (opts.dryRun) report.waiting.push({ plan: id, due: new Date(Math.min(due, clock.now())).toISOString() });
      else await doSweep(plan);
    } else {
      report.waiting.push({ plan: id, due: new Date(due).toISOString() });
    }
  }

  // A new mark, unless a plan is still waiting for its grace period (it would only repeat it).
  if (report.waiting.length === 0 || opts.exclusive) {
    const m = await mark(repo, { clock, signal: opts.signal, hostname: opts.hostname, dryRun: opts.dryRun, onPhase: opts.onPhase });
    report.marked = { plans: m.plans, trees: m.trees, chunks: m.chunks, snapshots: m.snapshots };
    if (opts.exclusive && !opts.dryRun) {
      for (const id of m.plans) await doSweep(await repo.getPlan(id, { signal: opts.signal }));
    } else {
      for (const id of m.plans) report.waiting.push({ plan: id, due: new Date(sweepDue(repo, await repo.getPlan(id))).toISOString() });
    }
  }

  // Repacking gives the space of deleted objects back (format-spec 14.8). A dry run says what it would rewrite
  // now (before the sweeps it only reported, so less than a real run would).
  if (opts.repack) {
    opts.onPhase?.('repack');
    try {
      const r = await opts.repack({ maxUnusedPercent, dryRun: opts.dryRun, signal: opts.signal, onProgress: opts.onRepackProgress });
      report.repack = { done: true, maxUnusedPercent, ...r };
    } catch (e) {
      // Another repack holds the store's repack lock (another prune, obnam-server repack or serve's
      // background repack): what this run deleted is given back by that one or the next.
      if (!(e instanceof ObnamError && e.code === 'CONFLICT')) throw e;
      report.repack.note = `not repacked now: ${e.message}; that repack, or the next prune, gives the space back`;
    }
  } else {
    report.repack.note = opts.repackNote ?? 'this store has no packs to repack';
  }
  return report;
}
