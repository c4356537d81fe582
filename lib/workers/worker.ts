/**
 * Worker-thread entry point: opens its own connection to the store with the
 * unlocked keys from the main thread, then runs tasks (see tasks.ts) as they
 * arrive, several at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ObnamError, describeError } from '../errors.js';
import { backupFileContent, RecentIds, SourceFileError } from '../backup/filecontent.js';
import { restoreFileContent } from '../restore/filecontent.js';
import { restoreItems } from '../restore/apply.js';
import { inspectEntries, readSmallFiles } from '../backup/inspect.js';
import { verifyObject } from '../fsck/verify.js';
import { Repository } from '../repo/repository.js';
import { StoreProxy, StoreReply } from './store-proxy.js';
import type { Task, WorkerSetup } from './tasks.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const recent = new RecentIds();
const store = new StoreProxy(port);
const repoPromise = Promise.resolve(Repository.withKeys(store, setup.spec, setup.keys, setup.config, setup.keyId));

async function run(seq: number, task: Task): Promise<[unknown, ArrayBuffer[]]> {
  const repo = await repoPromise;
  const progress = (value: unknown) => port.postMessage({ type: 'progress', seq, value });
  switch (task.op) {
    case 'backupFile':
      try {
        const content = await backupFileContent(repo, Buffer.from(task.path), task.size, recent, progress);
        return [{ ok: true, content }, []];
      } catch (e) {
        if (e instanceof SourceFileError) return [{ ok: false, code: e.code, message: e.message }, []];
        throw e;
      }
    case 'restoreFile':
      return [await restoreFileContent(repo, task.root, task.path, task.chunks, task.meta, task.owners, progress), []];
    case 'restoreItems':
      return [restoreItems(task.root, task.items, task.owners), []];
    case 'inspect':
    {
      const batch = inspectEntries(task.dir, task.names);
      return [batch, [batch.stats.buffer as ArrayBuffer]];
    }
    case 'readSmall': {
      const results = readSmallFiles(task.paths, task.limit);
      return [results, results.flatMap((r) => (r.ok ? [r.data.buffer as ArrayBuffer] : []))];
    }
    case 'verify':
      return [await verifyObject(repo, task.kind, task.id, task.length), []];
    case 'load': {
      const data = await repo.getObject(task.kind, task.id);
      const copy = new Uint8Array(data); // own buffer, so it can be transferred
      return [copy, [copy.buffer]];
    }
  }
}

port.on('message', (m: { type: 'task'; seq: number; task: Task } | ({ type: 'storeReply' } & StoreReply)) => {
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
