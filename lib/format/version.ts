/**
 * Format version and object kinds: the constants every other format module
 * binds to. See format-spec/README.md, sections "Versioning" and "Objects".
 */
import { ObnamError } from '../errors.js';

/** The repository format version `obnam init` writes (a shared repository is SHARED_VERSION). */
export const FORMAT_VERSION = 4;
/** The format version of shared repositories: members, content keys, sealed snapshots (format-spec/sharing.md). */
export const SHARED_VERSION = 3;
/** Format versions this code can read. */
export const READABLE_VERSIONS: readonly number[] = [1, 2, 3, 4];
/**
 * The version key objects and the master key set carry: their layout did not
 * change in version 2, and a key slot added to a version 1 repository must
 * still open in version 1 clients, so every writer keeps writing 1 there.
 */
export const KEY_FORMAT_VERSION = 1;
/** The first format version with garbage collection (gcplan objects, config gc_grace; format-spec section 14). */
export const GC_VERSION = 2;
/**
 * The first format version with small-file bundles (file entries with
 * `bundle`, config bundle_target; format-spec section 6.7). It is version 2
 * plus bundles: versions are not a line, version 3 is the shared format,
 * which has no bundles (isSharedVersion tells the two lines apart).
 */
export const BUNDLE_VERSION = 4;

/** Whether a format version is the shared one (members, content keys: format-spec/sharing.md). */
export function isSharedVersion(version: number): boolean {
  return version === SHARED_VERSION;
}

export const KINDS = ['config', 'key', 'snapshot', 'tree', 'chunk', 'gcplan', 'member', 'share', 'grant'] as const;
export type Kind = (typeof KINDS)[number];

/** Kind codes used inside the AEAD associated data (never change an existing one). */
export const KIND_CODE: Record<Kind, number> = {
  config: 1,
  key: 2,
  snapshot: 3,
  tree: 4,
  chunk: 5,
  gcplan: 6,
  /** Format version 3 (format-spec/sharing.md sections 5 and 9). */
  member: 7,
  share: 8,
  grant: 9,
};

/** The kinds only a version 3 (shared) repository holds. */
export const SHARED_KINDS: ReadonlySet<Kind> = new Set<Kind>(['member', 'share', 'grant']);

export function isKind(s: string): s is Kind {
  return (KINDS as readonly string[]).includes(s);
}

export function checkReadableVersion(version: unknown, what: string): void {
  if (typeof version !== 'number' || !READABLE_VERSIONS.includes(version)) {
    throw new ObnamError(
      'UNSUPPORTED_VERSION',
      `${what} has format version ${String(version)}, but this obnam reads only versions ${READABLE_VERSIONS.join(', ')}; ` +
        'upgrade obnam to read this repository',
    );
  }
}
