/**
 * Worker-thread entry point: opens its own connection to the store with the
 * unlocked keys from the main thread, then runs tasks (see tasks.ts) as they
 * arrive, several at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ObnamError, describeError } from '../errors.js';
import { backupFileContent, RecentIds, SourceFileError } from '../backup/filecontent.js';
import { restoreFileContent } from '../restore/filecontent.js';
import { verifyObject } from '../fsck/verify.js';
import { Repository } from '../repo/repository.js';
import { openStore } from '../store/open.js';
import type { Task, WorkerSetup } from './tasks.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const recent = new RecentIds();
const repoPromise = openStore(setup.spec).then((store) =>
  Repository.withKeys(store, setup.spec, setup.keys, setup.config, setup.keyId),
);

async function run(seq: number, task: Task): Promise<[unknown, ArrayBuffer[]]> {
  const repo = await repoPromise;
  const progress = (value: unknown) => port.postMessage({ type: 'progress', seq, value });
  switch (task.op) {
    case 'backupFile':
      try {
        const content = await backupFileContent(repo, Buffer.from(task.path), recent, progress);
        return [{ ok: true, content }, []];
      } catch (e) {
        if (e instanceof SourceFileError) return [{ ok: false, code: e.code, message: e.message }, []];
        throw e;
      }
    case 'restoreFile':
      return [await restoreFileContent(repo, Buffer.from(task.path), task.chunks, progress), []];
    case 'verify':
      return [await verifyObject(repo, task.kind, task.id), []];
    case 'load': {
      const data = await repo.getObject(task.kind, task.id);
      const copy = new Uint8Array(data); // own buffer, so it can be transferred
      return [copy, [copy.buffer]];
    }
  }
}

port.on('message', (m: { type: 'task'; seq: number; task: Task }) => {
  run(m.seq, m.task).then(
    ([value, transfer]) => port.postMessage({ type: 'result', seq: m.seq, value }, transfer),
    (e: unknown) => {
      const code = e instanceof ObnamError ? e.code : 'INTERNAL';
      port.postMessage({ type: 'error', seq: m.seq, error: { code, message: describeError(e) } });
    },
  );
});
