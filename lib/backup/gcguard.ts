/**
 * The rules a backup follows so that garbage collection never deletes what
 * its snapshot will name (format-spec 14.6, B1–B5). The backup engine calls
 * start() before it reads or checks anything (B1), records every id it names
 * in the tree nodes it encodes (N(B)), and calls beforeSnapshot() right
 * before putting the snapshot (B2–B4) and putTooLate() once the put returned
 * (B5: a late snapshot is withdrawn, latePut(), and B2 runs again). beforeSnapshot() answers what the backup must do: put its snapshot,
 * wait for a sweep that may delete something it names (B3: waitForSweep(),
 * then B2 again), or store again what a sweep deleted (B3/B4: the engine walks
 * again, reading those files again, then B2 again).
 * Version 1 repositories have no collections: the guard does nothing there.
 */
import { ObnamError } from '../errors.js';
import type { TreeNode } from '../format/tree.js';
import { GC_VERSION } from '../format/version.js';
import type { ConfigView, GcPlanInfo, ObjectInventory, PlanCatalog } from '../repo/views.js';
import { Clock, fromTimestamp } from '../util/clock.js';
import { IdSet } from '../util/id-map.js';

/** What the guard reads: the config, the plans, and whether objects are (still) there. */
export type GuardRepository = ConfigView & Pick<PlanCatalog, 'listPlanIds' | 'getPlan'> & Pick<ObjectInventory, 'refresh' | 'hasMany'>;

const HAS_BATCH = 512;
/** How often a waiting backup lists the plans (at most; G/64 if that is shorter). */
const WAIT_POLL_MS = 60_000;

/** Ids N(B) named that are no longer stored. */
export interface Missing {
  trees: IdSet;
  chunks: IdSet;
}

/** What the backup must do before it may put its snapshot. */
export type Verdict =
  | { kind: 'put' }
  /** B3: plans due for their sweep hold candidates the backup names: wait for them to go, then B2 again. */
  | { kind: 'wait'; plans: string[]; why: string }
  /** B4 (or B3 after a wait): objects the backup names were deleted: store them again, then B2 again. */
  | { kind: 'store-again'; missing: Missing; why: string };

export interface GcGuardOptions {
  /**
   * How long in all the backup waits for sweeps (B3) before it fails with
   * GC_CONFLICT; default G/2 of the repository's grace period; 0: never wait.
   */
  waitMs?: number;
}

export class GcGuard {
  private readonly enabled: boolean;
  private readonly graceMs: number;
  private readonly waitMs: number;
  private tB = 0;
  private v0 = new Set<string>();
  private tc = 0;
  /** The end of all waiting, fixed when the backup first waits. */
  private waitUntil: number | undefined;
  /** Check every id of N(B) at the next B2 (after a wait or a new walk). */
  private checkAll = false;
  /** N(B): trees (root, subtrees, pages) and chunks named in nodes this backup encoded. */
  trees = new IdSet();
  chunks = new IdSet();
  private readonly plans = new Map<string, GcPlanInfo>();

  constructor(
    private readonly repo: GuardRepository,
    private readonly clock: Clock,
    opts: GcGuardOptions = {},
  ) {
    this.enabled = repo.config.version >= GC_VERSION;
    this.graceMs = (repo.config.gcGrace ?? 0) * 1000;
    this.waitMs = opts.waitMs ?? this.graceMs / 2;
  }

  /**
   * B1: the start time and the plans, before any has, put or read of the
   * parent — on a store view refreshed after tB, so that no has() answers
   * from before a sweep that ended before tB (a long-lived store handle).
   */
  async start(): Promise<void> {
    this.tB = this.clock.now();
    if (!this.enabled) return;
    await this.repo.refresh();
    this.v0 = new Set(await this.repo.listPlanIds());
  }

  /** Records the ids a tree node this backup encoded names. */
  noteNode(node: TreeNode): void {
    if (!this.enabled) return;
    if (node.kind === 'index') {
      for (const p of node.pages) this.trees.add(p.tree);
      return;
    }
    for (const e of node.entries) {
      if (e.subtree) this.trees.add(e.subtree);
      for (const c of e.chunks ?? []) this.chunks.add(c.id);
    }
  }

