/**
 * Snapshot objects: one per backup, CBOR, naming the root tree and describing
 * the backup. A snapshot references trees and chunks but nothing references a
 * snapshot (the parent field is informational), so removing one never
 * affects another.
 */
import { CborValue, encodeCbor } from './cbor.js';
import { idFromBytes, idToBytes } from './ids.js';
import { asArray, asBytes, asMap, asText, asTimestamp, asUint, Obj, optional } from './schema.js';
import type { Timestamp } from './tree.js';

export interface SnapshotSummary {
  files: number;
  dirs: number;
  symlinks: number;
  others: number;
  /** Sum of the sizes of all files in the snapshot. */
  bytes: number;
  /** Files read and chunked in this backup (the others were reused from the parent). */
  filesRead: number;
  /** Chunks and trees this backup added, and their plaintext and stored sizes. */
  newChunks: number;
  newTrees: number;
  newBytes: number;
  storedBytes: number;
  /** Files or directories that could not be read and were left out. */
  errors: number;
}

export interface Snapshot {
  tree: string;
  /** When the backup started (the snapshot's time) and ended. */
  time: Timestamp;
  end: Timestamp;
  hostname: string;
  username: string;
  /** The backed-up paths, absolute. */
  paths: string[];
  tags: string[];
  parent?: string;
  program: string;
  summary: SnapshotSummary;
  /** The root node's content key (format version 3: kept in the sealed body, format-spec/sharing.md 8.1). */
  treeKey?: Uint8Array;
  /** The version 2 snapshot this one was rewritten from by obnam upgrade (format version 3, sharing.md 12). */
  upgradedFrom?: string;
}

export const SUMMARY_FIELDS: (keyof SnapshotSummary)[] = [
  'files',
  'dirs',
  'symlinks',
  'others',
  'bytes',
  'filesRead',
  'newChunks',
  'newTrees',
  'newBytes',
  'storedBytes',
  'errors',
];

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

/** The version 1 snapshot map (README section 9), ready for CBOR. */
export function snapshotMap(s: Snapshot): { [key: string]: CborValue | undefined } {
  const summary: Record<string, number> = {};
  for (const k of SUMMARY_FIELDS) summary[snake(k)] = s.summary[k];
  return {
    tree: idToBytes(s.tree),
    time: [s.time.sec, s.time.nsec],
    end: [s.end.sec, s.end.nsec],
    hostname: s.hostname,
    username: s.username,
    paths: s.paths,
    tags: s.tags,
    parent: s.parent === undefined ? undefined : idToBytes(s.parent),
    program: s.program,
    summary,
  };
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  return encodeCbor(snapshotMap(s));
}

export function decodeSnapshot(v: unknown, what: string): Snapshot {
  return decodeSnapshotMap(asMap(v, what), what);
}

/** The fields of the version 1 snapshot map from a decoded map. */
export function decodeSnapshotMap(m: Obj, what: string): Snapshot {
  const sm = asMap(m.summary, `${what} summary`);
  const summary = {} as SnapshotSummary;
  for (const k of SUMMARY_FIELDS) summary[k] = optional(sm[snake(k)], asUint, `${what} summary ${k}`) ?? 0;
  return {
    tree: idFromBytes(asBytes(m.tree, `${what} tree`)),
    time: asTimestamp(m.time, `${what} time`),
    end: asTimestamp(m.end, `${what} end`),
    hostname: asText(m.hostname, `${what} hostname`),
    username: asText(m.username, `${what} username`),
    paths: asArray(m.paths, `${what} paths`).map((p) => asText(p, `${what} path`)),
    tags: asArray(m.tags, `${what} tags`).map((t) => asText(t, `${what} tag`)),
    parent: m.parent === undefined ? undefined : idFromBytes(asBytes(m.parent, `${what} parent`)),
    program: asText(m.program, `${what} program`),
    summary,
  };
}

/** The current time, to the millisecond (the wall clock's resolution in Node). */
export function nowTimestamp(): Timestamp {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}
