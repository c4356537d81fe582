/**
 * The repository config object: written once by init, encrypted like any
 * other object under the fixed id CONFIG_ID. It holds the format version,
 * the repository id and the parameters every writer must use.
 */
import { randomBytes } from 'node:crypto';
import { ChunkerParams, CHUNKER_ALGORITHM, checkChunkerParams, DEFAULT_CHUNKER } from '../chunking/fastcdc.js';
import { ObnamError } from '../errors.js';
import { encodeCbor } from './cbor.js';
import { DEFAULT_LEVEL } from './compress.js';
import { asInt, asMap, asText, asUint, fail } from './schema.js';
import { BUNDLE_VERSION, checkReadableVersion, FORMAT_VERSION, GC_VERSION, isSharedVersion } from './version.js';

export interface RepoConfig {
  version: number;
  /** Random, 32 bytes as hex: tells repositories apart (caches, messages). */
  repositoryId: string;
  created: number;
  chunker: ChunkerParams;
  compressionLevel: number;
  /** Files of at most this many bytes are stored inline in their tree, not as chunks. */
  inlineMax: number;
  /**
   * Garbage collection's grace period G in seconds (format version 2 and
   * later; undefined in version 1, which has no garbage collection).
   */
  gcGrace?: number;
  /**
   * Format version 4: new small files' contents are gathered into bundles
   * of about this many bytes (format-spec 6.7); undefined in the other
   * versions, whose writers store small files inline.
   */
  bundleTarget?: number;
}

/** Default grace period of garbage collection: 24 h (format-spec 14.3). */
export const DEFAULT_GC_GRACE = 86_400;
/** The shortest grace period a config may hold: 1 h. */
export const MIN_GC_GRACE = 3_600;

export const DEFAULT_INLINE_MAX = 16 * 1024;
/** Default bundle_target (format version 4): 64 KiB of small files' contents a bundle. */
export const DEFAULT_BUNDLE_TARGET = 64 * 1024;
/** The smallest bundle_target a config may hold. */
export const MIN_BUNDLE_TARGET = 4 * 1024;
/** Inline data beyond this would make single tree entries unreasonably large. */
export const INLINE_MAX_LIMIT = 64 * 1024;

export function newConfig(
  chunker: ChunkerParams = DEFAULT_CHUNKER,
  compressionLevel = DEFAULT_LEVEL,
  inlineMax = DEFAULT_INLINE_MAX,
  gcGrace = DEFAULT_GC_GRACE,
): RepoConfig {
  checkChunkerParams(chunker);
  checkGcGrace(gcGrace, 'gc_grace');
  if (!inlineMaxAllowed(inlineMax, chunker)) {
    throw new ObnamError('USAGE', `inline_max must be a whole number of bytes from 0 to ${largestInlineMax(chunker)}`);
  }
  return {
    inlineMax,
    gcGrace,
    bundleTarget: DEFAULT_BUNDLE_TARGET,
    version: FORMAT_VERSION,
    repositoryId: randomBytes(32).toString('hex'),
    created: Math.floor(Date.now() / 1000),
    chunker,
    compressionLevel,
  };
}

/** The largest inline_max every reader accepts with these chunker parameters (format-spec 10.4). */
export function largestInlineMax(chunker: ChunkerParams): number {
  return Math.min(INLINE_MAX_LIMIT, chunker.min - 1);
}

/** Whether `inlineMax` is a value every reader accepts with these chunker parameters. */
export function inlineMaxAllowed(inlineMax: number, chunker: ChunkerParams): boolean {
  return Number.isSafeInteger(inlineMax) && inlineMax >= 0 && inlineMax <= largestInlineMax(chunker);
}

export function checkGcGrace(g: number, what: string): void {
  if (!Number.isSafeInteger(g) || g < MIN_GC_GRACE) {
    throw new ObnamError('CORRUPT', `${what}: the grace period must be a whole number of seconds of at least ${MIN_GC_GRACE}`);
  }
}

/** Whether `target` is a bundle_target every reader accepts with these chunker parameters (a bundle is a chunk). */
export function bundleTargetAllowed(target: number, chunker: ChunkerParams): boolean {
  return Number.isSafeInteger(target) && target >= MIN_BUNDLE_TARGET && target <= chunker.max;
}

