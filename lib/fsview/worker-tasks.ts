/**
 * The file-system view's worker task (fetching one object's plaintext,
 * decrypted and verified against its id, off the event loop) and its
 * handler.
 */
import type { Kind } from '../format/version.js';
import type { TaskHandlers, TaskType } from '../workers/protocol.js';

export type FsviewTasks = {
  /** `key`: the content key of a chunk or tree (format version 3). */
  load: TaskType<{ kind: Kind; id: string; key?: Uint8Array }, Uint8Array>;
};

export function fsviewHandlers(): TaskHandlers<FsviewTasks> {
  return {
    async load(task, { repo }) {
      const copy = new Uint8Array(await repo.getObject(task.kind, task.id, { key: task.key })); // own buffer, so it can be transferred
      return [copy, [copy.buffer]];
    },
  };
}
