/**
 * A small worker-thread pool for CPU-heavy work (chunking, hashing,
 * compression, encryption) so the main thread stays free to walk the file
 * system and talk to stores.
 *
 * Each worker runs up to `perWorker` tasks at once (tasks also wait on I/O);
 * beyond that, tasks queue here. `ready()` resolves when the queue is short,
 * which is how producers apply back-pressure. Errors from a task come back as
 * ObnamErrors with their code; a crashed worker fails the pool.
 */
import { Worker } from 'node:worker_threads';
import { ObnamError, ErrorCode } from '../errors.js';
import type { ObjectAccess } from '../store/store.js';
import { serveStoreRequest, StoreRequest } from './store-proxy.js';
import type { Task, TaskMap, TaskProgress, TaskResult, TaskRunner } from './protocol.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: (p: unknown) => void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

interface Queued {
  task: { op: string };
  transfer: ArrayBuffer[];
  pending: Pending;
  urgent: boolean;
}

/** Extra tasks a worker takes beyond perWorker when they are urgent (the walk waits on them). */
const URGENT_EXTRA = 2;

export interface PoolOptions {
  size: number;
  perWorker: number;
  workerData: unknown;
  /** How many queued tasks ready() tolerates before making producers wait. */
  queueLimit?: number;
  /** The store workers reach through their StoreProxy. */
  store?: ObjectAccess;
}

/** A pool whose workers run the tasks of map M (their entry module registers M's handlers). */
export class WorkerPool<M extends TaskMap> implements TaskRunner<M> {
  private readonly slots: Slot[] = [];
  private readonly queue: Queued[] = [];
  private readonly inFlight = new Map<number, Pending & { slot: Slot }>();
  private readonly waiters: (() => void)[] = [];
  private seq = 0;
  private failed?: Error;
  private readonly perWorker: number;
  private readonly queueLimit: number;
  private readonly store?: ObjectAccess;

  constructor(script: URL, opts: PoolOptions) {
    this.store = opts.store;
    this.perWorker = opts.perWorker;
    this.queueLimit = opts.queueLimit ?? opts.size * opts.perWorker;
    for (let i = 0; i < opts.size; i++) {
      // A small young generation: workers hold few live objects, and each MB counts per thread.
      const worker = new Worker(script, { workerData: opts.workerData, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
      const slot: Slot = { worker, busy: 0 };
      worker.on('message', (m: WorkerMessage) => this.onMessage(slot, m));
      worker.on('error', (e) => this.fail(new ObnamError('INTERNAL', `worker thread failed: ${e.message}`)));
      worker.on('exit', (code) => {
        if (code !== 0 && !this.closing) this.fail(new ObnamError('INTERNAL', `worker thread exited with code ${code}`));
      });
      worker.unref();
      this.slots.push(slot);
    }
  }

  private closing = false;

  get size(): number {
    return this.slots.length;
  }

  /**
   * Runs a task on some worker; resolves with its result. Urgent tasks (ones
   * a walk is waiting for) go ahead of queued bulk work.
   */
  run<K extends keyof M & string>(
    task: Task<M, K>,
    transfer: ArrayBuffer[] = [],
    onProgress?: (p: TaskProgress<M, K>) => void,
    urgent = false,
  ): Promise<TaskResult<M, K>> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<TaskResult<M, K>>((resolve, reject) => {
      const q: Queued = {
        task,
        transfer,
        urgent,
        pending: { resolve: resolve as (v: unknown) => void, reject, onProgress: onProgress as ((p: unknown) => void) | undefined },
      };
      if (urgent) {
        const firstBulk = this.queue.findIndex((x) => !x.urgent);
        this.queue.splice(firstBulk < 0 ? this.queue.length : firstBulk, 0, q);
      } else this.queue.push(q);
      this.dispatch();
    });
  }

  /** Resolves when a new task would not have to wait long in the queue. */
  async ready(): Promise<void> {
    while (!this.failed && this.bulkQueued() >= this.queueLimit) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    if (this.failed) throw this.failed;
  }

  private bulkQueued(): number {
    let n = 0;
    for (const q of this.queue) if (!q.urgent) n++;
    return n;
  }

  private dispatch(): void {
    while (this.queue.length) {
      const limit = this.queue[0]!.urgent ? this.perWorker + URGENT_EXTRA : this.perWorker;
      let best: Slot | undefined;
      for (const s of this.slots) if (s.busy < limit && (!best || s.busy < best.busy)) best = s;
      if (!best) break;
      const q = this.queue.shift()!;
      const seq = ++this.seq;
      best.busy++;
      if (best.busy === 1) best.worker.ref();
      this.inFlight.set(seq, { ...q.pending, slot: best });
      best.worker.postMessage({ type: 'task', seq, task: q.task }, q.transfer);
    }
    while (this.waiters.length && this.bulkQueued() < this.queueLimit) this.waiters.shift()!();
  }

  private onMessage(slot: Slot, m: WorkerMessage): void {
    if (m.type === 'store') {
      this.serveStore(slot, m.rpc, m.req);
      return;
    }
    const p = this.inFlight.get(m.seq);
    if (!p) return;
    if (m.type === 'progress') {
      p.onProgress?.(m.value);
      return;
    }
    this.inFlight.delete(m.seq);
    slot.busy--;
    if (slot.busy === 0) slot.worker.unref();
    if (m.type === 'result') p.resolve(m.value);
    else p.reject(new ObnamError(m.error.code, m.error.message));
    this.dispatch();
  }

  private serveStore(slot: Slot, rpc: number, req: StoreRequest): void {
    if (!this.store) {
      slot.worker.postMessage({ type: 'storeReply', rpc, ok: false, code: 'INTERNAL', message: 'this pool has no store' });
      return;
    }
    serveStoreRequest(this.store, req).then(
      ([value, transfer]) => slot.worker.postMessage({ type: 'storeReply', rpc, ok: true, value }, transfer),
      (e: unknown) => {
        const code: ErrorCode = e instanceof ObnamError ? e.code : 'INTERNAL';
        slot.worker.postMessage({ type: 'storeReply', rpc, ok: false, code, message: (e as Error).message });
      },
    );
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    for (const p of this.inFlight.values()) p.reject(e);
    this.inFlight.clear();
    for (const q of this.queue.splice(0)) q.pending.reject(e);
    for (const w of this.waiters.splice(0)) w();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.fail(new ObnamError('ABORTED', 'worker pool closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

export type WorkerMessage =
  | { type: 'store'; rpc: number; req: StoreRequest }
  | { type: 'result'; seq: number; value: unknown }
  | { type: 'error'; seq: number; error: { code: ErrorCode; message: string } }
  | { type: 'progress'; seq: number; value: unknown };
