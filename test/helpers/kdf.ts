/**
 * The scrypt cost test suites give new key slots, through the library and
 * CLI hooks (production code never reads it from the environment): 1 MiB
 * and about 2 ms instead of 128 MiB and a quarter of a second, so that
 * hundreds of repositories stay cheap. Opening always uses the cost stored
 * in the slot, so a repository made with it opens cheaply everywhere.
 */
import type { KdfCost } from '../../lib/crypto/kdf.js';

export const TEST_KDF: Readonly<KdfCost> = Object.freeze({ logN: 10, r: 8, p: 1 });
