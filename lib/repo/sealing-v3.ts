/**
 * Sealing of format version 3 (format-spec/sharing.md sections 6 to 8).
 *
 * - Chunks: one envelope under the chunk's content key ck.
 * - Trees: an outer envelope under the members' key holding
 *   { refs, content }, `content` an inner envelope under the node's ck.
 * - Snapshots: an outer envelope under the members' key holding
 *   { header, recipients, body }; the body opens with the snapshot key,
 *   which a stanza for this identity (or a share) gives.
 * - config, gcplan, share, grant: one envelope under the members' key.
 *
 * Ids and content keys come from the content digest (lib/crypto/contentkey.ts).
 * Keys travel with references: nothing here maps ids to content keys, except
 * the snapshot keys this identity has opened or been given (one per snapshot).
 */
import { contentAddress } from '../crypto/contentkey.js';
import type { MemberKeySet } from '../crypto/memberkeys.js';
import type { KeyPair } from '../crypto/stanza.js';
import { ObnamError } from '../errors.js';
import { decodeCbor, encodeCbor } from '../format/cbor.js';
import { openObject, sealObject } from '../format/envelope.js';
import { innerAad, openInner, sealInner } from '../format/inner-envelope.js';
import { asBytes, asMap } from '../format/schema.js';
import {
  decodeSnapshotOuter,
  encodeSnapshotBody,
  makeSnapshotOuter,
  openSnapshotBody,
  SnapshotBody,
  SnapshotHeader,
  SnapshotOuter,
  unwrapSnapshotKey,
} from '../format/snapshot-v3.js';
import type { Snapshot } from '../format/snapshot.js';
import { decodeTreeNode, decodeTreeRefs, encodeTreeRefs, sameTreeRefs, ObjectAddress, TreeNode, TreeRefs, treeRefs } from '../format/tree.js';
import { Kind, KIND_CODE, SHARED_VERSION } from '../format/version.js';
import { MAX_PLAINTEXT } from './limits.js';
import type { RecordKind, Sealing, SnapshotReader } from './sealing.js';
import type { SnapshotInfo } from './views.js';

/** The outer plaintext of a tree may exceed the inner limit by its reference list (sharing.md 6.3). */
const MAX_TREE_OUTER = 2 * MAX_PLAINTEXT.tree;

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** The member this repository is opened as: their identity and name. */
export interface SealingMember {
  identity: KeyPair;
  name: string;
}

export class MemberKeySealing implements Sealing {
  readonly version = SHARED_VERSION;
  /** Snapshot keys opened from stanzas or written here: one 32-byte key per snapshot. */
  private readonly snapshotKeys = new Map<string, Uint8Array>();
  /** Snapshot keys given by shares, each with the public key of the owner who shared it (the header must name them). */
  private readonly sharedKeys = new Map<string, { key: Uint8Array; owner?: Uint8Array }>();
  /** The last snapshot sealed, to seal the same snapshot to the same bytes. */
  private lastSealed?: { same: string; sealed: { id: string; bytes: Uint8Array; key: Uint8Array } };

  constructor(
    readonly keys: MemberKeySet,
    private readonly compressionLevel: number,
    /** Undefined in worker threads, which read and write chunks only. */
    private readonly member?: SealingMember,
    /** The current name of the member with this public key (hex), if they are a member. */
    private readonly memberName: (publicKeyHex: string) => string | undefined = () => undefined,
  ) {}

  get chunkerKey(): Uint8Array {
    return this.keys.chunker;
  }

  address(kind: 'chunk' | 'tree' | 'snapshot', plaintext: Uint8Array): ObjectAddress & { key: Uint8Array } {
    return contentAddress(this.keys.content, KIND_CODE[kind], plaintext);
  }

  private needKey(kind: Kind, id: string, key: Uint8Array | undefined): Uint8Array {
    if (!key) throw new ObnamError('INTERNAL', `${kind} ${id}: a version 3 object is read with the content key of its reference`);
    return key;
  }

  private checkId(kind: 'chunk' | 'tree' | 'snapshot', id: string, plaintext: Uint8Array): void {
    if (this.address(kind, plaintext).id !== id) throw new ObnamError('CORRUPT', `${kind} ${id}: content does not match its id`);
  }

