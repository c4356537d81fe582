/**
 * The narrow views engines get of a repository, in the spirit of a
 * `Pick<Store, 'put'>`: each engine takes the smallest of these (or an
 * intersection) that covers what it does, never a store. The Repository
 * implements all of them; a worker thread's repository (over its store
 * proxy) implements ObjectReader and ChunkWriter; the mount's pool-backed
 * reader (lib/fsview/objects.ts) implements ObjectReader alone.
 *
 * Every object that crosses these views is plaintext that was decrypted,
 * authenticated and checked against its id (or will be sealed so), except
 * ObjectInventory's, which answers from the store's listing without opening
 * anything. Also here: the decoding of tree and snapshot plaintext, shared
 * by every reader.
 */
import type { Chunker } from '../chunking/fastcdc.js';
import type { ObnamError } from '../errors.js';
import { decodeCbor } from '../format/cbor.js';
import type { RepoConfig } from '../format/config.js';
import type { GcPlan } from '../format/gcplan.js';
import { decodeSnapshot, Snapshot } from '../format/snapshot.js';
import { decodeTreeNode, Timestamp, ObjectAddress, TreeEntry, TreeNode, TreeRefs } from '../format/tree.js';
import type { Kind } from '../format/version.js';

export type { RepackOptions, RepackResult } from '../store/store.js';

/** Options every view's calls take. */
export interface ViewOptions {
  signal?: AbortSignal;
}

/** Options of reads by id: in format version 3 a chunk or tree is read with the content key its reference carries. */
export interface ReadOptions extends ViewOptions {
  key?: Uint8Array;
}

export interface PutResult {
  id: string;
  /** Format version 3: the object's content key, for the reference that names it. */
  key?: Uint8Array;
  /** False if the object was already in the store. */
  isNew: boolean;
  /** Bytes stored (0 if it already existed). */
  storedBytes: number;
}

/** A put whose plaintext is sealed (the caller's buffer is free again) but whose bytes may still be in flight. */
export interface StartedPut {
  stored: Promise<PutResult>;
}

export interface SnapshotInfo extends Snapshot {
  id: string;
  /** Format version 3: the public key of the member who made it (a stanza from them opened). */
  owner?: Uint8Array;
  /** Format version 3: the owner's member name (as the body recorded it if they are no longer a member). */
  ownerName?: string;
  /** Format version 3: the names the owner wrapped the snapshot key for, besides themselves. */
  sharedWith?: string[];
  /** Format version 3: whether it was made by the member the repository is open as (false: shared with them). */
  own?: boolean;
}

/** What every member of a shared repository sees of a snapshot it cannot read (format-spec/sharing.md 8.1). */
export interface UnreadableSnapshot {
  id: string;
  owner: Uint8Array;
  /** The owner's current member name, if they are a member. */
  ownerName?: string;
  hostname: string;
  time: Timestamp;
  /** The root tree's id. */
  tree: string;
}

export interface GcPlanInfo extends GcPlan {
  id: string;
}

/** A snapshot object that is listed but cannot be read: its id is its name, known without decrypting. */
export interface DamagedSnapshot {
  id: string;
  error: ObnamError;
}

/** Every snapshot in the store: the readable ones (oldest first) and the damaged ones (by id). */
export interface SnapshotScan {
  snapshots: SnapshotInfo[];
  damaged: DamagedSnapshot[];
  /** Format version 3: the headers of the snapshots not shared with this identity, oldest first (none before). */
  unreadable: UnreadableSnapshot[];
}

/** Reading objects by id: decrypted, authenticated, checked against the id and (trees, snapshots) decoded. */
export interface ObjectReader {
  /**
   * An object's plaintext (a chunk's content, or the encoded tree node or
   * snapshot), authenticated and checked against its id; `key`: its content
   * key (version 3). A tree's structure is checked only where it is decoded
   * (getTree, decodeTreeObject), so a caller decodes it before using it.
   */
  getObject(kind: Kind, id: string, opts?: ReadOptions): Promise<Uint8Array>;
  getTree(id: string, opts?: ReadOptions): Promise<TreeNode>;
  /** NOT_SHARED (format version 3) for a snapshot this identity cannot read. */
  getSnapshot(id: string, opts?: ViewOptions): Promise<SnapshotInfo>;
}

/** What the collector reads: the ids trees and snapshots name, without any content key (format-spec/sharing.md 10.5). */
export interface ReferenceReader {
  /** The ids a tree node names (version 3: its outer reference list; before: from the node). */
  getTreeRefs(id: string, opts?: ViewOptions): Promise<TreeRefs>;
  /** The root tree of a snapshot (version 3: its header, readable by every member). */
  getSnapshotRoot(id: string, opts?: ViewOptions): Promise<string>;
}

