/**
 * Member objects (format-spec/sharing.md section 5): one per member of a
 * shared repository, kind `member`, a random id, plain CBOR (it must be
 * readable before any repository key is known):
 *
 *   { version: 3, name, public: bytes(32), can_delete, created, added_by,
 *     stanza: x25519 stanza wrapping K_m for `public`,
 *     keys: nonce || AES-256-GCM(K_m, CBOR(member key set)) || tag,
 *     mac: HMAC-SHA256(auth, "obnam-member" || 3 || id || CBOR([name, public, can_delete, created, added_by])) }
 *
 * Stanza context: "obnam-member" || byte(3) || id; AAD of `keys`:
 * "obnam-member-keys" || byte(3) || id. Decoding treats the bytes as hostile:
 * anything but exactly this shape, or more than 64 KiB, is CORRUPT.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ObnamError } from '../errors.js';
import { NONCE_BYTES, openAead, sealAead, TAG_BYTES } from '../crypto/aead.js';
import { hmacSha256 } from '../crypto/hash.js';
import type { Identity } from '../crypto/identity.js';
import { decodeMemberKeySet, encodeMemberKeySet, MemberKeySet, SHARED_FORMAT_VERSION } from '../crypto/memberkeys.js';
import { FILE_KEY_BYTES, Stanza, stanzaFromCbor, stanzaToCbor, unwrapFileKey, wrapFileKey } from '../crypto/stanza.js';
import { X25519_BYTES } from '../crypto/x25519.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import { checkId, idToBytes, shortId } from './ids.js';
import { asBytes, asMap, asText, asUint, fail } from './schema.js';

/** No member object is anywhere near this large; readers refuse larger ones unread. */
export const MAX_MEMBER_OBJECT_BYTES = 64 * 1024;
export const MEMBER_MAC_BYTES = 32;
const MEMBER_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** The sealed key set is a small fixed-shape map; anything far larger is not one. */
const MAX_SEALED_KEYS_BYTES = 1024;

export interface MemberInfo {
  /** The member object's id (64 hex characters). */
  id: string;
  name: string;
  publicKey: Uint8Array;
  canDelete: boolean;
  /** Seconds since the epoch. */
  created: number;
  /** The name of the member who added this one ("" for the first member). */
  addedBy: string;
}

/** A decoded member object: its information, the stanza and sealed keys, and the mac (not yet verified). */
export interface MemberObject extends MemberInfo {
  stanza: Stanza;
  sealedKeys: Uint8Array;
  mac: Uint8Array;
}

/** Fixed inputs: only for computing test vectors. */
export interface MemberSealOptions {
  fileKey?: Uint8Array;
  ephemeralSecret?: Uint8Array;
  nonce?: Uint8Array;
}

const latin1 = (s: string) => Buffer.from(s, 'latin1');

function labelled(label: string, id: string): Uint8Array {
  return Buffer.concat([latin1(label), Buffer.from([SHARED_FORMAT_VERSION]), idToBytes(id)]);
}

/** The context of a member object's stanza. */
export function memberStanzaContext(id: string): Uint8Array {
  return labelled('obnam-member', id);
}

/** The associated data of a member object's sealed keys. */
export function memberKeysAad(id: string): Uint8Array {
  return labelled('obnam-member-keys', id);
}

/** A new random member object id. */
export function newMemberId(): string {
  return randomBytes(32).toString('hex');
}

/** Whether `name` is a valid member name (1-64 of [a-z0-9._-], starting with a letter or digit). */
export function isMemberName(name: string): boolean {
  return MEMBER_NAME_RE.test(name);
}

/** `name` if it is a valid member name; USAGE otherwise (for names given on a command line). */
export function checkMemberName(name: string): string {
  if (!isMemberName(name)) {
    throw new ObnamError(
      'USAGE',
      `not a valid member name: ${JSON.stringify(name.slice(0, 80))} (1 to 64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit)`,
    );
  }
  return name;
}

/** HMAC-SHA256(auth, "obnam-member" || 3 || id || CBOR([name, public, can_delete, created, added_by])). */
export function memberMac(auth: Uint8Array, info: MemberInfo): Uint8Array {
  const fields = encodeCbor([info.name, info.publicKey, info.canDelete, info.created, info.addedBy]);
  return new Uint8Array(hmacSha256(auth, memberStanzaContext(info.id), fields));
}

function checkInfo(info: MemberInfo): void {
  checkId(info.id, 'member id');
  if (!isMemberName(info.name)) throw new ObnamError('INTERNAL', `invalid member name ${JSON.stringify(info.name)}`);
  if (info.addedBy !== '' && !isMemberName(info.addedBy)) throw new ObnamError('INTERNAL', `invalid added_by ${JSON.stringify(info.addedBy)}`);
  if (!(info.publicKey instanceof Uint8Array) || info.publicKey.length !== X25519_BYTES) {
    throw new ObnamError('INTERNAL', `a member's public key is ${X25519_BYTES} bytes`);
  }
  if (!Number.isSafeInteger(info.created) || info.created < 0) throw new ObnamError('INTERNAL', 'member created must be an unsigned integer');
}