  sealChunk(at: ObjectAddress, plaintext: Uint8Array): Uint8Array {
    return sealObject(this.needKey('chunk', at.id, at.key), 'chunk', at.id, plaintext, this.compressionLevel, undefined, SHARED_VERSION);
  }

  openChunk(id: string, key: Uint8Array | undefined, stored: Uint8Array, max: number): Uint8Array {
    const plain = openObject(this.needKey('chunk', id, key), 'chunk', id, stored, max);
    this.checkId('chunk', id, plain);
    return plain;
  }

  sealTree(at: ObjectAddress, plaintext: Uint8Array, node: TreeNode): Uint8Array {
    const content = sealInner(this.needKey('tree', at.id, at.key), innerAad('tree', at.id), plaintext, this.compressionLevel);
    const outer = encodeCbor({ refs: encodeTreeRefs(treeRefs(node)), content });
    // The outer plaintext is mostly ciphertext: not compressed (flag 00).
    return sealObject(this.keys.members, 'tree', at.id, outer, 0, undefined, SHARED_VERSION);
  }

  private openTreeOuter(id: string, stored: Uint8Array): { refs: TreeRefs; content: Uint8Array } {
    const what = `tree ${id}`;
    const m = asMap(decodeCbor(openObject(this.keys.members, 'tree', id, stored, MAX_TREE_OUTER), what), what);
    return { refs: decodeTreeRefs(m.refs, `${what} refs`), content: asBytes(m.content, `${what} content`) };
  }

  openTree(id: string, key: Uint8Array | undefined, stored: Uint8Array): { node: TreeNode; plaintext: Uint8Array } {
    const what = `tree ${id}`;
    const outer = this.openTreeOuter(id, stored);
    const plaintext = openInner(this.needKey('tree', id, key), innerAad('tree', id), outer.content, MAX_PLAINTEXT.tree, what);
    this.checkId('tree', id, plaintext);
    const node = decodeTreeNode(decodeCbor(plaintext, what), what, true);
    // Readers that open the node check its reference list (sharing.md 7.2): a lying one would mislead the collector.
    if (!sameTreeRefs(outer.refs, treeRefs(node))) throw new ObnamError('CORRUPT', `${what}: its reference list does not match what the node names`);
    return { node, plaintext };
  }

  openTreePlaintext(id: string, key: Uint8Array | undefined, stored: Uint8Array): Uint8Array {
    return this.openTree(id, key, stored).plaintext;
  }

  openTreeRefs(id: string, stored: Uint8Array): TreeRefs {
    return this.openTreeOuter(id, stored).refs;
  }

  sealRecord(kind: RecordKind, id: string, plaintext: Uint8Array): Uint8Array {
    return sealObject(this.keys.members, kind, id, plaintext, this.compressionLevel, undefined, SHARED_VERSION);
  }

  openRecord(kind: RecordKind, id: string, stored: Uint8Array, max: number): Uint8Array {
    return openObject(this.keys.members, kind, id, stored, max);
  }

  private self(): SealingMember {
    if (!this.member) throw new ObnamError('INTERNAL', 'snapshots are read and written with the identity of the main thread');
    return this.member;
  }

  sealSnapshot(s: Snapshot, readers: readonly SnapshotReader[]): { id: string; bytes: Uint8Array; key: Uint8Array } {
    const me = this.self();
    if (!s.treeKey) throw new ObnamError('INTERNAL', 'a version 3 snapshot needs the content key of its root tree');
    const others = readers.filter((r) => hex(r.publicKey) !== hex(me.identity.public));
    const sharedWith = [...new Set(others.map((r) => r.name))].sort();
    const body = { ...s, treeKey: s.treeKey, ownerName: me.name, sharedWith };
    // The same snapshot sealed again (a backup putting it again after a late put, README 14.6 B5)
    // is the same object: its key, stanzas and nonces are random, so the last one is kept.
    const same = hex(encodeSnapshotBody(body)) + others.map((r) => hex(r.publicKey)).join('');
    if (this.lastSealed?.same === same) return { ...this.lastSealed.sealed, bytes: new Uint8Array(this.lastSealed.sealed.bytes) };
    const { plaintext, snapshotKey } = makeSnapshotOuter(body, me.identity, others.map((r) => r.publicKey), this.compressionLevel);
    const id = this.address('snapshot', plaintext).id;
    this.snapshotKeys.set(id, snapshotKey);
    const sealed = { id, bytes: sealObject(this.keys.members, 'snapshot', id, plaintext, 0, undefined, SHARED_VERSION), key: snapshotKey };
    this.lastSealed = { same, sealed };
    return sealed;
  }

