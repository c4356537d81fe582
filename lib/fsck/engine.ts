/**
 * The fsck engine: checks that every snapshot's trees and chunks exist,
 * decrypt, authenticate and match their ids, and names, for each damaged
 * object, the snapshots and paths it affects.
 *
 * Pass 1 walks every snapshot's trees once (shared subtrees once in all) and
 * verifies each referenced chunk once, in the worker pool; it also learns
 * which trees have damage somewhere below them. In full mode it then verifies
 * every stored chunk and tree that no snapshot references, because a later
 * backup could deduplicate against such an object. Pass 2 runs only if
 * something is damaged: it walks the damaged trees again with paths, to say
 * what each bad object affects. Quick mode checks chunks for existence only
 * (trees are still read, since they name the chunks).
 */
import { IdMap } from '../util/id-map.js';
import { describeError, ObnamError, throwIfAborted } from '../errors.js';
import type { TreeEntry } from '../format/tree.js';
import type { Kind } from '../format/version.js';
import { directoryEntries } from '../repo/treewalk.js';
import type { ObjectInventory, ObjectReader, SnapshotCatalog } from '../repo/views.js';

/** What fsck reads: the snapshot listing, the objects, and (quick mode, unreferenced objects) the store's inventory. */
export type FsckRepository = Pick<SnapshotCatalog, 'listSnapshotIds'> & ObjectReader & Pick<ObjectInventory, 'hasObject' | 'listIds'>;
import { Pending, pending } from '../util/pending.js';
import type { TaskRunner } from '../workers/protocol.js';
import type { VerifyResult } from './verify.js';
import type { FsckTasks } from './worker-tasks.js';

export interface FsckOptions {
  quick?: boolean;
  pool: TaskRunner<FsckTasks>;
  signal?: AbortSignal;
  progress?: FsckProgress;
}

export interface FsckProgress {
  snapshots: number;
  trees: number;
  chunks: number;
  problems: number;
}

export interface FsckProblem {
  kind: Kind;
  id: string;
  /** "missing" or "corrupt" */
  status: 'missing' | 'corrupt';
  message: string;
  /** Snapshots that reference the object (directly or below their root). */
  snapshots: string[];
  /** Paths (snapshot-relative, "/"-separated) that cannot be restored intact, at most MAX_PATHS. */
  paths: string[];
  /** More affected paths than listed. */
  morePaths: number;
}

export interface FsckReport {
  quick: boolean;
  snapshots: number;
  trees: number;
  chunks: number;
  unreferenced: number;
  problems: FsckProblem[];
}

const MAX_PATHS = 100;
const CHECKING = 0;
const OK = 1;
const DAMAGED = 2;

export async function fsck(repo: FsckRepository, opts: FsckOptions): Promise<FsckReport> {
  return new FsckRun(repo, opts).run();
}

class FsckRun {
  private readonly progress: FsckProgress;
  /** tree id -> whether it or anything below it is damaged */
  private readonly treeDamage = new Map<string, Promise<boolean>>();
  /** chunk id -> CHECKING, OK or DAMAGED, in a compact map (a repository may hold millions of chunks) */
  private readonly chunks = new IdMap(1);
  /** The checks in progress (bounded by the worker pool's queue). */
  private readonly chunkChecks = new Map<string, Promise<boolean>>();
  private readonly problems = new Map<string, FsckProblem>();
  /** Every tree node loaded in pass 1, pages of large directories included. */
  private readonly loadedTrees = new Set<string>();

  constructor(
    private readonly repo: FsckRepository,
    private readonly opts: FsckOptions,
  ) {
    this.progress = opts.progress ?? { snapshots: 0, trees: 0, chunks: 0, problems: 0 };
  }

  async run(): Promise<FsckReport> {
    const snapshotIds: string[] = [];
    for await (const id of this.repo.listSnapshotIds({ signal: this.opts.signal })) snapshotIds.push(id);
    const roots = new Map<string, string>();
    for (const id of snapshotIds) {
      throwIfAborted(this.opts.signal);
      try {
        const s = await this.repo.getSnapshot(id, { signal: this.opts.signal });
        roots.set(id, s.tree);
      } catch (e) {
        this.problem('snapshot', id, e, [id], []);
      }
      this.progress.snapshots++;
    }
    // Pass 1: reachability and verification.
    for (const tree of roots.values()) await this.checkTree(tree);
    await Promise.all(this.chunkChecks.values());

    let unreferenced = 0;
    if (!this.opts.quick) unreferenced = await this.checkUnreferenced();

    // Pass 2: attribute damage to snapshots and paths.
    for (const [snap, tree] of roots) {
      if (await this.treeDamage.get(tree)) await this.attribute(snap, tree, '');
    }
    return {
      quick: !!this.opts.quick,
      snapshots: snapshotIds.length,
      trees: this.treeDamage.size,
      chunks: this.chunks.size,
      unreferenced,
      problems: [...this.problems.values()],
    };
  }

  private problem(kind: Kind, id: string, e: unknown, snapshots: string[], paths: string[]): void {
    const key = `${kind}/${id}`;
    if (this.problems.has(key)) return;
    const code = e instanceof ObnamError ? e.code : typeof e === 'object' && e && 'code' in e ? String(e.code) : '';
    this.problems.set(key, {
      kind,
      id,
      status: code === 'NOT_FOUND' ? 'missing' : 'corrupt',
      message: describeError(e),
      snapshots,
      paths,
      morePaths: 0,
    });
    this.progress.problems++;
  }