/**
 * The same config at format version 4 (what obnam upgrade writes): gc_grace
 * added if it had none (version 1), bundle_target added; every other field
 * unchanged.
 */
export function upgradedConfig(c: RepoConfig, gcGrace = DEFAULT_GC_GRACE): RepoConfig {
  checkGcGrace(gcGrace, 'gc_grace');
  return { ...configAtVersion(c, BUNDLE_VERSION), gcGrace: c.gcGrace ?? gcGrace };
}

/**
 * The config with another format version and what that version needs of
 * bundle_target: the default added where it is required, dropped where the
 * version has no bundles (a shared repository, or a version 2 view).
 */
export function configAtVersion(c: RepoConfig, version: number): RepoConfig {
  const { bundleTarget, ...rest } = c;
  if (!hasBundles(version)) return { ...rest, version };
  return { ...rest, version, bundleTarget: bundleTarget ?? Math.min(DEFAULT_BUNDLE_TARGET, c.chunker.max) };
}

/** Whether configs of this version carry bundle_target (version 4 and any later non-shared version). */
function hasBundles(version: number): boolean {
  return version >= BUNDLE_VERSION && !isSharedVersion(version);
}

export function encodeConfig(c: RepoConfig): Uint8Array {
  if (c.version >= GC_VERSION && c.gcGrace === undefined) throw new ObnamError('INTERNAL', 'a version 2 config needs gc_grace');
  if (hasBundles(c.version) !== (c.bundleTarget !== undefined)) throw new ObnamError('INTERNAL', `a version ${c.version} config ${hasBundles(c.version) ? 'needs' : 'has no'} bundle_target`);
  return encodeCbor({
    ...(c.version >= GC_VERSION ? { gc_grace: c.gcGrace } : {}),
    ...(c.bundleTarget !== undefined ? { bundle_target: c.bundleTarget } : {}),
    version: c.version,
    repository: c.repositoryId,
    created: c.created,
    chunker: { algorithm: CHUNKER_ALGORITHM, min: c.chunker.min, avg: c.chunker.avg, max: c.chunker.max },
    compression: { algorithm: 'zstd', level: c.compressionLevel },
    inline_max: c.inlineMax,
  });
}

export function decodeConfig(v: unknown): RepoConfig {
  const what = 'repository config';
  const m = asMap(v, what);
  const version = asUint(m.version, `${what} version`);
  checkReadableVersion(version, what);
  const ch = asMap(m.chunker, `${what} chunker`);
  const alg = asText(ch.algorithm, `${what} chunker algorithm`);
  if (alg !== CHUNKER_ALGORITHM) throw new ObnamError('UNSUPPORTED_VERSION', `${what}: unknown chunker ${alg}`);
  const chunker = { min: asUint(ch.min, 'chunker min'), avg: asUint(ch.avg, 'chunker avg'), max: asUint(ch.max, 'chunker max') };
  checkChunkerParams(chunker);
  const comp = asMap(m.compression, `${what} compression`);
  const compAlg = asText(comp.algorithm, `${what} compression algorithm`);
  if (compAlg !== 'zstd') throw new ObnamError('UNSUPPORTED_VERSION', `${what}: unknown compression ${compAlg}`);
  const level = asInt(comp.level, `${what} compression level`);
  const repositoryId = asText(m.repository, `${what} repository id`);
  if (!/^[0-9a-f]{64}$/.test(repositoryId)) fail(what, 'bad repository id');
  const inlineMax = asUint(m.inline_max, `${what} inline_max`);
  if (!inlineMaxAllowed(inlineMax, chunker)) fail(what, 'inline_max out of range');
  const out: RepoConfig = { version, repositoryId, created: asUint(m.created, `${what} created`), chunker, compressionLevel: level, inlineMax };
  if (version >= GC_VERSION) {
    const g = asUint(m.gc_grace, `${what} gc_grace`);
    if (g < MIN_GC_GRACE) fail(what, `gc_grace ${g} is below the minimum of ${MIN_GC_GRACE} seconds`);
    out.gcGrace = g;
  }
  if (hasBundles(version)) {
    const t = asUint(m.bundle_target, `${what} bundle_target`);
    if (!bundleTargetAllowed(t, chunker)) fail(what, `bundle_target ${t} is out of range (${MIN_BUNDLE_TARGET} to the chunker's max, ${chunker.max})`);
    out.bundleTarget = t;
  }
  return out;
}
