/**
 * The object store interface: the only thing a repository needs from where
 * its objects live. A store keeps opaque bytes by (kind, id) and knows nothing
 * of keys, compression or trees. Implementations: LocalStore (a directory),
 * HttpStore (an obnam-server). All of them pass test/helpers/store-conformance.ts.
 */
import type { Kind } from '../format/version.js';

export interface StoreOptions {
  signal?: AbortSignal;
}

/** The steps of retiring a batch of repacked packs (format-spec 14.8), in order. */
export type RepackStep = 'published' | 'carried' | 'removed';
/** What repack() does (format-spec 14.8). */
export interface RepackOptions extends StoreOptions {
  /** Rewrite when more than this % of pack bytes is unused (0–100). */
  maxUnusedPercent: number;
  dryRun?: boolean;
  onProgress?: (done: number, total: number) => void;
  /**
   * Called (and awaited) between the steps of retiring a batch, with the old
   * packs of the batch: 'published' once the new packs are durable and indexed,
   * 'carried' once tombstones are carried over (the old packs still there),
   * 'removed' once the old packs are removed (before the last carry-over).
   * For tests that place another process's work exactly there.
   */
  onStep?: (step: RepackStep, oldPacks: ReadonlySet<string>) => void | Promise<void>;
}
/** What repack() did (or, in a dry run, would do). */
export interface RepackResult { packsBefore: number; packsRewritten: number; packsRemoved: number; objectsCopied: number; bytesBefore: number; bytesAfter: number; bytesFreed: number; unusedBytesBefore: number }

export interface ObjectStore {
  /** Human-readable location, for messages. */
  readonly location: string;
  /**
   * Stores an object if no object with this kind and id exists yet. Returns
   * false if the object already existed (its bytes are then left as they
   * were). Never overwrites. The object is visible to has() and get() at once
   * and durable once flush() resolves (some stores make it durable sooner).
   */
  put(kind: Kind, id: string, data: Uint8Array, opts?: StoreOptions): Promise<boolean>;
  /** Resolves once every object put before the call is durable. */
  flush?(): Promise<void>;
  /** The stored bytes; NOT_FOUND if absent, CORRUPT if the store's own digest does not match. */
  get(kind: Kind, id: string, opts?: StoreOptions): Promise<Uint8Array>;
  has(kind: Kind, id: string, opts?: StoreOptions): Promise<boolean>;
  /** Which of these ids exist, in the same order. Stores may answer in one round trip. */
  hasMany(kind: Kind, ids: readonly string[], opts?: StoreOptions): Promise<boolean[]>;
  /** Every id of this kind, in no particular order, streamed. */
  list(kind: Kind, opts?: StoreOptions): AsyncIterable<string>;
  /** Removes an object; NOT_FOUND if absent; PERMISSION where the store forbids deletion. */
  delete(kind: Kind, id: string, opts?: StoreOptions): Promise<void>;
  /**
   * Makes has() and list() see objects put and deleted by other processes
   * until now (format-spec 14.8: backups' B4 check, the sweep's S2). Stores
   * that always answer from a fresh view need not implement it.
   */
  refresh?(): Promise<void>;
  /** Rewrites packs with unused space (format-spec 14.8); stores without packs lack it. */
  repack?(opts: RepackOptions): Promise<RepackResult>;
  /** Flushes, then releases resources. */
  close(): Promise<void>;
}

/**
 * Reading and writing single objects, without listing, deleting or closing:
 * what a worker thread's StoreProxy offers (the main thread owns the store).
 */
export type ObjectAccess = Pick<ObjectStore, 'location' | 'put' | 'get' | 'has' | 'hasMany'>;

/**
 * A packed object's record in a local file: `length` bytes of object after
 * the record header at `offset` of `file` (pack-format.ts; checked with
 * checkRecord). What a worker thread reads itself instead of having the
 * main thread read and pass on the bytes.
 */
export interface FileRecord {
  file: string;
  offset: number;
  length: number;
  /** The pack's id, for messages. */
  pack: string;
}

/** A store whose objects other threads of this process may read from their files directly. */
export interface FileRecordLocator {
  /** Where the object's record is, or undefined (not in a file, not yet in a finished pack, unknown): then get() it. */
  fileRecord(kind: Kind, id: string): FileRecord | undefined;
}

export function hasFileRecords(store: object): store is FileRecordLocator {
  return typeof (store as Partial<FileRecordLocator>).fileRecord === 'function';
}

/** A serialisable description of a store: what the CLI resolves --repo and friends into. */
export type StoreSpec =
  | { type: 'local'; dir: string }
  | {
      type: 'http';
      url: string;
      token: string;
      fingerprint?: string;
      caFile?: string;
      /** Overall deadline of one request, in seconds (default: the transport's). */
      requestTimeout?: number;
      /** An http:// URL is refused without this explicit consent to send the token in clear. */
      insecureHttp?: boolean;
    };
