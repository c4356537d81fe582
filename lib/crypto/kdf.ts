/**
 * Passphrase-based key derivation: scrypt (node:crypto, on the libuv thread
 * pool so it never blocks the event loop). Parameters are stored with each key
 * slot; readers accept only a sane range so a hostile key object cannot make
 * the client allocate unbounded memory.
 */
import { scrypt } from 'node:crypto';
import { ObnamError } from '../errors.js';

export interface KdfParams {
  algorithm: 'scrypt';
  logN: number;
  r: number;
  p: number;
  salt: Uint8Array;
}

/**
 * Cost of new key slots: N = 2^15, r = 8, p = 4. scrypt needs 128 * N * r =
 * 32 MiB at a time and runs p passes: the work of N = 2^17 with p = 1 (about
 * 0.4 s here) in a quarter of the memory, which every command would otherwise
 * carry in its peak. (restic uses N = 2^15, r = 8, p = 3 or more.)
 */
export const DEFAULT_LOG_N = 15;
export const DEFAULT_R = 8;
export const DEFAULT_P = 4;
export const MIN_LOG_N = 10;
export const MAX_LOG_N = 20;
/** scrypt needs 128 * N * r bytes; readers refuse slots that would need more. */
export const MAX_KDF_MEMORY = 1 << 30;

/**
 * The cost of new key slots. OBNAM_TEST_KDF_LOG_N lowers it for test suites
 * that create hundreds of repositories; it never affects reading.
 */
export function newKdfLogN(): number {
  const env = process.env.OBNAM_TEST_KDF_LOG_N;
  if (env === undefined || env === '') return DEFAULT_LOG_N;
  const n = Number(env);
  if (!Number.isInteger(n) || n < MIN_LOG_N || n > MAX_LOG_N) {
    throw new ObnamError('USAGE', `OBNAM_TEST_KDF_LOG_N must be an integer from ${MIN_LOG_N} to ${MAX_LOG_N}`);
  }
  return n;
}

export function checkKdfParams(p: KdfParams): void {
  const ok =
    p.algorithm === 'scrypt' &&
    Number.isInteger(p.logN) &&
    p.logN >= MIN_LOG_N &&
    p.logN <= MAX_LOG_N &&
    Number.isInteger(p.r) &&
    p.r >= 1 &&
    p.r <= 32 &&
    Number.isInteger(p.p) &&
    p.p >= 1 &&
    p.p <= 16 &&
    p.salt.length >= 16 &&
    p.salt.length <= 64 &&
    128 * 2 ** p.logN * p.r <= MAX_KDF_MEMORY;
  if (!ok) throw new ObnamError('CORRUPT', 'key slot has unsupported or unsafe KDF parameters');
}

export async function deriveKey(passphrase: Uint8Array, p: KdfParams): Promise<Buffer> {
  checkKdfParams(p);
  const N = 2 ** p.logN;
  const maxmem = 128 * N * p.r * 2 + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(passphrase, p.salt, 32, { N, r: p.r, p: p.p, maxmem }, (err, key) => {
      if (err) reject(new ObnamError('INTERNAL', `key derivation failed: ${err.message}`));
      else resolve(key);
    });
  });
}
