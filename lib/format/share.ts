/**
 * Share and standing-grant objects (format-spec/sharing.md section 9): the
 * outer plaintexts of kinds `share` and `grant` (the Repository seals them in
 * an outer envelope under the `members` key). Both are
 *
 *   { owner: bytes(32), recipients: [stanza...], body: inner envelope under a random file key }
 *
 * - share: recipients = [x25519-auth owner -> grantee, x25519-auth owner -> owner],
 *   context "obnam-share" || 3 || id; body { snapshots: [[id, K_s]...],
 *   grantee, grantee_name, created };
 * - grant: recipients = [x25519-auth owner -> owner], context "obnam-grant" || 3 || id;
 *   body { host, grantee, grantee_name, state: "granted" | "withdrawn", created }.
 *
 * For each (host, grantee) of an owner, the grant with the greatest
 * `created` (ties: the greater id) says the state (currentGrantees).
 * Decoding treats the plaintext as hostile: any other shape is CORRUPT.
 */
import { randomBytes } from 'node:crypto';
import { ObnamError } from '../errors.js';
import type { Identity } from '../crypto/identity.js';
import { FILE_KEY_BYTES, Stanza, stanzaFromCbor, stanzaToCbor, unwrapFileKey, wrapFileKey } from '../crypto/stanza.js';
import { X25519_BYTES } from '../crypto/x25519.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import { checkId, idFromBytes, idToBytes, shortId } from './ids.js';
import { innerAad, openInner, sealInner } from './inner-envelope.js';
import { isMemberName } from './member.js';
import { asArray, asBytes, asMap, asText, asTimestamp, fail } from './schema.js';
import { Kind, SHARED_VERSION } from './version.js';

/** Inner plaintexts of shares (many snapshots) and grants (one host) stay far below these. */
export const MAX_SHARE_BODY_BYTES = 8 * 1024 * 1024;
export const MAX_GRANT_BODY_BYTES = 16 * 1024;

export interface Timestamp {
  sec: number;
  nsec: number;
}

/** A member a share or grant is for. */
export interface Grantee {
  publicKey: Uint8Array;
  name: string;
}

/** A snapshot's id and its snapshot key K_s. */
export interface SharedSnapshot {
  id: string;
  key: Uint8Array;
}

export interface OpenedShare {
  id: string;
  owner: Uint8Array;
  grantee: Uint8Array;
  granteeName: string;
  snapshots: SharedSnapshot[];
  created: Timestamp;
}

export type GrantState = 'granted' | 'withdrawn';

export interface Grant {
  id: string;
  owner: Uint8Array;
  host: string;
  grantee: Uint8Array;
  granteeName: string;
  state: GrantState;
  created: Timestamp;
}

/** Fixed inputs: only for computing test vectors. */
export interface ShareSealOptions {
  fileKey?: Uint8Array;
  /** One ephemeral secret per stanza, in the order of `recipients`. */
  ephemeralSecrets?: Uint8Array[];
  nonce?: Uint8Array;
}

/** The outer plaintext as every member reads it (the recipients are not named). */
export interface SealedObject {
  owner: Uint8Array;
  recipients: Stanza[];
  body: Uint8Array;
}

const latin1 = (s: string) => Buffer.from(s, 'latin1');

function stanzaContext(kind: 'share' | 'grant', id: string): Uint8Array {
  return Buffer.concat([latin1(`obnam-${kind}`), Buffer.from([SHARED_VERSION]), idToBytes(id)]);
}

/** A new random id for a share or grant object. */
export function newShareId(): string {
  return randomBytes(32).toString('hex');
}

