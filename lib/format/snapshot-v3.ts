/**
 * Version 3 snapshots (format-spec/sharing.md section 8). The outer
 * plaintext, sealed under the members' key, is
 *
 *   { header: { owner, hostname, time, tree }, recipients: [stanza...], body }
 *
 * The header is what every member may see (garbage collection needs `tree`,
 * listings and retention `owner`, `hostname`, `time`). Each recipient stanza
 * (x25519-auth, sender = the owner) wraps the snapshot key K_s under
 * C_snapshot = "obnam-snapshot" || 3 || SHA-256(CBOR(header)); the body is an
 * inner envelope under K_s with AAD_body = "obnam-snapshot-body" || 3 ||
 * SHA-256(CBOR(header)), holding the version 1 snapshot map plus tree_key,
 * owner_name, shared_with (and upgraded_from for rewritten snapshots).
 */
import { randomBytes } from 'node:crypto';
import { sha256 } from '../crypto/hash.js';
import { KeyPair, Stanza, stanzaFromCbor, stanzaToCbor, unwrapFileKey, wrapFileKey } from '../crypto/stanza.js';
import { ObnamError } from '../errors.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import { idFromBytes, idToBytes } from './ids.js';
import { openInner, sealInner, snapshotBodyAad } from './inner-envelope.js';
import { asArray, asBytes, asMap, asText, asTimestamp, fail } from './schema.js';
import { decodeSnapshotMap, Snapshot, snapshotMap } from './snapshot.js';
import { KEY_BYTES, Timestamp } from './tree.js';
import { SHARED_VERSION } from './version.js';

export const SNAPSHOT_KEY_BYTES = 32;
/** No snapshot is shared with more readers than this; more stanzas are refused unread (each costs two X25519). */
export const MAX_RECIPIENTS = 1024;

/** What every member sees of a snapshot. */
export interface SnapshotHeader {
  /** The public key of the member who made it. */
  owner: Uint8Array;
  hostname: string;
  time: Timestamp;
  /** The root tree's id. */
  tree: string;
}

/** What the sealed body adds to the version 1 snapshot map. */
export interface SnapshotBody extends Snapshot {
  treeKey: Uint8Array;
  ownerName: string;
  /** Names of the members besides the owner the writer wrapped the key for, sorted. */
  sharedWith: string[];
}

/** The outer plaintext's parts, as read by any member. */
export interface SnapshotOuter {
  header: SnapshotHeader;
  recipients: Stanza[];
  body: Uint8Array;
}

const latin1 = (s: string) => Buffer.from(s, 'latin1');

export function encodeHeader(h: SnapshotHeader): Uint8Array {
  return encodeCbor({ owner: h.owner, hostname: h.hostname, time: [h.time.sec, h.time.nsec], tree: idToBytes(h.tree) });
}

/** SHA-256 of the header's CBOR: what the stanzas' context and the body's AAD bind. */
export function headerHash(h: SnapshotHeader): Uint8Array {
  return sha256(encodeHeader(h));
}

/** C_snapshot: the context of a snapshot's recipient stanzas. */
export function snapshotStanzaContext(hash: Uint8Array): Uint8Array {
  return Buffer.concat([latin1('obnam-snapshot'), Buffer.from([SHARED_VERSION]), hash]);
}

export function encodeSnapshotBody(b: SnapshotBody): Uint8Array {
  if (!(b.treeKey instanceof Uint8Array) || b.treeKey.length !== KEY_BYTES) throw new ObnamError('INTERNAL', 'a version 3 snapshot needs its tree key');
  return encodeCbor({
    ...snapshotMap(b),
    tree_key: b.treeKey,
    owner_name: b.ownerName,
    shared_with: [...b.sharedWith].sort(),
    upgraded_from: b.upgradedFrom === undefined ? undefined : idToBytes(b.upgradedFrom),
  });
}

export function decodeSnapshotBody(v: unknown, what: string): SnapshotBody {
  const m = asMap(v, what);
  const s = decodeSnapshotMap(m, what);
  const treeKey = asBytes(m.tree_key, `${what} tree_key`);
  if (treeKey.length !== KEY_BYTES) fail(what, `tree_key must be ${KEY_BYTES} bytes`);
  const body: SnapshotBody = {
    ...s,
    treeKey: new Uint8Array(treeKey),
    ownerName: asText(m.owner_name, `${what} owner_name`),
    sharedWith: asArray(m.shared_with, `${what} shared_with`).map((n) => asText(n, `${what} shared_with`)),
  };
  if (m.upgraded_from !== undefined) body.upgradedFrom = idFromBytes(asBytes(m.upgraded_from, `${what} upgraded_from`));
  return body;
}

