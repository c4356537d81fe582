/**
 * The fsck engine: checks that every snapshot's trees and chunks exist,
 * decrypt, authenticate and match their ids, and names, for each damaged
 * object, the snapshots and paths it affects.
 *
 * Pass 1 walks every snapshot's trees once (shared subtrees once in all),
 * a few directories at a time, and verifies each referenced chunk once, in
 * the worker pool, with a bounded number of checks in flight. What it keeps
 * per object is compact: the ids of the trees and chunks seen, in IdSet and
 * IdMap (about 50 bytes each), with a state, a length and the furthest
 * bundle range end per chunk (not one record per reference: a bundle is
 * named by many files); no promise, string or decoded tree outlives the
 * directory being read. In full mode it then
 * verifies every stored chunk and tree that no snapshot references, because
 * a later backup could deduplicate against such an object. Pass 2 runs only
 * if a referenced object is damaged: it walks the snapshots again with paths
 * to say what each bad object affects, skipping subtrees already found clean.
 * Quick mode checks chunks for existence only (trees are still read, since
 * they name the chunks).
 */
import { IdMap, IdSet } from '../util/id-map.js';
import { InFlight } from '../util/in-flight.js';
import { describeError, ObnamError, throwIfAborted } from '../errors.js';
import { isBundleRef, ObjectAddress, subtreeOf, TreeEntry, TreeNode } from '../format/tree.js';
import { isSharedVersion, Kind } from '../format/version.js';
import { directoryEntries } from '../repo/treewalk.js';
import { ConfigView, ObjectInventory, ObjectReader, ReferenceReader, SnapshotCatalog, snapshotRoot } from '../repo/views.js';
import type { TaskRunner } from '../workers/protocol.js';
import type { VerifyResult } from './verify.js';
import type { FsckTasks } from './worker-tasks.js';

/** What fsck reads: the snapshot listing, the objects, and (quick mode, unreferenced objects) the store's inventory. */
export type FsckRepository = Pick<SnapshotCatalog, 'listSnapshotIds'> &
  ObjectReader &
  Pick<ReferenceReader, 'getSnapshotRoot'> &
  ConfigView &
  Pick<ObjectInventory, 'hasObject' | 'listIds'>;

export interface FsckOptions {
  quick?: boolean;
  pool: TaskRunner<FsckTasks>;
  signal?: AbortSignal;
  progress?: FsckProgress;
  /** Filled with what the run held at most at once (for tests). */
  trace?: FsckTrace;
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
/** Directories read at once in pass 1. */
const WALKERS = 4;
/** Object checks in flight at once (the worker pool's queue bounds them further). */
const CHECKS_IN_FLIGHT = 64;
/** Chunk states in pass 1 (field 0 of `chunks`). */
const CHECKING = 0;
const OK = 1;
const DAMAGED = 2;
/** Tree states in pass 2 (the one field of `attributed`). */
const CLEAN = 1;
const DIRTY = 2;

/**
 * What fsck held at most at once, for tests that prove it stays bounded
 * whatever the repository's size (pass `trace` in the options to get it).
 */
export interface FsckTrace {
  /** Directories being read at once (each holds its decoded tree nodes until done). */
  peakDirectoriesHeld: number;
  /** Object checks started and not yet settled. */
  peakChecksInFlight: number;
}

export async function fsck(repo: FsckRepository, opts: FsckOptions): Promise<FsckReport> {
  return new FsckRun(repo, opts).run();
}

class FsckRun {
  private readonly progress: FsckProgress;
  /** Every tree node referenced (directories as they are queued, pages as they are loaded). */
  private readonly trees = new IdSet();
  /** Directories walked (the report's tree count). */
  private directories = 0;
  /**
   * chunk id -> [CHECKING, OK or DAMAGED; the plaintext length once verified;
   * the furthest end of a bundle reference met while the chunk was being
   * checked (format-spec 6.7), compared with the length when the check ends].
   * Keeping the furthest end, not each reference, holds fsck's memory to the
   * chunk count however many files share a bundle.
   */
  private readonly chunks = new IdMap(3);
  private readonly checks = new InFlight(CHECKS_IN_FLIGHT);
  /** The first failure of the checking machinery itself (not damage): it ends the run. */
  private failure: { error: unknown } | undefined;
  private readonly problems = new Map<string, FsckProblem>();
  /** Whether an object some snapshot references is damaged (then pass 2 runs). */
  private referencedDamage = false;
  private directoriesHeld = 0;
  private readonly trace: FsckTrace;

