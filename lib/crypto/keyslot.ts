/**
 * Key slots: key objects that wrap the master key set under a key derived
 * from one passphrase. Several slots may exist; adding or removing one never
 * rewrites data. A key object is CBOR, not an envelope, because it must be
 * readable before any master key is known:
 *
 *   { version: 1,
 *     kdf: { algorithm: "scrypt", log_n, r, p, salt },
 *     wrapped: nonce || AES-256-GCM(kek, CBOR(master key set)) || tag,
 *     created: seconds since the epoch, hostname, username }
 *
 * Associated data of `wrapped`: "obnam-key" || version byte || key id (32 bytes).
 */
import { randomBytes } from 'node:crypto';
import { openAead, sealAead } from './aead.js';
import { checkKdfCost, DEFAULT_KDF_COST, deriveKey, KdfCost, KdfParams } from './kdf.js';
import { decodeMasterKeys, encodeMasterKeys, MasterKeys } from './keys.js';
import { decodeCbor, encodeCbor } from '../format/cbor.js';
import { idToBytes } from '../format/ids.js';
import { asBytes, asMap, asText, asUint, optional } from '../format/schema.js';
import { checkReadableVersion, KEY_FORMAT_VERSION } from '../format/version.js';
import { ObnamError } from '../errors.js';

export interface KeySlotInfo {
  id: string;
  created: number;
  hostname: string;
  username: string;
  kdf: KdfParams;
}

interface KeySlot extends KeySlotInfo {
  version: number;
  wrapped: Uint8Array;
}

function aad(id: string, version: number): Uint8Array {
  return Buffer.concat([Buffer.from('obnam-key', 'latin1'), Buffer.from([version]), idToBytes(id)]);
}

export function newKeyId(): string {
  return randomBytes(32).toString('hex');
}

export async function createKeySlot(
  id: string,
  keys: MasterKeys,
  passphrase: Uint8Array,
  meta: { hostname: string; username: string },
  cost: KdfCost = DEFAULT_KDF_COST,
): Promise<Uint8Array> {
  checkKdfCost(cost, 'a new key slot');
  const kdf: KdfParams = { algorithm: 'scrypt', logN: cost.logN, r: cost.r, p: cost.p, salt: randomBytes(32) };
  const kek = await deriveKey(passphrase, kdf);
  const wrapped = sealAead(kek, encodeMasterKeys(keys), aad(id, KEY_FORMAT_VERSION));
  return encodeCbor({
    version: KEY_FORMAT_VERSION,
    kdf: { algorithm: kdf.algorithm, log_n: kdf.logN, r: kdf.r, p: kdf.p, salt: kdf.salt },
    wrapped,
    created: Math.floor(Date.now() / 1000),
    hostname: meta.hostname,
    username: meta.username,
  });
}

export function parseKeySlot(id: string, bytes: Uint8Array): KeySlot {
  const what = `key ${id.slice(0, 8)}`;
  const m = asMap(decodeCbor(bytes, what), what);
  const version = asUint(m.version, `${what} version`);
  checkReadableVersion(version, what);
  const k = asMap(m.kdf, `${what} kdf`);
  const algorithm = asText(k.algorithm, `${what} kdf algorithm`);
  if (algorithm !== 'scrypt') throw new ObnamError('UNSUPPORTED_VERSION', `${what} uses unknown KDF ${algorithm}`);
  return {
    id,
    version,
    created: asUint(m.created, `${what} created`),
    hostname: optional(m.hostname, asText, `${what} hostname`) ?? '',
    username: optional(m.username, asText, `${what} username`) ?? '',
    kdf: {
      algorithm,
      logN: asUint(k.log_n, `${what} log_n`),
      r: asUint(k.r, `${what} r`),
      p: asUint(k.p, `${what} p`),
      salt: asBytes(k.salt, `${what} salt`),
    },
    wrapped: asBytes(m.wrapped, `${what} wrapped keys`),
  };
}

/**
 * Returns the master keys if the passphrase opens this slot, undefined if it
 * does not. A slot whose KDF parameters are out of bounds is refused before
 * any work (CORRUPT, KDF_LIMIT: kdf.ts).
 */
export async function tryOpenKeySlot(slot: KeySlot, passphrase: Uint8Array): Promise<MasterKeys | undefined> {
  const kek = await deriveKey(passphrase, slot.kdf);
  let plain: Uint8Array;
  try {
    plain = openAead(kek, slot.wrapped, aad(slot.id, slot.version), 'key slot');
  } catch {
    return undefined;
  }
  return decodeMasterKeys(decodeCbor(plain, 'master key set'));
}
