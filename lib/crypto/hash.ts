/**
 * Hashes on the hot path, through node:crypto: HMAC-SHA256 (object ids) and
 * SHA-256 (storage digests). @noble/hashes cross-checks both in the tests.
 */
import { createHash, createHmac } from 'node:crypto';

export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}
