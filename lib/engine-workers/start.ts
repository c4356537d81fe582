/**
 * Starts the engines' worker pool bound to an open repository: every worker
 * runs the engines' handlers (entry.ts) with the same unlocked keys, and
 * reaches the main thread's store through its StoreProxy.
 */
import * as os from 'node:os';
import type { BackupTasks } from '../backup/worker-tasks.js';
import { masterKeysToTransfer } from '../crypto/keys.js';
import { memberKeySetToTransfer } from '../crypto/memberkeys.js';
import type { FsckTasks } from '../fsck/worker-tasks.js';
import type { FsviewTasks } from '../fsview/worker-tasks.js';
import type { Repository } from '../repo/repository.js';
import type { RestoreTasks } from '../restore/worker-tasks.js';
import { WorkerPool } from '../workers/pool.js';
import type { WorkerSetup } from '../workers/protocol.js';

/** Every engine's worker tasks. */
export type EngineTasks = BackupTasks & RestoreTasks & FsckTasks & FsviewTasks;
export type EnginePool = WorkerPool<EngineTasks>;

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

export function startRepoPool(repo: Repository, opts: RepoPoolOptions = {}): EnginePool {
  const { keys, memberKeys } = repo.workerKeys();
  const setup: WorkerSetup = {
    ...(keys ? { keys: masterKeysToTransfer(keys) } : {}),
    ...(memberKeys ? { memberKeys: memberKeySetToTransfer(memberKeys) } : {}),
    config: repo.config,
    keyId: repo.keyId,
  };
  return new WorkerPool<EngineTasks>(new URL('./entry.js', import.meta.url), {
    size: opts.size ?? defaultWorkerCount(),
    perWorker: opts.perWorker ?? 3,
    workerData: setup,
    store: repo.objectAccessForWorkers(),
  });
}
