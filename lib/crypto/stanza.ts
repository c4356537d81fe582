/**
 * Recipient stanzas (format-spec/sharing.md section 3): a 32-byte file key
 * wrapped for one X25519 public key, like an age recipient stanza.
 *
 *   { type: "x25519" | "x25519-auth", epk: bytes(32), body: bytes(48) }
 *
 * wk = HKDF-SHA256(salt = epk || recipient [|| sender], ikm = DH(e, R) [|| DH(s_S, R)],
 *                  info = "obnam-stanza " || type); body = AES-256-GCM(wk, 12 zero bytes, key, context).
 * "x25519-auth" also proves to the recipient that the sender's secret key made it.
 */
import { hkdfSync } from 'node:crypto';
import { ObnamError } from '../errors.js';
import { asBytes, asMap, asText, fail } from '../format/schema.js';
import { NONCE_BYTES, openAead, sealAead } from './aead.js';
import { newSecretKey, publicKeyOf, sharedSecret, X25519_BYTES } from './x25519.js';

export const FILE_KEY_BYTES = 32;
export const STANZA_BODY_BYTES = FILE_KEY_BYTES + 16;
export type StanzaType = 'x25519' | 'x25519-auth';

export interface Stanza {
  type: StanzaType;
  epk: Uint8Array;
  body: Uint8Array;
}

/** An X25519 key pair: what a recipient unwraps with and a sender authenticates with. */
export interface KeyPair {
  secret: Uint8Array;
  public: Uint8Array;
}

export interface WrapOptions {
  /** Makes an "x25519-auth" stanza from this sender. */
  sender?: KeyPair;
  /** A fixed ephemeral secret key: only for computing test vectors. */
  ephemeralSecret?: Uint8Array;
}

const ZERO_NONCE = new Uint8Array(NONCE_BYTES);

/** The wrap key of a stanza, from the shared secrets and the public keys (exported for test vectors). */
export function stanzaWrapKey(type: StanzaType, ikm: Uint8Array, salt: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, Buffer.from(`obnam-stanza ${type}`, 'latin1'), 32));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function checkKey(what: string, k: Uint8Array, n: number): void {
  if (!(k instanceof Uint8Array) || k.length !== n) throw new ObnamError('INTERNAL', `${what} must be ${n} bytes`);
}

/** Wraps `fileKey` for `recipient` under `context`; USAGE if the recipient is not a usable key. */
export function wrapFileKey(fileKey: Uint8Array, recipient: Uint8Array, context: Uint8Array, opts: WrapOptions = {}): Stanza {
  checkKey('a file key', fileKey, FILE_KEY_BYTES);
  checkKey('a public key', recipient, X25519_BYTES);
  const type: StanzaType = opts.sender ? 'x25519-auth' : 'x25519';
  const e = opts.ephemeralSecret ?? newSecretKey();
  const epk = publicKeyOf(e);
  const unusable = () => new ObnamError('USAGE', 'not a usable public key (a low-order point): nothing can be wrapped for it');
  const ssE = sharedSecret(e, recipient);
  if (!ssE) throw unusable();
  let ikm = ssE;
  let salt = concat(epk, recipient);
  if (opts.sender) {
    const ssS = sharedSecret(opts.sender.secret, recipient);
    if (!ssS) throw unusable();
    ikm = concat(ssE, ssS);
    salt = concat(salt, opts.sender.public);
  }
  const wk = stanzaWrapKey(type, ikm, salt);
  const body = sealAead(wk, fileKey, context, ZERO_NONCE).subarray(NONCE_BYTES);
  return { type, epk, body: new Uint8Array(body) };
}

/**
 * The file key, if this stanza is for `identity` (and, for "x25519-auth",
 * from `sender`) under `context`; undefined if it is not.
 */
export function unwrapFileKey(stanza: Stanza, identity: KeyPair, context: Uint8Array, sender?: Uint8Array): Uint8Array | undefined {
  const ssE = sharedSecret(identity.secret, stanza.epk);
  if (!ssE) return undefined;
  let ikm = ssE;
  let salt = concat(stanza.epk, identity.public);
  if (stanza.type === 'x25519-auth') {
    if (!sender) return undefined;
    const ssS = sharedSecret(identity.secret, sender);
    if (!ssS) return undefined;
    ikm = concat(ssE, ssS);
    salt = concat(salt, sender);
  }
  const wk = stanzaWrapKey(stanza.type, ikm, salt);
  try {
    return new Uint8Array(openAead(wk, concat(ZERO_NONCE, stanza.body), context, 'stanza'));
  } catch {
    return undefined;
  }
}

/** The CBOR value of a stanza. */
export function stanzaToCbor(s: Stanza): { type: string; epk: Uint8Array; body: Uint8Array } {
  return { type: s.type, epk: s.epk, body: s.body };
}

/** A stanza from decoded CBOR; CORRUPT unless it has exactly the shape of section 3.1. */
export function stanzaFromCbor(v: unknown, what = 'stanza'): Stanza {
  const m = asMap(v, what);
  const type = asText(m.type, `${what} type`);
  if (type !== 'x25519' && type !== 'x25519-auth') fail(what, `unknown stanza type ${JSON.stringify(type)}`);
  const epk = asBytes(m.epk, `${what} epk`);
  if (epk.length !== X25519_BYTES) fail(what, `epk must be ${X25519_BYTES} bytes`);
  const body = asBytes(m.body, `${what} body`);
  if (body.length !== STANZA_BODY_BYTES) fail(what, `body must be ${STANZA_BODY_BYTES} bytes`);
  return { type, epk: new Uint8Array(epk), body: new Uint8Array(body) };
}
