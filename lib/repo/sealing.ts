/**
 * How a repository turns plaintext into stored bytes and back, behind one
 * interface with one implementation per format family: sealing-v2.ts
 * (versions 1 and 2: master keys, one envelope per object) and sealing-v3.ts
 * (version 3, format-spec/sharing.md: member keys, content keys, two-layer
 * trees and snapshots with recipient stanzas). The Repository holds one and
 * never asks which.
 */
import type { SnapshotHeader } from '../format/snapshot-v3.js';
import type { Snapshot } from '../format/snapshot.js';
import type { ObjectAddress, TreeNode, TreeRefs } from '../format/tree.js';
import type { SnapshotInfo } from './views.js';

/** Kinds sealed whole under the repository's record key (master encryption key, or the members' key). */
export type RecordKind = 'config' | 'gcplan' | 'share' | 'grant';

/** A reader a snapshot's key is wrapped for besides its owner (format version 3). */
export interface SnapshotReader {
  name: string;
  publicKey: Uint8Array;
}

export interface Sealing {
  /** The repository's format version (every envelope carries it). */
  readonly version: number;
  /** Seed of the chunker's gear table and of directory split points. */
  readonly chunkerKey: Uint8Array;
  /** The id (and, in version 3, content key) of a chunk's or tree node's plaintext. */
  address(kind: 'chunk' | 'tree', plaintext: Uint8Array): ObjectAddress;
  sealChunk(at: ObjectAddress, plaintext: Uint8Array): Uint8Array;
  /** A chunk's plaintext, authenticated and checked against its id; `key` is its content key (version 3). */
  openChunk(id: string, key: Uint8Array | undefined, stored: Uint8Array, max: number): Uint8Array;
  /** A tree node's stored bytes; `plaintext` is the node's encoding (address was computed over it). */
  sealTree(at: ObjectAddress, plaintext: Uint8Array, node: TreeNode): Uint8Array;
  /** A tree node, authenticated, checked against its id and (version 3) its reference list. */
  openTree(id: string, key: Uint8Array | undefined, stored: Uint8Array): { node: TreeNode; plaintext: Uint8Array };
  /**
   * A tree node's encoding, authenticated and checked against its id, for a
   * caller that decodes it (and so checks its structure) itself: version 3
   * decodes it here too, to check its reference list; before, it is not decoded.
   */
  openTreePlaintext(id: string, key: Uint8Array | undefined, stored: Uint8Array): Uint8Array;
  /** The ids a tree node names, for the collector: version 3 reads only the outer envelope (no content key). */
  openTreeRefs(id: string, stored: Uint8Array): TreeRefs;
  sealRecord(kind: RecordKind, id: string, plaintext: Uint8Array): Uint8Array;
  openRecord(kind: RecordKind, id: string, stored: Uint8Array, max: number): Uint8Array;
  /** A new snapshot's id and stored bytes, readable by its owner and `readers` (version 3; ignored before). */
  sealSnapshot(s: Snapshot, readers: readonly SnapshotReader[]): { id: string; bytes: Uint8Array; key?: Uint8Array };
  /** A snapshot's verified plaintext (versions 1 and 2; a version 3 snapshot is read whole, with openSnapshot). */
  openSnapshotPlaintext(id: string, stored: Uint8Array): Uint8Array;
  /** A snapshot, opened and checked; NOT_SHARED (version 3) if this identity cannot read it. */
  openSnapshot(id: string, stored: Uint8Array): SnapshotInfo;
  /** What every member sees of a snapshot without reading it: its header (version 3) or the whole snapshot's (before). */
  openSnapshotHeader(id: string, stored: Uint8Array): SnapshotHeader | SnapshotInfo;
}