export function encodeSnapshotOuter(o: SnapshotOuter): Uint8Array {
  return encodeCbor({
    header: { owner: o.header.owner, hostname: o.header.hostname, time: [o.header.time.sec, o.header.time.nsec], tree: idToBytes(o.header.tree) },
    recipients: o.recipients.map(stanzaToCbor),
    body: o.body,
  });
}

/** The outer plaintext's parts; CORRUPT unless it has exactly the shape of section 8.1. */
export function decodeSnapshotOuter(plaintext: Uint8Array, what: string): SnapshotOuter {
  const m = asMap(decodeCbor(plaintext, what), what);
  const hm = asMap(m.header, `${what} header`);
  const owner = asBytes(hm.owner, `${what} header owner`);
  if (owner.length !== 32) fail(what, 'header owner must be a 32-byte public key');
  const header: SnapshotHeader = {
    owner: new Uint8Array(owner),
    hostname: asText(hm.hostname, `${what} header hostname`),
    time: asTimestamp(hm.time, `${what} header time`),
    tree: idFromBytes(asBytes(hm.tree, `${what} header tree`)),
  };
  const list = asArray(m.recipients, `${what} recipients`);
  if (list.length === 0 || list.length > MAX_RECIPIENTS) fail(what, `between 1 and ${MAX_RECIPIENTS} recipients expected, found ${list.length}`);
  const recipients = list.map((r) => stanzaFromCbor(r, `${what} recipient`));
  return { header, recipients, body: new Uint8Array(asBytes(m.body, `${what} body`)) };
}

/** Fixed inputs: only for computing test vectors. */
export interface SnapshotSealOptions {
  snapshotKey?: Uint8Array;
  ephemeralSecrets?: Uint8Array[];
  nonce?: Uint8Array;
}

/**
 * The outer plaintext of a new snapshot made by `owner`, readable by the
 * owner and by each of `readers` (public keys; the owner is first and is
 * not repeated). Returns the plaintext and the snapshot key.
 */
export function makeSnapshotOuter(
  body: SnapshotBody,
  owner: KeyPair,
  readers: readonly Uint8Array[],
  compressionLevel: number,
  opts: SnapshotSealOptions = {},
): { plaintext: Uint8Array; snapshotKey: Uint8Array } {
  const header: SnapshotHeader = { owner: owner.public, hostname: body.hostname, time: body.time, tree: body.tree };
  const hash = headerHash(header);
  const snapshotKey = opts.snapshotKey ?? new Uint8Array(randomBytes(SNAPSHOT_KEY_BYTES));
  const context = snapshotStanzaContext(hash);
  const seen = new Set<string>([Buffer.from(owner.public).toString('hex')]);
  const publicKeys = [owner.public, ...readers.filter((r) => {
    const k = Buffer.from(r).toString('hex');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  })];
  const recipients = publicKeys.map((r, i) => wrapFileKey(snapshotKey, r, context, { sender: owner, ephemeralSecret: opts.ephemeralSecrets?.[i] }));
  const sealedBody = sealInner(snapshotKey, snapshotBodyAad(hash), encodeSnapshotBody(body), compressionLevel, opts.nonce);
  return { plaintext: encodeSnapshotOuter({ header, recipients, body: sealedBody }), snapshotKey };
}

/** The snapshot key, if one of the stanzas opens with `identity` as coming from the header's owner. */
export function unwrapSnapshotKey(outer: SnapshotOuter, identity: KeyPair): Uint8Array | undefined {
  const context = snapshotStanzaContext(headerHash(outer.header));
  for (const s of outer.recipients) {
    const k = unwrapFileKey(s, identity, context, outer.header.owner);
    if (k) return k;
  }
  return undefined;
}

/** Opens the body with the snapshot key and checks it against the header; CORRUPT if either fails. */
export function openSnapshotBody(outer: SnapshotOuter, snapshotKey: Uint8Array, maxPlaintext: number, what: string): SnapshotBody {
  const plain = openInner(snapshotKey, snapshotBodyAad(headerHash(outer.header)), outer.body, maxPlaintext, `${what} body`);
  const body = decodeSnapshotBody(decodeCbor(plain, `${what} body`), `${what} body`);
  const h = outer.header;
  if (body.tree !== h.tree || body.hostname !== h.hostname || body.time.sec !== h.time.sec || body.time.nsec !== h.time.nsec) {
    fail(what, 'the body does not match the header (tree, time or hostname)');
  }
  return body;
}
