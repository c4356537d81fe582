/**
 * Starts a worker pool bound to an open repository: every worker opens the
 * same store with the same unlocked keys.
 */
import * as os from 'node:os';
import { masterKeysToTransfer } from '../crypto/keys.js';
import type { Repository } from '../repo/repository.js';
import { WorkerPool } from './pool.js';
import type { WorkerSetup } from './tasks.js';

export interface RepoPoolOptions {
  /** Worker threads; default: available CPUs (OBNAM_WORKERS overrides). */
  size?: number;
  /** Tasks each worker runs at once (they overlap I/O with CPU work). */
  perWorker?: number;
}

/**
 * One worker per CPU (at least two). Each runs several tasks at once, so a
 * worker waiting for file data keeps computing for another task.
 */
export function defaultWorkerCount(): number {
  const env = Number(process.env.OBNAM_WORKERS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(2, Math.min(os.availableParallelism(), 16));
}

export function startRepoPool(repo: Repository, opts: RepoPoolOptions = {}): WorkerPool {
  const setup: WorkerSetup = {
    spec: repo.storeSpec,
    keys: masterKeysToTransfer(repo.keys),
    config: repo.config,
    keyId: repo.keyId,
  };
  return new WorkerPool(new URL('./worker.js', import.meta.url), {
    size: opts.size ?? defaultWorkerCount(),
    perWorker: opts.perWorker ?? 3,
    workerData: setup,
    store: repo.store,
  });
}
