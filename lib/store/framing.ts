/**
 * On-disk framing of one object in a local directory store:
 *
 *   offset 0  4 bytes  magic "OBNS"
 *          4  1 byte   framing version (1)
 *          5  3 bytes  zero
 *          8 32 bytes  SHA-256 of the object bytes
 *         40  n bytes  the object bytes
 *
 * The digest lets the store (and obnam-server scrub) detect bit rot or
 * tampering without any repository key.
 */
import { ObnamError } from '../errors.js';
import { sha256 } from '../crypto/hash.js';

export const FRAME_MAGIC = Buffer.from('OBNS', 'latin1');
export const FRAME_HEADER_BYTES = 40;

export function frameHeader(digest: Uint8Array): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  FRAME_MAGIC.copy(h, 0);
  h[4] = 1;
  h.set(digest, 8);
  return h;
}

/** The digest in a frame header (the first FRAME_HEADER_BYTES of a file); CORRUPT if the header is damaged. */
export function frameDigest(header: Buffer, what: string): Buffer {
  if (header.length < FRAME_HEADER_BYTES || !FRAME_MAGIC.equals(header.subarray(0, 4)) || header[4] !== 1) {
    throw new ObnamError('CORRUPT', `${what}: damaged storage header`);
  }
  return header.subarray(8, 40);
}

/** Splits a framed file into digest and bytes; checks the digest when `verify`. */
export function unframe(file: Buffer, what: string, verify = true): { digest: Buffer; data: Buffer } {
  if (file.length < FRAME_HEADER_BYTES || !FRAME_MAGIC.equals(file.subarray(0, 4)) || file[4] !== 1) {
    throw new ObnamError('CORRUPT', `${what}: damaged storage header`);
  }
  const digest = file.subarray(8, 40);
  const data = file.subarray(FRAME_HEADER_BYTES);
  if (verify && !sha256(data).equals(digest)) {
    throw new ObnamError('CORRUPT', `${what}: stored bytes do not match their SHA-256 digest`);
  }
  return { digest, data };
}
