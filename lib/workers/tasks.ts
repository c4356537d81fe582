/**
 * The messages exchanged with worker threads: what a task asks for and what
 * it answers. Shared by the pool's callers and lib/workers/worker.ts.
 */
import type { MasterKeys } from '../crypto/keys.js';
import type { RepoConfig } from '../format/config.js';
import type { Kind } from '../format/version.js';
import type { StoreSpec } from '../store/store.js';
import type { FileContentResult } from '../backup/filecontent.js';

export interface WorkerSetup {
  spec: StoreSpec;
  keys: MasterKeys;
  config: RepoConfig;
  keyId: string;
}

export type Task =
  | { op: 'backupFile'; path: Uint8Array }
  | { op: 'restoreFile'; path: Uint8Array; chunks: [string, number][] }
  | { op: 'verify'; kind: Kind; id: string }
  | { op: 'load'; kind: Kind; id: string };

/** A file's content, or why the file could not be read (the backup goes on without it). */
export type BackupFileResult = { ok: true; content: FileContentResult } | { ok: false; code: string; message: string };
export type VerifyResult = { ok: true } | { ok: false; code: string; message: string };
export type LoadResult = Uint8Array;
