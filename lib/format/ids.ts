/**
 * Object ids: 32 bytes, written as 64 lowercase hex characters.
 *
 * Content ids are HMAC-SHA256(id-key, plaintext) (see Repository.contentId in
 * lib/repo/repository.ts); key and config objects use random or fixed ids.
 * Every id that crosses a trust boundary (a store listing, a tree entry, a
 * URL) is checked with isId first.
 */
import { ObnamError } from '../errors.js';

export const ID_BYTES = 32;
const ID_RE = /^[0-9a-f]{64}$/;

/** The fixed id of the repository's config object. */
export const CONFIG_ID = '0'.repeat(64);

export function isId(s: unknown): s is string {
  return typeof s === 'string' && ID_RE.test(s);
}

export function checkId(s: unknown, what = 'object id'): string {
  if (!isId(s)) throw new ObnamError('CORRUPT', `invalid ${what}: ${JSON.stringify(String(s).slice(0, 80))}`);
  return s;
}

export function idToBytes(id: string): Uint8Array {
  return Buffer.from(checkId(id), 'hex');
}

export function idFromBytes(b: Uint8Array): string {
  if (!(b instanceof Uint8Array) || b.length !== ID_BYTES) {
    throw new ObnamError('CORRUPT', 'invalid object id bytes');
  }
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** The short form shown to people (like git's abbreviated hashes). */
export function shortId(id: string): string {
  return id.slice(0, 8);
}
