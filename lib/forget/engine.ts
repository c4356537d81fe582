/**
 * forget: decides which snapshots go (the named ones, or those the policy
 * does not keep), then deletes their snapshot objects through the
 * repository, and nothing else. A snapshot is independent (format-spec 9,
 * 14.1): deleting one changes no other, and its trees and chunks stay until
 * garbage collection (prune) reclaims what no snapshot reaches.
 *
 * Deciding and deleting are separate steps so that a caller can show the
 * decision first and a dry run stops after it.
 */
import { ObnamError, throwIfAborted } from '../errors.js';
import { isDamage } from '../repo/repository.js';
import type { DamagedSnapshot, SnapshotCatalog, SnapshotInfo, SnapshotScan } from '../repo/views.js';
import { Clock, Filter, GroupBy, GroupDecision, isEmptyPolicy, matchesFilter, planForget, Policy } from './policy.js';

export interface ForgetRequest {
  /** Snapshots named by full id, id prefix or "latest" (the newest readable one that passes the filter). */
  named?: readonly string[];
  policy: Policy;
  filter?: Filter;
  groupBy?: GroupBy;
  clock: Clock;
  signal?: AbortSignal;
}

/** A snapshot named for removal: readable, or damaged (then only its id is known). */
export type NamedSnapshot = { id: string; snapshot: SnapshotInfo } | { id: string; damaged: DamagedSnapshot };

export interface ForgetDecision {
  /** Policy mode: each group with what is kept (and why) and removed. */
  groups: GroupDecision<SnapshotInfo>[];
  /** Named mode: the snapshots named, in the order given, each once. */
  named: NamedSnapshot[];
  /** Damaged snapshots left alone (the policy cannot see their host, paths or time). */
  damaged: DamagedSnapshot[];
  /** Every snapshot id to delete. */
  remove: string[];
}

/** USAGE or REFUSED for a request forget will not carry out, decided without the repository. */
export function checkForgetRequest(named: readonly string[], policy: Policy): void {
  if (named.length && !isEmptyPolicy(policy)) throw new ObnamError('USAGE', 'name snapshots or give --keep-* options, not both');
  if (!named.length && isEmptyPolicy(policy)) {
    throw new ObnamError('REFUSED', 'no policy given, so nothing would be kept: give --keep-* options, or name the snapshots to remove');
  }
}

/** Decides what forget removes; deletes nothing. USAGE or REFUSED for requests it will not carry out. */
export async function decideForget(repo: SnapshotCatalog, req: ForgetRequest): Promise<ForgetDecision> {
  const named = req.named ?? [];
  checkForgetRequest(named, req.policy);
  if (named.length === 0) {
    const { snapshots, damaged } = await repo.scanSnapshots({ signal: req.signal });
    const groups = planForget(snapshots, { policy: req.policy, filter: req.filter, groupBy: req.groupBy, clock: req.clock });
    return { groups, named: [], damaged, remove: groups.flatMap((g) => g.remove.map((s) => s.id)) };
  }
  let scan: SnapshotScan | undefined;
  const out: NamedSnapshot[] = [];
  const seen = new Set<string>();
  for (const ref of named) {
    throwIfAborted(req.signal);
    let id: string;
    if (ref === 'latest') {
      scan ??= await repo.scanSnapshots({ signal: req.signal });
      const latest = scan.snapshots.filter((s) => matchesFilter(s, req.filter ?? {})).pop();
      if (!latest) throw new ObnamError('NOT_FOUND', 'no readable snapshot matches, so there is no "latest" to forget');
      id = latest.id;
    } else {
      id = await repo.resolveSnapshotId(ref, { signal: req.signal });
    }
    if (seen.has(id)) continue;
    seen.add(id);
    try {
      out.push({ id, snapshot: await repo.getSnapshot(id, { signal: req.signal }) });
    } catch (e) {
      if (!isDamage(e)) throw e;
      out.push({ id, damaged: { id, error: e } });
    }
  }
  const removed = new Set(out.map((n) => n.id));
  return { groups: [], named: out, damaged: (scan?.damaged ?? []).filter((d) => !removed.has(d.id)), remove: out.map((n) => n.id) };
}

/**
 * Deletes the snapshot objects, one at a time, in the given order; reports
 * each once it is gone. Stops at the first failure (PERMISSION for an
 * append-only server client, before anything is deleted).
 */
export async function deleteSnapshots(
  repo: Pick<SnapshotCatalog, 'deleteSnapshot'>,
  ids: readonly string[],
  opts: { signal?: AbortSignal; onDeleted?: (id: string) => void } = {},
): Promise<string[]> {
  const done: string[] = [];
  for (const id of ids) {
    throwIfAborted(opts.signal);
    try {
      await repo.deleteSnapshot(id, { signal: opts.signal });
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'PERMISSION') {
        throw new ObnamError(
          'PERMISSION',
          `cannot forget snapshots${done.length ? ` (${done.length} were removed before)` : ''}: ${e.message}`,
          { cause: e },
        );
      }
      throw e;
    }
    done.push(id);
    opts.onDeleted?.(id);
  }
  return done;
}