  private checkTree(id: string): Promise<boolean> {
    let p = this.treeDamage.get(id);
    if (!p) {
      p = this.verifyTree(id);
      this.treeDamage.set(id, p);
    }
    return p;
  }

  private async verifyTree(id: string): Promise<boolean> {
    throwIfAborted(this.opts.signal);
    const below: Promise<boolean>[] = [];
    try {
      for await (const e of directoryEntries((t) => this.loadTreeNode(t), id)) {
        if (e.type === 'dir') below.push(this.checkTree(e.subtree!));
        else if (e.chunks) for (const c of e.chunks) below.push((await this.checkChunk(c.id, c.length)).result);
      }
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
      const bad = e instanceof BadTreeError ? e : new BadTreeError(id, e);
      this.problem('tree', bad.treeId, bad.cause, [], []);
      await Promise.all(below);
      return true;
    }
    return (await Promise.all(below)).some(Boolean);
  }

  /** Loads one tree node (a directory's root or a page of it), counting it. */
  private async loadTreeNode(id: string) {
    this.progress.trees++;
    this.loadedTrees.add(id);
    try {
      return await this.repo.getTree(id, { signal: this.opts.signal });
    } catch (e) {
      throw new BadTreeError(id, e);
    }
  }

  /** Starts checking a chunk (once); resolves when the check is queued, to the check's outcome. */
  private async checkChunk(id: string, length: number): Promise<Pending<boolean>> {
    const known = this.chunkOutcome(id);
    if (known) return { result: known };
    await this.opts.pool.ready();
    const started = this.chunkOutcome(id); // another caller may have started it meanwhile
    if (started) return { result: started };
    const at = this.chunks.add(id, CHECKING);
    const p = this.verify('chunk', id, length).then((r) => {
      this.progress.chunks++;
      this.chunks.setField(at, 0, r.ok ? OK : DAMAGED);
      this.chunkChecks.delete(id);
      if (r.ok) return false;
      this.problem('chunk', id, new ObnamError(r.code as never, r.message), [], []);
      return true;
    });
    this.chunkChecks.set(id, p);
    return pending(p);
  }

  /** Whether a chunk is damaged, if its check has started; undefined if not. */
  private chunkOutcome(id: string): Promise<boolean> | undefined {
    const at = this.chunks.find(id);
    if (at < 0) return undefined;
    const state = this.chunks.field(at, 0);
    return state === CHECKING ? this.chunkChecks.get(id)! : Promise.resolve(state === DAMAGED);
  }

  private async verify(kind: Kind, id: string, length?: number): Promise<VerifyResult> {
    if (this.opts.quick) {
      return (await this.repo.hasObject(kind, id, { signal: this.opts.signal }))
        ? { ok: true }
        : { ok: false, code: 'NOT_FOUND', message: `${kind} ${id} not found` };
    }
    return this.opts.pool.run({ op: 'verify', kind, id, length });
  }

  /** Verifies stored trees and chunks that no snapshot references; returns how many there are. */
  private async checkUnreferenced(): Promise<number> {
    let count = 0;
    const work: Promise<void>[] = [];
    for (const kind of ['tree', 'chunk'] as const) {
      for await (const id of this.repo.listIds(kind, { signal: this.opts.signal })) {
        if (kind === 'tree' ? this.treeDamage.has(id) || this.loadedTrees.has(id) : this.chunks.has(id)) continue;
        count++;
        await this.opts.pool.ready();
        const p = this.opts.pool.run({ op: 'verify', kind, id }).then((r) => {
          if (!r.ok) this.problem(kind, id, new ObnamError(r.code as never, r.message), [], []);
        });
        p.catch(() => undefined);
        work.push(p);
      }
    }
    await Promise.all(work);
    return count;
  }


  /** Pass 2: records, for every damaged object below `tree`, this snapshot and the paths it breaks. */
  private async attribute(snapshot: string, tree: string, dirPath: string): Promise<void> {
    const entries: TreeEntry[] = [];
    const load = async (t: string) => {
      try {
        return await this.repo.getTree(t, { signal: this.opts.signal });
      } catch (e) {
        throw new BadTreeError(t, e);
      }
    };
    try {
      for await (const e of directoryEntries(load, tree)) entries.push(e);
    } catch (e) {
      if (!(e instanceof BadTreeError)) throw e;
      // This directory (or a page of it) is unreadable: what is in it cannot be restored.
      this.affects(this.problems.get(`tree/${e.treeId}`), snapshot, dirPath || '/');
    }
    for (const e of entries) {
      const p = dirPath ? `${dirPath}/${e.name.toString()}` : `/${e.name.toString()}`;
      if (e.type === 'dir') {
        if (await this.treeDamage.get(e.subtree!)) await this.attribute(snapshot, e.subtree!, p);
      } else if (e.chunks) {
        for (const c of e.chunks) {
          if (await this.chunkOutcome(c.id)) this.affects(this.problems.get(`chunk/${c.id}`)!, snapshot, p);
        }
      }
    }
  }

  private affects(p: FsckProblem | undefined, snapshot: string, path: string): void {
    if (!p) return;
    if (!p.snapshots.includes(snapshot)) p.snapshots.push(snapshot);
    if (p.paths.includes(path)) return;
    if (p.paths.length < MAX_PATHS) p.paths.push(path);
    else p.morePaths++;
  }
}

class BadTreeError extends Error {
  constructor(
    readonly treeId: string,
    override readonly cause: unknown,
  ) {
    super(describeError(cause));
  }
}
