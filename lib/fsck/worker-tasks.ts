/**
 * The fsck engine's worker task (verifying one object completely) and its
 * handler.
 */
import type { Kind } from '../format/version.js';
import type { TaskHandlers, TaskType } from '../workers/protocol.js';
import { verifyObject, VerifyResult } from './verify.js';

export type FsckTasks = {
  /** `length`: for chunks, the length the referring tree records. */
  /** `key`: the content key its reference carries (format version 3); `outerOnly`: none did (see verifyObject). */
  verify: TaskType<{ kind: Kind; id: string; length?: number; key?: Uint8Array; outerOnly?: boolean }, VerifyResult>;
};

export function fsckHandlers(): TaskHandlers<FsckTasks> {
  return {
    async verify(task, { repo }) {
      return [await verifyObject(repo, task.kind, task.id, task.length, task.key, task.outerOnly), []];
    },
  };
}
