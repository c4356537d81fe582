/**
 * X25519 (RFC 7748) through node:crypto (OpenSSL): key pairs and
 * Diffie-Hellman with the all-zero shared secret of low-order points
 * refused. Native X25519 is about ten times faster than @noble/curves here
 * (4,000 against 410 per second on the 2-core reference machine), which is
 * what listing a shared repository costs: one or two per stanza tried
 * (format-spec/sharing.md 10.1). test/identity.test.ts checks it against
 * RFC 7748 section 6.1 and against @noble/curves.
 */
import { createPrivateKey, createPublicKey, diffieHellman, KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';

export const X25519_BYTES = 32;

/** DER framing of a raw X25519 private key (PKCS #8, RFC 8410) and public key (SubjectPublicKeyInfo). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** The last secret's key object: an identity's secret is used for every stanza tried. */
let cached: { secret: Buffer; key: KeyObject } | undefined;

function privateKeyObject(secret: Uint8Array): KeyObject {
  const s = Buffer.from(secret);
  if (cached && timingSafeEqual(cached.secret, s)) return cached.key;
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, s]), format: 'der', type: 'pkcs8' });
  cached = { secret: s, key };
  return key;
}

/** 32 random bytes: an X25519 secret key (clamped when used). */
export function newSecretKey(): Uint8Array {
  return new Uint8Array(randomBytes(X25519_BYTES));
}

export function publicKeyOf(secret: Uint8Array): Uint8Array {
  const der = createPublicKey(privateKeyObject(secret)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(SPKI_PREFIX.length));
}

/** X25519(secret, peer), or undefined if the result is all zero (peer is a low-order point). */
export function sharedSecret(secret: Uint8Array, peer: Uint8Array): Uint8Array | undefined {
  if (secret.length !== X25519_BYTES || peer.length !== X25519_BYTES) return undefined;
  let ss: Buffer;
  try {
    const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, peer]), format: 'der', type: 'spki' });
    ss = diffieHellman({ privateKey: privateKeyObject(secret), publicKey });
  } catch {
    return undefined; // OpenSSL refuses the all-zero result itself
  }
  return ss.some((b) => b !== 0) ? new Uint8Array(ss) : undefined;
}