  constructor(
    private readonly repo: FsckRepository,
    private readonly opts: FsckOptions,
  ) {
    this.progress = opts.progress ?? { snapshots: 0, trees: 0, chunks: 0, problems: 0 };
    this.trace = opts.trace ?? { peakDirectoriesHeld: 0, peakChecksInFlight: 0 };
  }

  async run(): Promise<FsckReport> {
    const snapshotIds: string[] = [];
    for await (const id of this.repo.listSnapshotIds({ signal: this.opts.signal })) snapshotIds.push(id);
    const roots = new Map<string, ObjectAddress>();
    for (const id of snapshotIds) {
      throwIfAborted(this.opts.signal);
      try {
        const s = await this.repo.getSnapshot(id, { signal: this.opts.signal });
        roots.set(id, snapshotRoot(s));
      } catch (e) {
        // A shared repository's snapshot of another member: its header is checked, its objects as unreferenced ones.
        if (e instanceof ObnamError && e.code === 'NOT_SHARED') {
          try {
            await this.repo.getSnapshotRoot(id, { signal: this.opts.signal });
          } catch (e2) {
            this.problem('snapshot', id, e2);
          }
        } else this.problem('snapshot', id, e);
      }
      this.progress.snapshots++;
    }
    // Pass 1: reachability and verification.
    await this.walk([...roots.values()]);
    await this.settled();

    let unreferenced = 0;
    if (!this.opts.quick) unreferenced = await this.checkUnreferenced();

    // Pass 2: attribute damage to snapshots and paths.
    if (this.referencedDamage) {
      const attributed = new IdMap(1);
      for (const [snap, tree] of roots) await this.attribute(attributed, snap, tree, '');
    }
    this.trace.peakChecksInFlight = Math.max(this.trace.peakChecksInFlight, this.checks.peak);
    return {
      quick: !!this.opts.quick,
      snapshots: snapshotIds.length,
      trees: this.directories,
      chunks: this.chunks.size,
      unreferenced,
      problems: [...this.problems.values()],
    };
  }

  private problem(kind: Kind, id: string, e: unknown): void {
    const key = `${kind}/${id}`;
    if (this.problems.has(key)) return;
    const code = e instanceof ObnamError ? e.code : typeof e === 'object' && e && 'code' in e ? String(e.code) : '';
    this.problems.set(key, {
      kind,
      id,
      status: code === 'NOT_FOUND' ? 'missing' : 'corrupt',
      message: describeError(e),
      snapshots: [],
      paths: [],
      morePaths: 0,
    });
    this.progress.problems++;
  }

  /** Pass 1: reads every directory reachable from `roots` once, WALKERS at a time, depth first. */
  private async walk(roots: ObjectAddress[]): Promise<void> {
    const queue: ObjectAddress[] = [];
    for (const r of roots) if (this.trees.add(r.id)) queue.push(r);
    let reading = 0;
    let waiting: (() => void)[] = [];
    const wake = () => {
      const w = waiting;
      waiting = [];
      for (const f of w) f();
    };
    const queueDirectory = (at: ObjectAddress) => {
      if (!this.trees.add(at.id)) return;
      queue.push(at);
      if (waiting.length) wake();
    };
    const walker = async () => {
      for (;;) {
        if (this.failure) return;
        const dir = queue.pop();
        if (dir === undefined) {
          if (reading === 0) return wake();
          await new Promise<void>((r) => waiting.push(r));
          continue;
        }
        reading++;
        try {
          await this.readDirectory(dir, queueDirectory);
        } catch (e) {
          this.failure ??= { error: e };
        } finally {
          reading--;
          wake();
        }
      }
    };
    await Promise.all(Array.from({ length: WALKERS }, walker));
    if (this.failure) throw this.failure.error;
  }