  private openSnapshotOuter(id: string, stored: Uint8Array): SnapshotOuter {
    const plain = openObject(this.keys.members, 'snapshot', id, stored, MAX_PLAINTEXT.snapshot);
    this.checkId('snapshot', id, plain);
    return decodeSnapshotOuter(plain, `snapshot ${id}`);
  }

  openSnapshotHeader(id: string, stored: Uint8Array): SnapshotHeader {
    return this.openSnapshotOuter(id, stored).header;
  }

  /** The snapshot key of a snapshot this identity can read; NOT_SHARED otherwise. */
  snapshotKeyOf(id: string, stored: Uint8Array): Uint8Array {
    return this.open(id, stored).key;
  }

  /**
   * Accepts a snapshot key from a share made by `owner`: it is used only if
   * the snapshot's header names that owner (sharing.md 9.1: readers accept a
   * share only from a snapshot's owner). Without `owner` the caller checked.
   */
  acceptSnapshotKey(id: string, key: Uint8Array, owner?: Uint8Array): void {
    if (!this.sharedKeys.has(id)) this.sharedKeys.set(id, { key: new Uint8Array(key), owner: owner && new Uint8Array(owner) });
  }

  /** A key a share gave for this snapshot, if its owner is the header's. */
  private sharedKey(id: string, outer: SnapshotOuter): Uint8Array | undefined {
    const s = this.sharedKeys.get(id);
    if (!s || (s.owner && Buffer.compare(s.owner, outer.header.owner) !== 0)) return undefined;
    return s.key;
  }

  private open(id: string, stored: Uint8Array): { info: SnapshotInfo; key: Uint8Array } {
    const what = `snapshot ${id}`;
    const outer = this.openSnapshotOuter(id, stored);
    let key = this.snapshotKeys.get(id);
    let body: SnapshotBody | undefined;
    if (!key) {
      // A key from a share that does not open the body (a hostile or stale share) is passed over, not damage.
      const shared = this.sharedKey(id, outer);
      if (shared) body = openedOrUndefined(() => openSnapshotBody(outer, shared, MAX_PLAINTEXT.snapshot, what));
      key = body ? shared : unwrapSnapshotKey(outer, this.self().identity);
      if (!key) throw new ObnamError('NOT_SHARED', `snapshot ${id.slice(0, 8)} is not shared with you`);
      this.snapshotKeys.set(id, key);
    }
    body ??= openSnapshotBody(outer, key, MAX_PLAINTEXT.snapshot, what);
    const { ownerName, sharedWith, ...snapshot } = body;
    return {
      info: {
        id,
        ...snapshot,
        owner: outer.header.owner,
        ownerName: this.memberName(hex(outer.header.owner)) ?? ownerName,
        sharedWith,
        own: Buffer.compare(outer.header.owner, this.self().identity.public) === 0,
      },
      key,
    };
  }

  openSnapshotPlaintext(id: string): Uint8Array {
    throw new ObnamError('INTERNAL', `snapshot ${id}: a shared repository's snapshots are read whole (getSnapshot), with the identity of the main thread`);
  }

  openSnapshot(id: string, stored: Uint8Array): SnapshotInfo {
    return this.open(id, stored).info;
  }
}

/** What `open` returns, or undefined if it fails authentication or decoding (CORRUPT). */
function openedOrUndefined<T>(open: () => T): T | undefined {
  try {
    return open();
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'CORRUPT') return undefined;
    throw e;
  }
}
