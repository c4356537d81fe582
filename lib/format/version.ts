/**
 * Format version and object kinds: the constants every other format module
 * binds to. See format-spec/README.md, sections "Versioning" and "Objects".
 */
import { ObnamError } from '../errors.js';

/** The repository format version this code writes. */
export const FORMAT_VERSION = 1;
/** Format versions this code can read. */
export const READABLE_VERSIONS: readonly number[] = [1];

export const KINDS = ['config', 'key', 'snapshot', 'tree', 'chunk'] as const;
export type Kind = (typeof KINDS)[number];

/** Kind codes used inside the AEAD associated data (never change an existing one). */
export const KIND_CODE: Record<Kind, number> = {
  config: 1,
  key: 2,
  snapshot: 3,
  tree: 4,
  chunk: 5,
};

export function isKind(s: string): s is Kind {
  return (KINDS as readonly string[]).includes(s);
}

export function checkReadableVersion(version: unknown, what: string): void {
  if (typeof version !== 'number' || !READABLE_VERSIONS.includes(version)) {
    throw new ObnamError(
      'UNSUPPORTED_VERSION',
      `${what} has format version ${String(version)}, but this obnam reads only version ${READABLE_VERSIONS.join(', ')}; ` +
        'upgrade obnam to read this repository',
    );
  }
}
