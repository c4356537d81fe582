/**
 * Upper bounds on decrypted object sizes, so a hostile object cannot make a
 * reader allocate without limit. Chunks are bounded by the repository's own
 * max chunk size instead.
 */
import type { Kind } from '../format/version.js';

export const MAX_PLAINTEXT: Record<Exclude<Kind, 'chunk'>, number> = {
  config: 1 << 20,
  key: 1 << 20,
  snapshot: 16 << 20,
  tree: 256 << 20,
  gcplan: 16 << 20,
  /** Member objects are plain CBOR of a few hundred bytes (format-spec/sharing.md 5.2: at most 64 KiB). */
  member: 64 << 10,
  share: 16 << 20,
  grant: 64 << 10,
};