  /**
   * B2–B4, immediately before the snapshot is put (the trees written and
   * flushed): whether a collection may have deleted, or may be deleting,
   * something the snapshot names.
   */
  async beforeSnapshot(rootTree: string): Promise<Verdict> {
    if (!this.enabled) return { kind: 'put' };
    this.trees.add(rootTree);
    const v1 = await this.repo.listPlanIds(); // B2
    this.tc = this.clock.now();
    const due: string[] = [];
    let why = '';
    for (const id of v1) {
      let plan = this.plans.get(id);
      if (!plan) {
        try {
          plan = await this.repo.getPlan(id);
        } catch (e) {
          if (e instanceof ObnamError && e.code === 'NOT_FOUND') continue; // swept meanwhile: B4 below
          throw e;
        }
        this.plans.set(id, plan);
      }
      if (this.tc < fromTimestamp(plan.created) + this.graceMs / 2) continue;
      const hit = plan.trees.find((t) => this.trees.has(t)) ?? plan.chunks.find((c) => this.chunks.has(c)); // B3
      if (!hit) continue;
      due.push(id);
      why ||= `a garbage collection (plan ${id.slice(0, 8)}, due for its sweep) holds ${hit.slice(0, 8)}, which this backup names`;
    }
    if (due.length) return { kind: 'wait', plans: due, why };
    const current = new Set(v1);
    const swept = [...this.v0].some((id) => !current.has(id));
    if (this.checkAll || this.tc >= this.tB + this.graceMs / 2 || swept) {
      // B4
      const missing = await this.findMissing();
      if (missing.trees.size || missing.chunks.size) {
        const [kind, id] = missing.trees.size ? ['tree', [...missing.trees][0]!] : ['chunk', [...missing.chunks][0]!];
        return { kind: 'store-again', missing, why: `${kind} ${id.slice(0, 8)}, which this backup names, was deleted by a garbage collection while it ran` };
      }
    }
    this.checkAll = false;
    return { kind: 'put' };
  }

  /**
   * B3's wait: until none of `plans` is listed any more (their sweeps
   * finished), within the backup's waiting time; then the caller starts
   * again at B2, which checks every id of N(B). Fails with GC_CONFLICT if
   * the time runs out, or if the clock cannot wait.
   */
  async waitForSweep(verdict: { plans: string[]; why: string }, signal?: AbortSignal, onWait?: (message: string) => void): Promise<void> {
    const sleep = this.clock.sleep?.bind(this.clock);
    if (!sleep || this.waitMs <= 0) throw conflict(verdict.why);
    const now = this.clock.now();
    this.waitUntil ??= now + this.waitMs;
    if (now >= this.waitUntil) throw conflict(`${verdict.why}, and its sweep did not finish while this backup waited`);
    onWait?.(`${verdict.why}: waiting for its sweep to finish (at most until ${new Date(this.waitUntil).toISOString()})`);
    const poll = Math.max(1, Math.min(WAIT_POLL_MS, this.graceMs / 64));
    for (;;) {
      const left = this.waitUntil - this.clock.now();
      if (left <= 0) throw conflict(`${verdict.why}, and its sweep did not finish while this backup waited`);
      await sleep(Math.min(poll, left), signal);
      const listed = new Set(await this.repo.listPlanIds());
      if (!verdict.plans.some((id) => listed.has(id))) break;
    }
    this.checkAll = true;
  }

  /** A new walk of the files begins: N(B) is what that walk encodes, all of it checked at B2. */
  restart(): void {
    this.trees = new IdSet();
    this.chunks = new IdSet();
    this.checkAll = true;
  }

  /** B5: the snapshot put must complete within G/4 of tc; otherwise the caller withdraws it and starts again at B2. */
  putTooLate(): boolean {
    return this.enabled && this.clock.now() > this.tc + this.graceMs / 4;
  }

  /** B5: the late snapshot was withdrawn; the next B2 checks every id of N(B), since a sweep may have run meanwhile. */
  latePut(): void {
    this.checkAll = true;
  }

  /** The ids of N(B) that are not stored, on a store view refreshed now. */
  private async findMissing(): Promise<Missing> {
    await this.repo.refresh();
    const missing: Missing = { trees: new IdSet(), chunks: new IdSet() };
    for (const [kind, set, out] of [
      ['tree', this.trees, missing.trees],
      ['chunk', this.chunks, missing.chunks],
    ] as const) {
      let batch: string[] = [];
      const check = async () => {
        const present = await this.repo.hasMany(kind, batch);
        batch.forEach((id, i) => present[i] || out.add(id));
        batch = [];
      };
      for (const id of set) {
        batch.push(id);
        if (batch.length >= HAS_BATCH) await check();
      }
      if (batch.length) await check();
    }
    return missing;
  }
}

export function conflict(why: string): ObnamError {
  return new ObnamError('GC_CONFLICT', `${why}; no snapshot was written (what this backup stored stays as garbage): run the backup again`);
}
