/**
 * Content digest, id and content key of a version 3 object
 * (format-spec/sharing.md section 6.1):
 *
 *   d  = HMAC-SHA256(content, byte(kind code) || plaintext)   secret, never stored
 *   id = HMAC-SHA256(d, "obnam-id")                           the object id
 *   ck = HMAC-SHA256(d, "obnam-content-key")                  the key that opens it
 *
 * Both follow from the plaintext and the members' `content` key alone, so two
 * members storing the same plaintext compute the same id and key (they
 * deduplicate), and knowing an id (or a key) gives neither d nor the other.
 */
import { hmacSha256 } from './hash.js';

export const CONTENT_KEY_BYTES = 32;
const ID_LABEL = Buffer.from('obnam-id', 'latin1');
const CONTENT_KEY_LABEL = Buffer.from('obnam-content-key', 'latin1');

/** Where a version 3 object lives (its id) and what opens it (its content key). */
export interface ContentAddress {
  id: string;
  key: Uint8Array;
}

/** The content digest d of a plaintext of the kind with code `kindCode` (exported for test vectors). */
export function contentDigest(content: Uint8Array, kindCode: number, plaintext: Uint8Array): Buffer {
  return hmacSha256(content, Buffer.from([kindCode]), plaintext);
}

/** The id and content key of a plaintext: one pass over it, two short HMACs of d. */
export function contentAddress(content: Uint8Array, kindCode: number, plaintext: Uint8Array): ContentAddress {
  const d = contentDigest(content, kindCode, plaintext);
  return { id: hmacSha256(d, ID_LABEL).toString('hex'), key: new Uint8Array(hmacSha256(d, CONTENT_KEY_LABEL)) };
}
