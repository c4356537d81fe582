/**
 * X25519 (RFC 7748) through @noble/curves: key pairs and Diffie-Hellman with
 * the all-zero shared secret of low-order points refused.
 */
import { randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';

export const X25519_BYTES = 32;

/** 32 random bytes: an X25519 secret key (clamped when used). */
export function newSecretKey(): Uint8Array {
  return new Uint8Array(randomBytes(X25519_BYTES));
}

export function publicKeyOf(secret: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secret);
}

/** X25519(secret, peer), or undefined if the result is all zero (peer is a low-order point). */
export function sharedSecret(secret: Uint8Array, peer: Uint8Array): Uint8Array | undefined {
  if (secret.length !== X25519_BYTES || peer.length !== X25519_BYTES) return undefined;
  let ss: Uint8Array;
  try {
    ss = x25519.getSharedSecret(secret, peer);
  } catch {
    return undefined; // @noble/curves refuses the all-zero result itself
  }
  return ss.some((b) => b !== 0) ? ss : undefined;
}
