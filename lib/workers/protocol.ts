/**
 * The typed contract between a worker pool and its worker threads: a task
 * map names each task (`op`) with what it takes, answers and reports as
 * progress; engines declare their own maps and handlers, and the pool's
 * callers get the answer type of the task they run. Also the setup every
 * worker thread starts with.
 */
import type { MasterKeys } from '../crypto/keys.js';
import type { MemberKeySet } from '../crypto/memberkeys.js';
import type { RepoConfig } from '../format/config.js';
import type { ChunkWriter, ObjectInventory, ObjectReader, ReferenceReader } from '../repo/views.js';

/**
 * What a worker thread starts with: the unlocked keys and config of the
 * repository the main thread opened (master keys in format versions 1 and 2,
 * the member key set in version 3; workers never hold an identity).
 */
export interface WorkerSetup {
  keys?: MasterKeys;
  memberKeys?: MemberKeySet;
  config: RepoConfig;
  keyId: string;
}

/** One kind of task: its arguments (without `op`), its answer and its progress reports. */
export interface TaskType<A extends object = object, R = unknown, P = never> {
  args: A;
  result: R;
  progress: P;
}

/** Tasks by op. */
export type TaskMap = Record<string, TaskType<object, unknown, unknown>>;

/** A task of op K as sent to a worker. */
export type Task<M extends TaskMap, K extends keyof M & string> = { op: K } & M[K]['args'];
export type TaskResult<M extends TaskMap, K extends keyof M> = M[K]['result'];
export type TaskProgress<M extends TaskMap, K extends keyof M> = M[K]['progress'];

/** Runs tasks of a map somewhere else (a worker pool): what engines see of the pool. */
export interface TaskRunner<M extends TaskMap> {
  /**
   * Runs a task; resolves with its answer. `transfer`: buffers moved to the
   * worker, not copied. Urgent tasks (ones a walk waits for) go ahead of
   * queued bulk work.
   */
  run<K extends keyof M & string>(
    task: Task<M, K>,
    transfer?: ArrayBuffer[],
    onProgress?: (p: TaskProgress<M, K>) => void,
    urgent?: boolean,
  ): Promise<TaskResult<M, K>>;
  /** Resolves when a new task would not have to wait long in the queue. */
  ready(): Promise<void>;
}

/** What a handler gets besides its arguments, in a worker thread. */
export interface TaskContext<P> {
  /** The repository the main thread opened, reached through the worker's store proxy: reading, and writing chunks. */
  repo: ObjectReader & ChunkWriter & Pick<ReferenceReader, 'getTreeRefs'> & Pick<ObjectInventory, 'storedSize'>;
  progress(value: P): void;
}

/** A handler's answer, and the buffers to transfer with it. */
export type Answer<R> = [R, ArrayBuffer[]];

export type TaskHandlers<M extends TaskMap> = {
  [K in keyof M & string]: (task: Task<M, K>, ctx: TaskContext<TaskProgress<M, K>>) => Answer<TaskResult<M, K>> | Promise<Answer<TaskResult<M, K>>>;
};
