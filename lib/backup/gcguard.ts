/**
 * The rules a backup follows so that garbage collection never deletes what
 * its snapshot will name (format-spec 14.6, B1–B5). The backup engine calls
 * start() before it reads or checks anything (B1), records every id it names
 * in the tree nodes it encodes (N(B)), and calls beforeSnapshot() right
 * before putting the snapshot (B2–B4) and checkPut() once the put returned (B5).
 * Version 1 repositories have no collections: the guard does nothing there.
 */
import { ObnamError } from '../errors.js';
import type { TreeNode } from '../format/tree.js';
import { GC_VERSION } from '../format/version.js';
import type { ConfigView, GcPlanInfo, ObjectInventory, PlanCatalog } from '../repo/views.js';

/** What the guard reads: the config, the plans, and whether objects are (still) there. */
export type GuardRepository = ConfigView & Pick<PlanCatalog, 'listPlanIds' | 'getPlan'> & Pick<ObjectInventory, 'refresh' | 'hasMany'>;
import { Clock, fromTimestamp } from '../util/clock.js';
import { IdSet } from '../util/id-map.js';

const HAS_BATCH = 512;

export class GcGuard {
  private readonly enabled: boolean;
  private readonly graceMs: number;
  private tB = 0;
  private v0 = new Set<string>();
  private tc = 0;
  /** N(B): trees (root, subtrees, pages) and chunks named in nodes this backup encoded. */
  readonly trees = new IdSet();
  readonly chunks = new IdSet();
  private readonly plans = new Map<string, GcPlanInfo>();

  constructor(
    private readonly repo: GuardRepository,
    private readonly clock: Clock,
  ) {
    this.enabled = repo.config.version >= GC_VERSION;
    this.graceMs = (repo.config.gcGrace ?? 0) * 1000;
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
   * B2–B4, immediately before the snapshot is put: refuses (GC_CONFLICT) if
   * a collection may have deleted or may be deleting something the snapshot
   * names. Returns tc, the time of the check.
   */
  async beforeSnapshot(rootTree: string): Promise<void> {
    if (!this.enabled) return;
    this.trees.add(rootTree);
    const v1 = await this.repo.listPlanIds(); // B2
    this.tc = this.clock.now();
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
      if (hit) throw conflict(`a garbage collection (plan ${id.slice(0, 8)}, due for its sweep) holds ${hit.slice(0, 8)}, which this backup names`);
    }
    const current = new Set(v1);
    const swept = [...this.v0].some((id) => !current.has(id));
    if (this.tc >= this.tB + this.graceMs / 2 || swept) await this.checkPresent(); // B4
  }

  /** B5: the snapshot put must complete within G/4 of tc; otherwise the caller removes it and fails. */
  putTooLate(): boolean {
    return this.enabled && this.clock.now() > this.tc + this.graceMs / 4;
  }

  private async checkPresent(): Promise<void> {
    await this.repo.refresh();
    for (const [kind, set] of [['tree', this.trees], ['chunk', this.chunks]] as const) {
      let batch: string[] = [];
      const check = async () => {
        const present = await this.repo.hasMany(kind, batch);
        const missing = batch.find((_, i) => !present[i]);
        if (missing) throw conflict(`${kind} ${missing.slice(0, 8)}, which this backup names, was deleted by a garbage collection while it ran`);
        batch = [];
      };
      for (const id of set) {
        batch.push(id);
        if (batch.length >= HAS_BATCH) await check();
      }
      if (batch.length) await check();
    }
  }
}

function conflict(why: string): ObnamError {
  return new ObnamError('GC_CONFLICT', `${why}; no snapshot was written (what this backup stored stays as garbage): run the backup again`);
}
