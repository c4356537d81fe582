/**
 * The envelope: how one object's plaintext becomes the bytes a store keeps.
 *
 *   offset 0  4 bytes  magic "OBNM"
 *          4  1 byte   format version (1 or 2: the repository's, from its config)
 *          5  1 byte   kind code (config 1, key 2, snapshot 3, tree 4, chunk 5, gcplan 6)
 *          6 12 bytes  AES-GCM nonce (random)
 *         18  n bytes  AES-256-GCM ciphertext of (flag byte || payload)
 *       18+n 16 bytes  GCM tag
 *
 * Associated data: the 6 header bytes || the 32-byte object id. A renamed,
 * swapped (other id or kind), truncated or re-versioned object therefore fails
 * authentication. See format-spec/README.md, "Encryption".
 */
import { ObnamError } from '../errors.js';
import { NONCE_BYTES, openAead, sealAeadInto, TAG_BYTES } from '../crypto/aead.js';
import { compressPayload, decompressPayload } from './compress.js';
import { idToBytes } from './ids.js';
import { checkReadableVersion, FORMAT_VERSION, Kind, KIND_CODE } from './version.js';

export const MAGIC = Buffer.from('OBNM', 'latin1');
export const HEADER_BYTES = 6;
export const ENVELOPE_OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES + 1;

function header(kind: Kind, version = FORMAT_VERSION): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(h, 0);
  h[4] = version;
  h[5] = KIND_CODE[kind];
  return h;
}

function associatedData(h: Uint8Array, id: string): Uint8Array {
  return Buffer.concat([h, idToBytes(id)]);
}

/** Compresses (when it pays) and encrypts plaintext into an object's stored bytes. */
export function sealObject(
  encryptionKey: Uint8Array,
  kind: Kind,
  id: string,
  plaintext: Uint8Array,
  compressionLevel: number,
  /** Only for test vectors: a fixed nonce. Never reuse a nonce with a key. */
  nonce?: Uint8Array,
  /** The format version byte: the repository's version (a version 1 repository keeps getting version 1 objects). */
  version: number = FORMAT_VERSION,
): Uint8Array {
  const h = header(kind, version);
  const payload = compressPayload(plaintext, compressionLevel);
  // One buffer of its own (not pooled), so it can be transferred between threads.
  const out = Buffer.allocUnsafeSlow(HEADER_BYTES + NONCE_BYTES + payload.length + TAG_BYTES);
  h.copy(out, 0);
  sealAeadInto(encryptionKey, [payload], associatedData(h, id), out, HEADER_BYTES, nonce);
  return out;
}

/** Reads the format version from stored bytes without decrypting. */
export function envelopeVersion(stored: Uint8Array): number | undefined {
  if (stored.length < HEADER_BYTES || !MAGIC.equals(stored.subarray(0, 4))) return undefined;
  return stored[4];
}

/** Authenticates, decrypts and decompresses an object; CORRUPT or UNSUPPORTED_VERSION on failure. */
export function openObject(
  encryptionKey: Uint8Array,
  kind: Kind,
  id: string,
  stored: Uint8Array,
  maxPlaintext: number,
): Uint8Array {
  const what = `${kind} ${id}`;
  if (stored.length < ENVELOPE_OVERHEAD) throw new ObnamError('CORRUPT', `${what}: truncated (${stored.length} bytes)`);
  const version = envelopeVersion(stored);
  if (version === undefined) throw new ObnamError('CORRUPT', `${what}: not an obnam object (bad magic)`);
  checkReadableVersion(version, what);
  if (stored[5] !== KIND_CODE[kind]) throw new ObnamError('CORRUPT', `${what}: stored as a different kind of object`);
  const h = stored.subarray(0, HEADER_BYTES);
  const payload = openAead(encryptionKey, stored.subarray(HEADER_BYTES), associatedData(h, id), what);
  return decompressPayload(payload, maxPlaintext, what);
}