  /** Reads one directory (all its pages): queues its subdirectories and starts checking its chunks. */
  private async readDirectory(dir: ObjectAddress, queueDirectory: (at: ObjectAddress) => void): Promise<void> {
    const id = dir.id;
    throwIfAborted(this.opts.signal);
    this.directories++;
    this.directoriesHeld++;
    if (this.directoriesHeld > this.trace.peakDirectoriesHeld) this.trace.peakDirectoriesHeld = this.directoriesHeld;
    const load = async (t: string, key?: Uint8Array): Promise<TreeNode> => {
      this.progress.trees++;
      this.trees.add(t);
      try {
        return await this.repo.getTree(t, { signal: this.opts.signal, key });
      } catch (e) {
        throw new BadTreeError(t, e);
      }
    };
    const entries = directoryEntries(load, id, dir.key);
    try {
      for (;;) {
        let next: IteratorResult<TreeEntry>;
        try {
          next = await entries.next();
        } catch (e) {
          if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
          const bad = e instanceof BadTreeError ? e : new BadTreeError(id, e);
          this.problem('tree', bad.treeId, bad.cause);
          this.referencedDamage = true;
          return;
        }
        if (next.done) return;
        const e = next.value;
        if (e.type === 'dir') queueDirectory(subtreeOf(e)!);
        else if (e.chunks && isBundleRef(e.chunks)) {
          const c = e.chunks[0]!;
          await this.checkChunk(c.id, undefined, c.key, c.offset! + c.length);
        } else if (e.chunks) for (const c of e.chunks) await this.checkChunk(c.id, c.length, c.key);
      }
    } finally {
      this.directoriesHeld--;
      await entries.return(undefined).catch(() => undefined);
    }
  }

  /**
   * Starts checking a chunk, once; resolves when the check has started (not
   * when it ends). `end` (a bundle reference, format-spec 6.7): the range
   * must end within the chunk's plaintext, whose length is not otherwise
   * recorded; each reference's range is checked.
   */
  private async checkChunk(id: string, length: number | undefined, key: Uint8Array | undefined, end?: number): Promise<void> {
    if (this.chunks.has(id)) {
      if (end !== undefined) this.checkRange(id, end);
      return;
    }
    await this.slot();
    if (this.chunks.has(id)) {
      this.checks.done(); // another walker started it meanwhile
      if (end !== undefined) this.checkRange(id, end);
      return;
    }
    const at = this.chunks.add(id, CHECKING, 0, end ?? 0);
    this.settle(this.verify('chunk', id, length, key), (r) => {
      this.progress.chunks++;
      this.chunks.setField(at, 0, r.ok ? OK : DAMAGED);
      if (r.ok) {
        this.chunks.setField(at, 1, r.length ?? 0);
        const furthest = this.chunks.field(at, 2);
        if (furthest > 0) this.checkRange(id, furthest);
        return;
      }
      this.referencedDamage = true;
      this.problem('chunk', id, new ObnamError(r.code as never, r.message));
    });
  }

  /**
   * Checks that a bundle reference's range ends within its bundle (once the
   * bundle is verified; until then only the furthest end met is kept, and
   * checked when the verification ends). A range past the end makes the
   * bundle count as damaged for every file naming it.
   */
  private checkRange(id: string, end: number): void {
    if (this.opts.quick) return; // existence only: the length is not known
    const at = this.chunks.find(id);
    const state = this.chunks.field(at, 0);
    if (state === CHECKING) {
      if (end > this.chunks.field(at, 2)) this.chunks.setField(at, 2, end);
      return;
    }
    if (state !== OK) return;
    const length = this.chunks.field(at, 1);
    if (end <= length) return;
    this.chunks.setField(at, 0, DAMAGED);
    this.referencedDamage = true;
    this.problem('chunk', id, new ObnamError('CORRUPT', `chunk ${id}: ${length} bytes, but a tree names bytes up to ${end} of it (a bundle reference)`));
  }

