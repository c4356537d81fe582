/**
 * Inner envelopes of version 3 (format-spec/sharing.md section 6.2): the
 * `content` of a tree's outer plaintext, the `body` of a snapshot's and of
 * share and grant objects.
 *
 *   nonce (12) || AES-256-GCM(key, nonce, flag || payload, AAD) || tag (16)
 *
 * where flag || payload is the compressed inner plaintext (README section 5)
 * and AAD is innerAad(kind, id) = "obnam-inner" || byte(3) || byte(kind code)
 * || id, or for a snapshot body snapshotBodyAad(header hash). The key is the
 * tree's content key, the snapshot key, or a share's or grant's file key.
 */
import { NONCE_BYTES, openAead, sealAeadInto, TAG_BYTES } from '../crypto/aead.js';
import { compressPayload, decompressPayload } from './compress.js';
import { idToBytes } from './ids.js';
import { Kind, KIND_CODE, SHARED_VERSION } from './version.js';

export const INNER_OVERHEAD = NONCE_BYTES + TAG_BYTES + 1;
const INNER_LABEL = Buffer.from('obnam-inner', 'latin1');
const BODY_LABEL = Buffer.from('obnam-snapshot-body', 'latin1');

/** AAD_inner: binds an inner envelope to its object's kind and id. */
export function innerAad(kind: Kind, id: string): Uint8Array {
  return Buffer.concat([INNER_LABEL, Buffer.from([SHARED_VERSION, KIND_CODE[kind]]), idToBytes(id)]);
}

/** AAD_body: binds a snapshot's body to its header (by SHA-256 of the header's CBOR). */
export function snapshotBodyAad(headerHash: Uint8Array): Uint8Array {
  return Buffer.concat([BODY_LABEL, Buffer.from([SHARED_VERSION]), headerHash]);
}

/** Compresses (when it pays) and encrypts an inner plaintext. */
export function sealInner(
  key: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  compressionLevel: number,
  /** Only for test vectors: a fixed nonce. */
  nonce?: Uint8Array,
): Uint8Array {
  const payload = compressPayload(plaintext, compressionLevel);
  const out = Buffer.allocUnsafeSlow(NONCE_BYTES + payload.length + TAG_BYTES);
  sealAeadInto(key, [payload], aad, out, 0, nonce);
  return out;
}

/** Authenticates, decrypts and decompresses an inner envelope; CORRUPT on any failure (a wrong key included). */
export function openInner(key: Uint8Array, aad: Uint8Array, sealed: Uint8Array, maxPlaintext: number, what: string): Uint8Array {
  return decompressPayload(openAead(key, sealed, aad, what), maxPlaintext, what);
}
