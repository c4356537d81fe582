/** Deterministic pseudo-random bytes (SHA-256 in counter mode), for reproducible test data and vectors. */
import { createHash } from 'node:crypto';

export function prngBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0, off = 0; off < length; i++, off += 32) {
    createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  }
  return out;
}