  /** Waits for room for one more check (counted in `checks`; `settle` releases it). */
  private async slot(): Promise<void> {
    await this.checks.slot();
    try {
      if (this.failure) throw this.failure.error;
      if (!this.opts.quick) await this.opts.pool.ready();
    } catch (e) {
      this.checks.done();
      throw e;
    }
  }

  /** Handles a started check's outcome when it comes; a failure of the check itself ends the run. */
  private settle(check: Promise<VerifyResult>, then: (r: VerifyResult) => void): void {
    check.then(then).then(
      () => this.checks.done(),
      (e: unknown) => {
        this.failure ??= { error: e };
        this.checks.done();
      },
    );
  }

  /** Waits for every started check; throws the first failure of the machinery, if any. */
  private async settled(): Promise<void> {
    await this.checks.idle();
    if (this.failure) throw this.failure.error;
  }

  private async verify(kind: Kind, id: string, length?: number, key?: Uint8Array): Promise<VerifyResult> {
    if (this.opts.quick) {
      return (await this.repo.hasObject(kind, id, { signal: this.opts.signal }))
        ? { ok: true }
        : { ok: false, code: 'NOT_FOUND', message: `${kind} ${id} not found` };
    }
    return this.opts.pool.run({ op: 'verify', kind, id, length, key });
  }

  /** Verifies stored trees and chunks that no snapshot references; returns how many there are. */
  private async checkUnreferenced(): Promise<number> {
    let count = 0;
    for (const kind of ['tree', 'chunk'] as const) {
      for await (const id of this.repo.listIds(kind, { signal: this.opts.signal })) {
        if (kind === 'tree' ? this.trees.has(id) : this.chunks.has(id)) continue;
        count++;
        await this.slot();
        // Format version 3: no reference gives this object's content key, so only what every member reads is checked.
        this.settle(this.opts.pool.run({ op: 'verify', kind, id, outerOnly: isSharedVersion(this.repo.config.version) }), (r) => {
          if (!r.ok) this.problem(kind, id, new ObnamError(r.code as never, r.message));
        });
      }
    }
    await this.settled();
    return count;
  }

  /**
   * Pass 2: records, for every damaged object below `tree`, this snapshot and
   * the paths it breaks; returns whether anything below is damaged.
   * `attributed` remembers, per tree, whether it was found CLEAN (then it is
   * not read again, in this snapshot or another) or DIRTY (read again for
   * each snapshot, whose paths may differ).
   */
  private async attribute(attributed: IdMap, snapshot: string, tree: ObjectAddress, dirPath: string): Promise<boolean> {
    throwIfAborted(this.opts.signal);
    const at = attributed.find(tree.id);
    if (at >= 0 && attributed.field(at, 0) === CLEAN) return false;
    let dirty = false;
    const load = async (t: string, key?: Uint8Array) => {
      try {
        return await this.repo.getTree(t, { signal: this.opts.signal, key });
      } catch (e) {
        throw new BadTreeError(t, e);
      }
    };
    try {
      for await (const e of directoryEntries(load, tree.id, tree.key)) {
        const p = `${dirPath}/${e.name.toString()}`;
        if (e.type === 'dir') {
          if (await this.attribute(attributed, snapshot, subtreeOf(e)!, p)) dirty = true;
        } else if (e.chunks) {
          for (const c of e.chunks) {
            const ci = this.chunks.find(c.id);
            if (ci < 0 || this.chunks.field(ci, 0) !== DAMAGED) continue;
            dirty = true;
            this.affects(this.problems.get(`chunk/${c.id}`), snapshot, p);
          }
        }
      }
    } catch (e) {
      if (!(e instanceof BadTreeError)) throw e;
      // This directory (or a page of it) is unreadable: what is in it cannot be restored.
      dirty = true;
      this.affects(this.problems.get(`tree/${e.treeId}`), snapshot, dirPath || '/');
    }
    if (at < 0) attributed.add(tree.id, dirty ? DIRTY : CLEAN);
    return dirty;
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
