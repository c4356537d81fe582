/**
 * Sealing of format versions 1 and 2 (format-spec/README.md sections 3 and
 * 4): ids are HMAC-SHA256(id key, plaintext), every object is one envelope
 * under the master encryption key at the repository's version byte.
 */
import { hmacSha256 } from '../crypto/hash.js';
import type { MasterKeys } from '../crypto/keys.js';
import { ObnamError } from '../errors.js';
import { openObject, sealObject } from '../format/envelope.js';
import type { SnapshotHeader } from '../format/snapshot-v3.js';
import { encodeSnapshot, Snapshot } from '../format/snapshot.js';
import { ObjectAddress, TreeNode, TreeRefs, treeRefs } from '../format/tree.js';
import type { Kind } from '../format/version.js';
import { MAX_PLAINTEXT } from './limits.js';
import type { RecordKind, Sealing } from './sealing.js';
import { decodeSnapshotObject, decodeTreeObject, SnapshotInfo } from './views.js';

export class MasterKeySealing implements Sealing {
  constructor(
    readonly keys: MasterKeys,
    readonly version: number,
    private readonly compressionLevel: number,
  ) {}

  get chunkerKey(): Uint8Array {
    return this.keys.chunker;
  }

  contentId(plaintext: Uint8Array): string {
    return hmacSha256(this.keys.id, plaintext).toString('hex');
  }

  address(_kind: 'chunk' | 'tree', plaintext: Uint8Array): ObjectAddress {
    return { id: this.contentId(plaintext) };
  }

  private seal(kind: Kind, id: string, plaintext: Uint8Array): Uint8Array {
    return sealObject(this.keys.encryption, kind, id, plaintext, this.compressionLevel, undefined, this.version);
  }

  private openContent(kind: 'chunk' | 'tree' | 'snapshot', id: string, stored: Uint8Array, max: number): Uint8Array {
    const plain = openObject(this.keys.encryption, kind, id, stored, max);
    if (this.contentId(plain) !== id) throw new ObnamError('CORRUPT', `${kind} ${id}: content does not match its id`);
    return plain;
  }

  sealChunk(at: ObjectAddress, plaintext: Uint8Array): Uint8Array {
    return this.seal('chunk', at.id, plaintext);
  }

  openChunk(id: string, _key: Uint8Array | undefined, stored: Uint8Array, max: number): Uint8Array {
    return this.openContent('chunk', id, stored, max);
  }

  sealTree(at: ObjectAddress, plaintext: Uint8Array, _node: TreeNode): Uint8Array {
    return this.seal('tree', at.id, plaintext);
  }

  openTree(id: string, _key: Uint8Array | undefined, stored: Uint8Array): { node: TreeNode; plaintext: Uint8Array } {
    const plaintext = this.openTreePlaintext(id, undefined, stored);
    return { node: decodeTreeObject(id, plaintext), plaintext };
  }

  openTreePlaintext(id: string, _key: Uint8Array | undefined, stored: Uint8Array): Uint8Array {
    return this.openContent('tree', id, stored, MAX_PLAINTEXT.tree);
  }

  openTreeRefs(id: string, stored: Uint8Array): TreeRefs {
    return treeRefs(this.openTree(id, undefined, stored).node);
  }

  sealRecord(kind: RecordKind, id: string, plaintext: Uint8Array): Uint8Array {
    return this.seal(kind, id, plaintext);
  }

  openRecord(kind: RecordKind, id: string, stored: Uint8Array, max: number): Uint8Array {
    return openObject(this.keys.encryption, kind, id, stored, max);
  }

  sealSnapshot(s: Snapshot): { id: string; bytes: Uint8Array } {
    const plaintext = encodeSnapshot(s);
    const id = this.contentId(plaintext);
    return { id, bytes: this.seal('snapshot', id, plaintext) };
  }

  openSnapshotPlaintext(id: string, stored: Uint8Array): Uint8Array {
    return this.openContent('snapshot', id, stored, MAX_PLAINTEXT.snapshot);
  }

  openSnapshot(id: string, stored: Uint8Array): SnapshotInfo {
    return decodeSnapshotObject(id, this.openSnapshotPlaintext(id, stored));
  }

  openSnapshotHeader(id: string, stored: Uint8Array): SnapshotHeader | SnapshotInfo {
    return this.openSnapshot(id, stored);
  }
}
