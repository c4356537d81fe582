/**
 * The collector's mark (format-spec 14.4): list every tree and chunk (L)
 * before the snapshots, compute what the snapshots reach (R), and put plans
 * holding the candidates C = L − R. Deletes nothing (except a plan whose put
 * took longer than G/8, M3).
 */
import * as os from 'node:os';
import { ObnamError } from '../errors.js';
import { MAX_PLAN_CANDIDATES } from '../format/gcplan.js';
import type { Repository } from '../repo/repository.js';
import { Clock, toTimestamp } from '../util/clock.js';
import { addSnapshotReachable, emptyReachable, listAll } from './reach.js';

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
  /** Candidates, sorted ascending. */
  trees: string[];
  chunks: string[];
  snapshots: number;
}

const MARK_ATTEMPTS = 3;

export async function mark(repo: Repository, opts: MarkOptions): Promise<MarkResult> {
  const graceMs = repo.config.gcGrace! * 1000;
  for (let attempt = 1; ; attempt++) {
    opts.onPhase?.('mark');
    // M1: L first; an object written after this is not a candidate.
    await repo.store.refresh?.();
    const trees = await listAll(repo, 'tree', opts.signal);
    const chunks = await listAll(repo, 'chunk', opts.signal);
    const reach = emptyReachable(trees.size);
    const snapshots = await addSnapshotReachable(repo, reach, opts.signal); // M2 inside
    // M3: C = L − R.
    const ct = [...trees].filter((id) => !reach.trees.has(id)).sort();
    const cc = [...chunks].filter((id) => !reach.chunks.has(id)).sort();
    const result: MarkResult = { plans: [], trees: ct, chunks: cc, snapshots };
    if (opts.dryRun || ct.length + cc.length === 0) return result;
    let late = false;
    const hostname = opts.hostname ?? os.hostname();
    for (let t = 0, c = 0; t < ct.length || c < cc.length; ) {
      const nt = Math.min(ct.length - t, MAX_PLAN_CANDIDATES);
      const nc = Math.min(cc.length - c, MAX_PLAN_CANDIDATES - nt);
      const createdMs = opts.clock.now();
      const id = await repo.putPlan({ created: toTimestamp(createdMs), hostname, trees: ct.slice(t, t + nt), chunks: cc.slice(c, c + nc) }, { signal: opts.signal });
      result.plans.push(id);
      t += nt;
      c += nc;
      if (opts.clock.now() > createdMs + graceMs / 8) {
        late = true;
        break;
      }
    }
    if (!late) return result;
    // A plan put later than G/8 after its created time: withdraw this mark and start over.
    for (const id of result.plans) await repo.store.delete('gcplan', id).catch(() => undefined);
    if (attempt >= MARK_ATTEMPTS) throw new ObnamError('IO', `writing a garbage-collection plan took longer than an eighth of gc_grace ${MARK_ATTEMPTS} times; the store is too slow for this grace period`);
  }
}