/** Writing content-addressed objects. Nothing written is visible through a snapshot until the snapshot is put. */
export interface ObjectWriter {
  /** The id (and, in format version 3, content key) of a chunk's or tree node's plaintext. */
  address(kind: 'chunk' | 'tree', plaintext: Uint8Array): ObjectAddress;
  /** Stores plaintext as an object of `kind` unless an object with its id exists. */
  putObject(kind: 'chunk' | 'tree', plaintext: Uint8Array, opts?: ViewOptions): Promise<PutResult>;
  putTree(node: TreeNode, opts?: ViewOptions): Promise<PutResult>;
  putSnapshot(s: Snapshot, opts?: ViewOptions): Promise<PutResult>;
  /**
   * Writes one directory's sorted entries as tree nodes (large ones paged,
   * format-spec "Large directories"), storing each through `putNode`; what it returned for the root node.
   */
  writeDirectory<A extends string | ObjectAddress>(entries: TreeEntry[], putNode: (node: TreeNode) => Promise<A>): Promise<A>;
  /** Resolves once every object put before the call is durable. */
  flush(): Promise<void>;
}

/** What backing up one file's content needs (in a worker thread): the chunker and a two-step put. */
export interface ChunkWriter {
  address(kind: 'chunk' | 'tree', plaintext: Uint8Array): ObjectAddress;
  chunker(): Chunker;
  /**
   * Stores plaintext whose id the caller has computed: resolves to undefined
   * if the store has the object, else once the plaintext is sealed (the
   * caller may reuse its buffer) with the store's put still in flight.
   */
  startPut(kind: 'chunk' | 'tree', at: ObjectAddress, plaintext: Uint8Array, opts?: ViewOptions): Promise<StartedPut | undefined>;
}

/** The snapshots: listing, reading, resolving references, forgetting. */
export interface SnapshotCatalog {
  /** Every snapshot id in the store, from its listing alone (nothing is read), in no order. */
  listSnapshotIds(opts?: ViewOptions): AsyncIterable<string>;
  getSnapshot(id: string, opts?: ViewOptions): Promise<SnapshotInfo>;
  /** Every snapshot: the readable ones oldest first, the damaged ones apart. */
  scanSnapshots(opts?: ViewOptions): Promise<SnapshotScan>;
  /** The readable snapshots, oldest first. */
  listSnapshots(opts?: ViewOptions): Promise<SnapshotInfo[]>;
  /** A snapshot by full id, unique id prefix, or "latest". */
  resolveSnapshot(ref: string, opts?: ViewOptions): Promise<SnapshotInfo>;
  /** The id a reference names, without reading the object (a damaged snapshot can be named). */
  resolveSnapshotId(ref: string, opts?: ViewOptions): Promise<string>;
  /** Deletes a snapshot object and nothing else; already gone counts as done. */
  deleteSnapshot(id: string, opts?: ViewOptions): Promise<void>;
}

/** What the store holds, from its listing and index: no object is opened. For checkers and the collector. */
export interface ObjectInventory {
  /** Every id of a kind the store lists, in no order. */
  listIds(kind: 'snapshot' | 'tree' | 'chunk', opts?: ViewOptions): AsyncIterable<string>;
  hasObject(kind: Kind, id: string, opts?: ViewOptions): Promise<boolean>;
  /** Which of these ids exist, in the same order. */
  hasMany(kind: Kind, ids: readonly string[], opts?: ViewOptions): Promise<boolean[]>;
  /** The stored (sealed) size of an object; NOT_FOUND if absent, CORRUPT if the store's digest fails. */
  storedSize(kind: Kind, id: string, opts?: ViewOptions): Promise<number>;
  /** Makes listings and presence answers see what other processes stored and deleted until now. */
  refresh(): Promise<void>;
}

/** Garbage-collection plans (format-spec 14.3). */
export interface PlanCatalog {
  listPlanIds(opts?: ViewOptions): Promise<string[]>;
  getPlan(id: string, opts?: ViewOptions): Promise<GcPlanInfo>;
  /** Puts a plan under a new random id, durably; returns the id. */
  putPlan(plan: GcPlan, opts?: ViewOptions): Promise<string>;
  /** NOT_FOUND if absent; PERMISSION where the store forbids deletion. */
  deletePlan(id: string, opts?: ViewOptions): Promise<void>;
}

/** Deleting trees and chunks: the collector's sweep only. NOT_FOUND if absent. */
export interface ObjectRemover {
  deleteObject(kind: 'tree' | 'chunk', id: string, opts?: ViewOptions): Promise<void>;
}

/** The repository's config, read-only. */
export interface ConfigView {
  readonly config: RepoConfig;
}

/** A tree node from its verified plaintext; `keyed` in format version 3 (references carry content keys). */
export function decodeTreeObject(id: string, plaintext: Uint8Array, keyed = false): TreeNode {
  return decodeTreeNode(decodeCbor(plaintext, `tree ${id}`), `tree ${id}`, keyed);
}

/** A snapshot from its verified plaintext. */
export function decodeSnapshotObject(id: string, plaintext: Uint8Array): SnapshotInfo {
  return { id, ...decodeSnapshot(decodeCbor(plaintext, `snapshot ${id}`), `snapshot ${id}`) };
}

/** The address of a snapshot's root tree: its id and, in format version 3, its content key. */
export function snapshotRoot(s: Pick<SnapshotInfo, 'tree' | 'treeKey'>): ObjectAddress {
  return s.treeKey ? { id: s.tree, key: s.treeKey } : { id: s.tree };
}
