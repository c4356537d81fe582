/**
 * The worker-thread side of a pool: opens the repository over a StoreProxy
 * (the main thread owns the one real store) with the unlocked keys from the
 * main thread, then runs tasks as they arrive, several at a time, with the
 * handlers it is given. The entry module (lib/engine-workers/entry.ts)
 * registers the engines' handlers here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ObnamError, describeError } from '../errors.js';
import { Repository } from '../repo/repository.js';
import { StoreProxy, StoreReply } from './store-proxy.js';
import type { Answer, TaskContext, TaskHandlers, TaskMap, WorkerSetup } from './protocol.js';

type AnyHandler = (task: object, ctx: TaskContext<unknown>) => Answer<unknown> | Promise<Answer<unknown>>;

/** Serves tasks on this worker thread's port until the pool terminates it. */
export function serveTasks<M extends TaskMap>(handlers: TaskHandlers<M>): void {
  const setup = workerData as WorkerSetup;
  const port = parentPort!;
  const store = new StoreProxy(port);
  const repo = setup.memberKeys
    ? Repository.withMemberKeys(store, setup.memberKeys, setup.config)
    : Repository.withKeys(store, setup.keys!, setup.config, setup.keyId);
  const table = handlers as unknown as Record<string, AnyHandler | undefined>;

  const run = async (seq: number, task: { op: string }): Promise<Answer<unknown>> => {
    const handler = table[task.op];
    if (!handler) throw new ObnamError('INTERNAL', `no worker handler for task ${task.op}`);
    return handler(task, { repo, progress: (value) => port.postMessage({ type: 'progress', seq, value }) });
  };

  port.on('message', (m: { type: 'task'; seq: number; task: { op: string } } | ({ type: 'storeReply' } & StoreReply)) => {
    if (m.type === 'storeReply') {
      store.onReply(m);
      return;
    }
    run(m.seq, m.task).then(
      ([value, transfer]) => port.postMessage({ type: 'result', seq: m.seq, value }, transfer),
      (e: unknown) => {
        const code = e instanceof ObnamError ? e.code : 'INTERNAL';
        port.postMessage({ type: 'error', seq: m.seq, error: { code, message: describeError(e) } });
      },
    );
  });
}
