/**
 * The file names of a local directory store (format-spec/local-store.md,
 * section 1), shared by the store and its scrub.
 */
import * as path from 'node:path';
import type { Kind } from '../format/version.js';

export const MARKER = 'obnam-store';
export const MARKER_TEXT = 'obnam local store 2\n';
/** Layout 1 (no index segments): migrated when opened (format-spec/local-store.md, section 2). */
export const MARKER_TEXT_V1 = 'obnam local store 1\n';
/** Index segments (section 4.8): DIR/index/SEG. */
export const INDEX_DIR = 'index';
/** Kinds kept as one framed file each, and their directories. */
export const FILE_DIRS: Partial<Record<Kind, string>> = {
  config: 'config',
  key: 'keys',
  snapshot: 'snapshots',
  gcplan: 'gcplans',
  member: 'members',
  share: 'shares',
  grant: 'grants',
};
/**
 * Framed kinds added after layout 1 was first written (format version 2's
 * plans, version 3's members, shares and grants): a store made by an earlier
 * obnam lacks their directory, which means "none yet" and is made by the
 * first put.
 */
export const LATER_DIRS: ReadonlySet<Kind> = new Set<Kind>(['gcplan', 'member', 'share', 'grant']);
/** Kinds kept in packs. */
export const PACKED: ReadonlySet<Kind> = new Set<Kind>(['tree', 'chunk']);
const HEX = '0123456789abcdef';
/** The 256 shard directories under packs/. */
export const SHARDS = Array.from({ length: 256 }, (_, i) => HEX[i >> 4]! + HEX[i & 15]!);

export const framedPath = (dir: string, kind: Kind, id: string) => path.join(dir, FILE_DIRS[kind]!, id);
export const packPath = (dir: string, pack: string) => path.join(dir, 'packs', pack.slice(0, 2), pack);
export const tmpDir = (dir: string) => path.join(dir, 'tmp');
export const segmentPath = (dir: string, seg: string) => path.join(dir, INDEX_DIR, seg);
