/**
 * The backup engine's worker tasks: what they take and answer (BackupTasks,
 * for the engine's calls) and the handlers a worker thread runs them with.
 */
import type { TaskHandlers, TaskType } from '../workers/protocol.js';
import { backupFileContent, FileContentResult, RecentIds, SourceFileError } from './filecontent.js';
import { inspectEntries, InspectBatch, PackedNames, readSmallFiles, SmallRead } from './inspect.js';

/** A file's content, or why the file could not be read (the backup goes on without it). */
export type BackupFileResult = { ok: true; content: FileContentResult } | { ok: false; code: string; message: string };

export type BackupTasks = {
  /** Chunks, seals and stores a file's content; progress: bytes read. */
  /**
   * `walk` names the backup run and its walk of the files: a new one (another
   * backup, or a walk storing again what a sweep deleted) makes the worker
   * forget which chunks it stored, since a sweep may have deleted them since.
   */
  backupFile: TaskType<{ path: Uint8Array; size: number; walk: string }, BackupFileResult, number>;
  /** lstat, xattrs and readlink of a batch of names in one directory. */
  inspect: TaskType<{ dir: Uint8Array; names: PackedNames }, InspectBatch>;
  /** Reads files small enough to be stored inline. */
  readSmall: TaskType<{ paths: PackedNames; limit: number; digestAbove?: number }, SmallRead[]>;
};

/** Handlers for one worker thread (they share its cache of recently stored chunk ids). */
export function backupHandlers(): TaskHandlers<BackupTasks> {
  let recent = new RecentIds();
  let walk = '';
  return {
    async backupFile(task, { repo, progress }) {
      if (task.walk !== walk) {
        walk = task.walk;
        recent = new RecentIds();
      }
      try {
        const content = await backupFileContent(repo, Buffer.from(task.path), task.size, recent, progress);
        return [{ ok: true, content }, []];
      } catch (e) {
        if (e instanceof SourceFileError) return [{ ok: false, code: e.code, message: e.message }, []];
        throw e;
      }
    },
    inspect(task) {
      const batch = inspectEntries(task.dir, task.names);
      return [batch, [batch.stats.buffer as ArrayBuffer]];
    },
    readSmall(task) {
      const results = readSmallFiles(task.paths, task.limit, task.digestAbove);
      return [results, results.flatMap((r) => (r.ok ? [r.data.buffer as ArrayBuffer] : []))];
    },
  };
}