/**
 * The stored bytes of a member object giving `keys` to `info.publicKey`
 * (USAGE if that is not a usable public key).
 */
export function encodeMemberObject(keys: MemberKeySet, info: MemberInfo, opts: MemberSealOptions = {}): Uint8Array {
  checkInfo(info);
  const fileKey = opts.fileKey ?? new Uint8Array(randomBytes(FILE_KEY_BYTES));
  const stanza = wrapFileKey(fileKey, info.publicKey, memberStanzaContext(info.id), { ephemeralSecret: opts.ephemeralSecret });
  const sealedKeys = sealAead(fileKey, encodeCbor(encodeMemberKeySet(keys)), memberKeysAad(info.id), opts.nonce);
  return encodeCbor({
    version: SHARED_FORMAT_VERSION,
    name: info.name,
    public: info.publicKey,
    can_delete: info.canDelete,
    created: info.created,
    added_by: info.addedBy,
    stanza: stanzaToCbor(stanza),
    keys: sealedKeys,
    mac: memberMac(keys.auth, info),
  });
}

/** Decodes a member object's stored bytes: CORRUPT (UNSUPPORTED_VERSION) unless it has exactly the shape of 5.1. */
export function decodeMemberObject(id: string, bytes: Uint8Array): MemberObject {
  const what = `member ${shortId(checkId(id, 'member id'))}`;
  if (bytes.length > MAX_MEMBER_OBJECT_BYTES) fail(what, `larger than ${MAX_MEMBER_OBJECT_BYTES} bytes`);
  const m = asMap(decodeCbor(bytes, what), what);
  const version = asUint(m.version, `${what} version`);
  if (version !== SHARED_FORMAT_VERSION) {
    throw new ObnamError('UNSUPPORTED_VERSION', `${what} has version ${version}, but this obnam reads only version ${SHARED_FORMAT_VERSION}`);
  }
  const name = asText(m.name, `${what} name`);
  if (!isMemberName(name)) fail(what, `invalid name ${JSON.stringify(name.slice(0, 80))}`);
  const publicKey = asBytes(m.public, `${what} public key`);
  if (publicKey.length !== X25519_BYTES) fail(what, `public key must be ${X25519_BYTES} bytes`);
  if (typeof m.can_delete !== 'boolean') fail(`${what} can_delete`, 'expected a boolean');
  const created = asUint(m.created, `${what} created`);
  const addedBy = asText(m.added_by, `${what} added_by`);
  if (addedBy !== '' && !isMemberName(addedBy)) fail(what, `invalid added_by ${JSON.stringify(addedBy.slice(0, 80))}`);
  const stanza = stanzaFromCbor(m.stanza, `${what} stanza`);
  if (stanza.type !== 'x25519') fail(what, `its stanza must be of type x25519, not ${stanza.type}`);
  const sealedKeys = asBytes(m.keys, `${what} keys`);
  if (sealedKeys.length < NONCE_BYTES + TAG_BYTES + 1 || sealedKeys.length > MAX_SEALED_KEYS_BYTES) {
    fail(what, `sealed keys of ${sealedKeys.length} bytes`);
  }
  const mac = asBytes(m.mac, `${what} mac`);
  if (mac.length !== MEMBER_MAC_BYTES) fail(what, `mac must be ${MEMBER_MAC_BYTES} bytes`);
  return {
    id,
    name,
    publicKey: new Uint8Array(publicKey),
    canDelete: m.can_delete,
    created,
    addedBy,
    stanza,
    sealedKeys: new Uint8Array(sealedKeys),
    mac: new Uint8Array(mac),
  };
}

/** The member key set in `obj`, opened with `identity`; CORRUPT if it does not open (or is not a key set). */
export function unlockMemberKeys(obj: MemberObject, identity: Identity): MemberKeySet {
  const what = `member ${shortId(obj.id)} (${obj.name})`;
  const fileKey = unwrapFileKey(obj.stanza, identity, memberStanzaContext(obj.id));
  if (!fileKey) throw new ObnamError('CORRUPT', `${what}: its stanza does not open with this identity`);
  const plain = openAead(fileKey, obj.sealedKeys, memberKeysAad(obj.id), `${what} keys`);
  return decodeMemberKeySet(decodeCbor(plain, `${what} keys`), `${what} key set`);
}

/** Whether `obj`'s mac verifies with the `auth` key: only then is it a member (5.2 step 3). */
export function memberMacValid(obj: MemberObject, auth: Uint8Array): boolean {
  const expected = memberMac(auth, obj);
  return obj.mac.length === expected.length && timingSafeEqual(obj.mac, expected);
}

/** Just the information of a member object (without stanza, keys and mac). */
export function memberInfoOf(obj: MemberInfo): MemberInfo {
  return {
    id: obj.id,
    name: obj.name,
    publicKey: obj.publicKey,
    canDelete: obj.canDelete,
    created: obj.created,
    addedBy: obj.addedBy,
  };
}
