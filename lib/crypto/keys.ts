/**
 * The repository's master key set: three independent random 256-bit keys.
 *
 * - encryption: AES-256-GCM key for every object but key objects;
 * - id: HMAC-SHA256 key that turns plaintext into object ids;
 * - chunker: seed of the secret gear table of content-defined chunking and
 *   of the content-defined split points of large directories.
 *
 * Everyone who can open a key slot holds the same set; that is how people who
 * trust each other share a repository (and its deduplication).
 */
import { randomBytes } from 'node:crypto';
import { encodeCbor } from '../format/cbor.js';
import { asBytes, asMap, asUint, fail } from '../format/schema.js';
import { checkReadableVersion, KEY_FORMAT_VERSION } from '../format/version.js';

export interface MasterKeys {
  readonly encryption: Uint8Array;
  readonly id: Uint8Array;
  readonly chunker: Uint8Array;
}

export function generateMasterKeys(): MasterKeys {
  return { encryption: randomBytes(32), id: randomBytes(32), chunker: randomBytes(32) };
}

export function encodeMasterKeys(k: MasterKeys): Uint8Array {
  return encodeCbor({ version: KEY_FORMAT_VERSION, encryption: k.encryption, id: k.id, chunker: k.chunker });
}

export function decodeMasterKeys(v: unknown): MasterKeys {
  const what = 'master key set';
  const m = asMap(v, what);
  checkReadableVersion(asUint(m.version, `${what} version`), what);
  const get = (name: string): Uint8Array => {
    const b = asBytes(m[name], `${what} ${name}`);
    if (b.length !== 32) fail(what, `${name} key must be 32 bytes`);
    return new Uint8Array(b);
  };
  return { encryption: get('encryption'), id: get('id'), chunker: get('chunker') };
}

/** The structured-clone form handed to worker threads. */
export function masterKeysToTransfer(k: MasterKeys): MasterKeys {
  return { encryption: new Uint8Array(k.encryption), id: new Uint8Array(k.id), chunker: new Uint8Array(k.chunker) };
}
