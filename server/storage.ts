/**
 * Where the server keeps its clients' namespaces: the namespace-provider
 * interface the rest of the server is written against, and the store
 * interface a namespace offers. Implementations: storage-local.ts (one local
 * directory store per namespace, lib/store/local.ts) and storage-s3.ts (one
 * packed store per namespace under a prefix of an S3 bucket,
 * lib/store/packed.ts). The routes see only NamespaceStore.
 */
import type { Kind } from '../lib/format/version.js';
import type { ObjectStore, StoreOptions } from '../lib/store/store.js';

export interface NamespaceScrubProblem {
  kind?: Kind;
  id?: string;
  /** The file or blob that holds the damage. */
  file: string;
  message: string;
}

/** What a request handler may do with a namespace. */
export interface NamespaceStore extends ObjectStore {
  put(kind: Kind, id: string, data: Uint8Array, opts?: StoreOptions & { sha256?: Uint8Array }): Promise<boolean>;
  /** Resolves once every object put before it is durable (the server acknowledges only after it). */
  flush(): Promise<void>;
  /** Up to `limit` ids greater than `after`, ascending; a listing that starts sees everything acknowledged before it. */
  listPage(kind: Kind, after: string | undefined, limit: number): Promise<string[]>;
  /** The SHA-256 the store keeps for an object; NOT_FOUND if absent. */
  digest(kind: Kind, id: string): Promise<Buffer>;
  /** The bytes and their kept SHA-256 (checked: CORRUPT if they differ). */
  getWithDigest(kind: Kind, id: string): Promise<{ data: Uint8Array; digest: Buffer }>;
  /**
   * Optional: many objects at once, in order, within a byte budget (stores
   * whose reads are round trips coalesce neighbours in a pack into one read).
   * `later`: not read because the budget ran out.
   */
  getManyWithDigest?(kind: Kind, ids: readonly string[], budget: number): Promise<ManyResult[]>;
  /** Every stored byte checked against its digest, without any key. */
  scrub(): AsyncIterable<NamespaceScrubProblem>;
  /** Finishes the open pack (a serving store keeps one open, durable in its journal), so that repacking covers it. */
  seal?(): Promise<void>;
}

export type ManyResult = { data: Uint8Array; digest: Buffer } | { missing: true } | { damaged: true } | { later: true };

export interface NamespaceProvider {
  /** Where the namespaces are, for messages (a directory, s3://BUCKET/PREFIX). */
  readonly location: string;
  /** Where one namespace is, for messages. */
  where(namespace: string): string;
  /** Creates the storage of a new namespace. */
  create(namespace: string): Promise<void>;
  /** Opens a namespace: for serving (`serving`: the server's durability mode), or for scrub. */
  open(namespace: string, opts?: { serving?: boolean }): Promise<NamespaceStore>;
  /** Deletes a namespace and everything in it. */
  remove(namespace: string): Promise<void>;
  /** The namespaces that have storage (including those of removed clients). */
  list(): Promise<string[]>;
  /** Releases what the provider holds (connections). */
  close(): Promise<void>;
}
