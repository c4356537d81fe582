/**
 * The restore engine's worker tasks: what they take and answer
 * (RestoreTasks, for the engine's calls) and the handlers a worker thread
 * runs them with.
 */
import type { TaskHandlers, TaskType } from '../workers/protocol.js';
import { restoreItems, RestoreItem, RestoreItemResult, RestoreMeta, RestoreRoot } from './apply.js';
import { restoreFileContent, RestoreFileResult } from './filecontent.js';

export type RestoreTasks = {
  /** Writes one file from its chunks; progress: bytes written. */
  restoreFile: TaskType<
    { root: RestoreRoot; path: Uint8Array; chunks: [string, number, Uint8Array?][]; meta: RestoreMeta; owners: boolean },
    RestoreFileResult,
    number
  >;
  /** Creates a batch of small entries (inline files, symlinks, hardlinks, ...). */
  restoreItems: TaskType<{ root: RestoreRoot; items: RestoreItem[]; owners: boolean }, RestoreItemResult[]>;
};

export function restoreHandlers(): TaskHandlers<RestoreTasks> {
  return {
    async restoreFile(task, { repo, progress }) {
      return [await restoreFileContent(repo, task.root, task.path, task.chunks, task.meta, task.owners, progress), []];
    },
    restoreItems(task) {
      return [restoreItems(task.root, task.items, task.owners), []];
    },
  };
}