export function nowTimestamp(ms = Date.now()): Timestamp {
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

function checkKey(what: string, k: Uint8Array): void {
  if (!(k instanceof Uint8Array) || k.length !== 32) throw new ObnamError('INTERNAL', `${what} must be 32 bytes`);
}

function checkGrantee(g: Grantee): void {
  checkKey("a grantee's public key", g.publicKey);
  if (!isMemberName(g.name)) throw new ObnamError('INTERNAL', `invalid grantee name ${JSON.stringify(g.name)}`);
}

function seal(
  kind: 'share' | 'grant',
  id: string,
  owner: Identity,
  to: Uint8Array[],
  body: Uint8Array,
  opts: ShareSealOptions,
): Uint8Array {
  checkId(id, `${kind} id`);
  const fileKey = opts.fileKey ?? new Uint8Array(randomBytes(FILE_KEY_BYTES));
  const context = stanzaContext(kind, id);
  const recipients = to.map((r, i) =>
    stanzaToCbor(wrapFileKey(fileKey, r, context, { sender: owner, ephemeralSecret: opts.ephemeralSecrets?.[i] })),
  );
  const sealed = sealInner(fileKey, innerAad(kind, id), body, 0, opts.nonce);
  return encodeCbor({ owner: owner.public, recipients, body: new Uint8Array(sealed) });
}

/** The outer plaintext of a share of `snapshots` (their keys) by `owner` with `grantee`. */
export function makeShareObject(
  id: string,
  owner: Identity,
  grantee: Grantee,
  snapshots: readonly SharedSnapshot[],
  created: Timestamp = nowTimestamp(),
  opts: ShareSealOptions = {},
): Uint8Array {
  checkGrantee(grantee);
  if (snapshots.length === 0) throw new ObnamError('INTERNAL', 'a share names at least one snapshot');
  for (const s of snapshots) checkKey('a snapshot key', s.key);
  const body = encodeCbor({
    snapshots: snapshots.map((s) => [idToBytes(s.id), s.key]),
    grantee: grantee.publicKey,
    grantee_name: grantee.name,
    created: [created.sec, created.nsec],
  });
  return seal('share', id, owner, [grantee.publicKey, owner.public], body, opts);
}

/** The outer plaintext of a standing grant (or its withdrawal) by `owner` for `host`. */
export function makeGrantObject(
  id: string,
  owner: Identity,
  grant: { host: string; grantee: Grantee; state: GrantState; created?: Timestamp },
  opts: ShareSealOptions = {},
): Uint8Array {
  checkGrantee(grant.grantee);
  if (grant.host === '') throw new ObnamError('INTERNAL', 'a grant names a host');
  const created = grant.created ?? nowTimestamp();
  const body = encodeCbor({
    host: grant.host,
    grantee: grant.grantee.publicKey,
    grantee_name: grant.grantee.name,
    state: grant.state,
    created: [created.sec, created.nsec],
  });
  return seal('grant', id, owner, [owner.public], body, opts);
}

/** Decodes the outer plaintext every member reads: the owner, the stanzas, the sealed body (CORRUPT if malformed). */
export function decodeSealedObject(kind: 'share' | 'grant', id: string, plaintext: Uint8Array): SealedObject {
  const what = `${kind} ${shortId(checkId(id, `${kind} id`))}`;
  const m = asMap(decodeCbor(plaintext, what), what);
  const owner = asBytes(m.owner, `${what} owner`);
  if (owner.length !== X25519_BYTES) fail(what, `owner must be ${X25519_BYTES} bytes`);
  const list = asArray(m.recipients, `${what} recipients`);
  const expected = kind === 'share' ? 2 : 1;
  if (list.length !== expected) fail(what, `expected ${expected} recipient stanza${expected === 1 ? '' : 's'}, found ${list.length}`);
  const recipients = list.map((s, i) => {
    const st = stanzaFromCbor(s, `${what} stanza ${i}`);
    if (st.type !== 'x25519-auth') fail(what, `stanza ${i} must be of type x25519-auth`);
    return st;
  });
  const body = asBytes(m.body, `${what} body`);
  return { owner: new Uint8Array(owner), recipients, body: new Uint8Array(body) };
}

/** The key of the member who made a share or grant object (what every member may see). */
export function sealedObjectOwner(kind: 'share' | 'grant', id: string, plaintext: Uint8Array): Uint8Array {
  return decodeSealedObject(kind, id, plaintext).owner;
}

/** The body's plaintext if one of the stanzas opens for `identity` (sender: the owner), else undefined. */
function openBody(kind: 'share' | 'grant', id: string, obj: SealedObject, identity: Identity, max: number): Uint8Array | undefined {
  const context = stanzaContext(kind, id);
  for (const st of obj.recipients) {
    const fileKey = unwrapFileKey(st, identity, context, obj.owner);
    if (fileKey) return openInner(fileKey, innerAad(kind as Kind, id), obj.body, max, `${kind} ${shortId(id)} body`);
  }
  return undefined;
}

function granteeOf(m: Record<string, unknown>, what: string): { grantee: Uint8Array; granteeName: string } {
  const grantee = asBytes(m.grantee, `${what} grantee`);
  if (grantee.length !== X25519_BYTES) fail(what, `grantee must be ${X25519_BYTES} bytes`);
  const granteeName = asText(m.grantee_name, `${what} grantee_name`);
  if (!isMemberName(granteeName)) fail(what, `invalid grantee name ${JSON.stringify(granteeName.slice(0, 80))}`);
  return { grantee: new Uint8Array(grantee), granteeName };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/**
 * The share in `plaintext` if it opens for `identity` (its grantee or its
 * owner), undefined if it does not; CORRUPT if it is malformed.
 */
export function openShareObject(id: string, plaintext: Uint8Array, identity: Identity): OpenedShare | undefined {
  const what = `share ${shortId(checkId(id, 'share id'))}`;
  const obj = decodeSealedObject('share', id, plaintext);
  const inner = openBody('share', id, obj, identity, MAX_SHARE_BODY_BYTES);
  if (!inner) return undefined;
  const m = asMap(decodeCbor(inner, `${what} body`), `${what} body`);
  const { grantee, granteeName } = granteeOf(m, what);
  if (!same(identity.public, grantee) && !same(identity.public, obj.owner)) fail(what, 'opens for a member it does not name');
  const list = asArray(m.snapshots, `${what} snapshots`);
  if (list.length === 0) fail(what, 'names no snapshot');
  const snapshots = list.map((e, i) => {
    const pair = asArray(e, `${what} snapshot ${i}`);
    if (pair.length !== 2) fail(what, `snapshot ${i}: expected [id, key]`);
    const key = asBytes(pair[1], `${what} snapshot ${i} key`);
    if (key.length !== 32) fail(what, `snapshot ${i}: key must be 32 bytes`);
    return { id: idFromBytes(asBytes(pair[0], `${what} snapshot ${i} id`)), key: new Uint8Array(key) };
  });
  return { id, owner: obj.owner, grantee, granteeName, snapshots, created: asTimestamp(m.created, `${what} created`) };
}

/** The grant in `plaintext` if `identity` is its owner (only the owner opens grants), else undefined; CORRUPT if malformed. */
export function openGrantObject(id: string, plaintext: Uint8Array, identity: Identity): Grant | undefined {
  const what = `grant ${shortId(checkId(id, 'grant id'))}`;
  const obj = decodeSealedObject('grant', id, plaintext);
  if (!same(obj.owner, identity.public)) return undefined;
  const inner = openBody('grant', id, obj, identity, MAX_GRANT_BODY_BYTES);
  if (!inner) return undefined;
  const m = asMap(decodeCbor(inner, `${what} body`), `${what} body`);
  const host = asText(m.host, `${what} host`);
  if (host === '' || host.length > 1024) fail(what, 'invalid host');
  const state = asText(m.state, `${what} state`);
  if (state !== 'granted' && state !== 'withdrawn') fail(what, `unknown state ${JSON.stringify(state.slice(0, 40))}`);
  return { id, owner: obj.owner, host, ...granteeOf(m, what), state, created: asTimestamp(m.created, `${what} created`) };
}

function later(a: Grant, b: Grant): boolean {
  if (a.created.sec !== b.created.sec) return a.created.sec > b.created.sec;
  if (a.created.nsec !== b.created.nsec) return a.created.nsec > b.created.nsec;
  return a.id > b.id;
}

/** For each (host, grantee), the grant object that says its state (9.2): the latest, ties broken by the greater id. */
export function latestGrants(grants: Iterable<Grant>): Grant[] {
  const best = new Map<string, Grant>();
  for (const g of grants) {
    const k = `${g.host}\0${Buffer.from(g.grantee).toString('hex')}`;
    const cur = best.get(k);
    if (!cur || later(g, cur)) best.set(k, g);
  }
  return [...best.values()];
}

/** The grantees whose current state for `host` is `granted`. */
export function currentGrantees(grants: Iterable<Grant>, host: string): Grantee[] {
  return latestGrants(grants)
    .filter((g) => g.host === host && g.state === 'granted')
    .map((g) => ({ publicKey: g.grantee, name: g.granteeName }));
}
