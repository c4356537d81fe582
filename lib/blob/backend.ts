/**
 * The blob backend interface: the narrowest thing a packed object store needs
 * from where its bytes live (format-spec/local-store.md, section 11). A blob is
 * an immutable sequence of bytes under a name of '/'-separated segments
 * (`packs/ab/PACK`, `index/SEG`); a backend never interprets them.
 * Implementations: LocalBlobBackend (a directory), S3BlobBackend (an
 * S3-compatible bucket). Both pass test/helpers/blob-conformance.ts.
 *
 * Guarantees every backend gives:
 * - put() resolves only once the blob is durable and visible, whole, to every
 *   later get(), stat() and list() of every process (read-after-write and
 *   list-after-write consistency); a blob is never visible partly written.
 * - put() never overwrites in the sense that matters: if the name exists
 *   when put() starts, put() returns false and leaves it. Concurrent puts of
 *   one name: where `atomicCreate` is true, exactly one returns true;
 *   otherwise one of the values wins whole and several may return true.
 *   Callers only ever race on names whose every value is equally valid
 *   (random names, or names derived from the content).
 */
import type { StoreOptions } from '../store/store.js';

export interface BlobInfo {
  name: string;
  size: number;
}

export interface ByteRange {
  offset: number;
  /** Bytes to read; to the end of the blob when omitted. */
  length?: number;
}

export interface PutOptions extends StoreOptions {
  /**
   * The caller chose the name at random (a pack, a segment): the backend may
   * skip looking for an existing blob first (saves a round trip on S3).
   * put-if-absent still holds where the backend can decide it atomically.
   */
  unique?: boolean;
}

export interface BlobBackend {
  /** Human-readable location, for messages. */
  readonly location: string;
  /** Whether concurrent put() calls of one name are decided atomically (exactly one creates). */
  readonly atomicCreate: boolean;
  /** Stores a blob unless one of this name exists; true if this call created it. */
  put(name: string, data: Uint8Array | readonly Uint8Array[], opts?: PutOptions): Promise<boolean>;
  /** The blob's bytes, or one range of them; NOT_FOUND if absent; CORRUPT if the range goes past its end. */
  get(name: string, range?: ByteRange, opts?: StoreOptions): Promise<Buffer>;
  /** Its size, or undefined if absent. */
  stat(name: string, opts?: StoreOptions): Promise<{ size: number } | undefined>;
  /** Every blob whose name starts with `prefix`, in no particular order, streamed. */
  list(prefix: string, opts?: StoreOptions): AsyncIterable<BlobInfo>;
  /** Removes a blob; false if it was not there. */
  delete(name: string, opts?: StoreOptions): Promise<boolean>;
  close(): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** INTERNAL unless `name` is a valid blob name (callers build names; a bad one is a bug, never user input). */
export function checkBlobName(name: string): string {
  const parts = name.split('/');
  if (!name || parts.length > 8 || !parts.every((p) => SEGMENT.test(p))) {
    throw new Error(`invalid blob name ${JSON.stringify(name.slice(0, 200))}`);
  }
  return name;
}
