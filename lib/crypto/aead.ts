/**
 * AES-256-GCM with a random 96-bit nonce, through node:crypto (hardware AES).
 * Sealed form: nonce (12) || ciphertext || tag (16). The pure-JS
 * implementation in @noble/ciphers cross-checks this one in the tests.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ObnamError } from '../errors.js';

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

/** Encrypts into `out` at `offset` (nonce, ciphertext, tag); returns the bytes written. */
export function sealAeadInto(
  key: Uint8Array,
  plaintextParts: readonly Uint8Array[],
  aad: Uint8Array,
  out: Uint8Array,
  offset: number,
  nonce: Uint8Array = randomBytes(NONCE_BYTES),
): number {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  out.set(nonce, offset);
  let pos = offset + NONCE_BYTES;
  for (const part of plaintextParts) {
    const ct = cipher.update(part);
    out.set(ct, pos);
    pos += ct.length;
  }
  const fin = cipher.final();
  out.set(fin, pos);
  pos += fin.length;
  out.set(cipher.getAuthTag(), pos);
  return pos + TAG_BYTES - offset;
}

export function sealAead(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, nonce?: Uint8Array): Uint8Array {
  const out = new Uint8Array(NONCE_BYTES + plaintext.length + TAG_BYTES);
  sealAeadInto(key, [plaintext], aad, out, 0, nonce);
  return out;
}

/** Decrypts and authenticates nonce || ciphertext || tag; CORRUPT on any failure. */
export function openAead(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array, what: string): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new ObnamError('CORRUPT', `${what}: too short to be encrypted data`);
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const ct = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    d.setAAD(aad);
    d.setAuthTag(tag);
    const head = d.update(ct);
    const tail = d.final();
    return tail.length ? Buffer.concat([head, tail]) : head;
  } catch {
    throw new ObnamError('CORRUPT', `${what}: authentication failed (modified, truncated or misplaced)`);
  }
}
