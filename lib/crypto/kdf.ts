/**
 * Passphrase-based key derivation: scrypt (node:crypto, on the libuv thread
 * pool so it never blocks the event loop). The cost is stored with each key
 * slot. Writers choose it (DEFAULT_KDF_COST unless a caller injects another,
 * as test suites do); readers accept only a bounded range, so a hostile key
 * object can make a client neither allocate nor compute without limit.
 */
import { scrypt } from 'node:crypto';
import { ObnamError } from '../errors.js';

/** What a key slot asks of scrypt: N = 2^logN, block size r, p passes. */
export interface KdfCost {
  logN: number;
  r: number;
  p: number;
}

export interface KdfParams extends KdfCost {
  algorithm: 'scrypt';
  salt: Uint8Array;
}

/**
 * Cost of new key slots: N = 2^17, r = 8, p = 1, so 128 * N * r = 128 MiB per
 * guess, at the top of restic's range (N = 2^15..2^17, r = 8, p = 1). About
 * 0.25 s on the reference machine (bench/kdf.ts measures it).
 */
export const DEFAULT_KDF_COST: Readonly<KdfCost> = Object.freeze({ logN: 17, r: 8, p: 1 });

export const MIN_LOG_N = 10;
export const MAX_LOG_N = 21;
export const MAX_R = 32;
export const MAX_P = 16;
/** Memory scrypt needs, 128 * N * r bytes: readers refuse slots that would need more (twice the default). */
export const MAX_KDF_MEMORY = 256 * 1024 * 1024;
/** Work, in units of N * r * p (the 128-byte block mixes per pass): four times the default, about 1 s here. */
export const MAX_KDF_WORK = 4 * 2 ** DEFAULT_KDF_COST.logN * DEFAULT_KDF_COST.r * DEFAULT_KDF_COST.p;

export function kdfMemory(c: KdfCost): number {
  return 128 * 2 ** c.logN * c.r;
}

export function kdfWork(c: KdfCost): number {
  return 2 ** c.logN * c.r * c.p;
}

/**
 * Checks a cost a key slot asks for: CORRUPT if it is malformed or too weak to
 * be one obnam writes, KDF_LIMIT if it asks for more memory or work than
 * readers allow.
 */
export function checkKdfCost(c: KdfCost, what = 'key slot'): void {
  const wellFormed =
    Number.isInteger(c.logN) &&
    c.logN >= MIN_LOG_N &&
    c.logN <= MAX_LOG_N &&
    Number.isInteger(c.r) &&
    c.r >= 1 &&
    c.r <= MAX_R &&
    Number.isInteger(c.p) &&
    c.p >= 1 &&
    c.p <= MAX_P;
  if (!wellFormed) throw new ObnamError('CORRUPT', `${what} has unsupported KDF parameters (log_n ${c.logN}, r ${c.r}, p ${c.p})`);
  if (kdfMemory(c) > MAX_KDF_MEMORY || kdfWork(c) > MAX_KDF_WORK) {
    throw new ObnamError(
      'KDF_LIMIT',
      `${what} asks for scrypt log_n ${c.logN}, r ${c.r}, p ${c.p} (${mib(kdfMemory(c))} MiB, ${kdfWork(c) / kdfWork(DEFAULT_KDF_COST)} times the default work); ` +
        `readers allow at most ${mib(MAX_KDF_MEMORY)} MiB and ${MAX_KDF_WORK / kdfWork(DEFAULT_KDF_COST)} times the default work`,
    );
  }
}

function mib(n: number): number {
  return Math.round((n / 2 ** 20) * 100) / 100;
}

export function checkKdfParams(p: KdfParams, what = 'key slot'): void {
  if (p.algorithm !== 'scrypt') throw new ObnamError('UNSUPPORTED_VERSION', `${what} uses unknown KDF ${String(p.algorithm)}`);
  if (p.salt.length < 16 || p.salt.length > 64) throw new ObnamError('CORRUPT', `${what} has a KDF salt of ${p.salt.length} bytes (16 to 64 allowed)`);
  checkKdfCost(p, what);
}

export async function deriveKey(passphrase: Uint8Array, p: KdfParams): Promise<Buffer> {
  checkKdfParams(p);
  const N = 2 ** p.logN;
  const maxmem = 2 * kdfMemory(p) + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(passphrase, p.salt, 32, { N, r: p.r, p: p.p, maxmem }, (err, key) => {
      if (err) reject(new ObnamError('INTERNAL', `key derivation failed: ${err.message}`));
      else resolve(key);
    });
  });
}
