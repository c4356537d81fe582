/**
 * The messages exchanged with worker threads: what a task asks for and what
 * it answers. Shared by the pool's callers and lib/workers/worker.ts.
 */
import type { MasterKeys } from '../crypto/keys.js';
import type { RepoConfig } from '../format/config.js';
import type { Kind } from '../format/version.js';
import type { StoreSpec } from '../store/store.js';
import type { FileContentResult } from '../backup/filecontent.js';
import type { RestoreItem, RestoreMeta, RestoreRoot } from '../restore/apply.js';
export type { RestoreItem, RestoreItemResult, RestoreMeta, RestoreRoot } from '../restore/apply.js';
export type { RestoreFileResult } from '../restore/filecontent.js';
import type { PackedNames } from '../backup/inspect.js';
export type { InspectBatch, Inspected, SmallRead } from '../backup/inspect.js';

export interface WorkerSetup {
  spec: StoreSpec;
  keys: MasterKeys;
  config: RepoConfig;
  keyId: string;
}

export type Task =
  | { op: 'backupFile'; path: Uint8Array; size: number }
  | { op: 'inspect'; dir: Uint8Array; names: PackedNames }
  | { op: 'readSmall'; paths: PackedNames; limit: number }
  | { op: 'restoreFile'; root: RestoreRoot; path: Uint8Array; chunks: [string, number][]; meta: RestoreMeta; owners: boolean }
  | { op: 'restoreItems'; root: RestoreRoot; items: RestoreItem[]; owners: boolean }
  | { op: 'verify'; kind: Kind; id: string; length?: number }
  | { op: 'load'; kind: Kind; id: string };

/** A file's content, or why the file could not be read (the backup goes on without it). */
export type BackupFileResult = { ok: true; content: FileContentResult } | { ok: false; code: string; message: string };
export type VerifyResult = { ok: true } | { ok: false; code: string; message: string };
export type LoadResult = Uint8Array;
