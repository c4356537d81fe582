/**
 * A synthetic repository for the garbage collector at scale: it implements
 * the narrow views the collector takes (lib/gc/prune.ts PruneRepository:
 * snapshot catalog, object reader and inventory, plans, remover) over ids
 * and tree nodes generated from numbers, so the real mark and sweep
 * (lib/gc/mark.ts, sweep.ts, reach.ts) can run over tens of millions of ids
 * without storing them. Used by bench/gc-memory.ts (10 million reachable
 * chunks) and test/gc-scale.test.ts (the same path, small, every answer checked).
 *
 * Shape: live snapshots name a root; the root names "mid" directories, each
 * naming up to DIRS_PER_MID leaf directories of FILES_PER_DIR files of
 * CHUNKS_PER_FILE chunks each: chunks 0..reachableChunks-1. Chunks from
 * reachableChunks on are garbage: half are named by garbage leaf
 * directories under a garbage root (a forgotten snapshot's trees), the other
 * half by no tree at all. `addLateTree` adds a tree (a backup still running
 * after the mark) that names a range of garbage chunks: the sweep must keep them.
 *
 * An id: bytes 0-3 a bijective mix of (kind tag, number), so that every id's
 * first 16 bytes differ from every other's; 4-26 more mixing; byte 27 the
 * tag; bytes 28-31 the number. Deletions are kept in bitmaps; plans are kept
 * encoded (as the store would keep them), in memory.
 */
import { randomBytes } from 'node:crypto';
import { ObnamError } from '../../lib/errors.js';
import { decodeCbor } from '../../lib/format/cbor.js';
import { newConfig, RepoConfig } from '../../lib/format/config.js';
import { decodeGcPlan, encodeGcPlan, GcPlan } from '../../lib/format/gcplan.js';
import { TreeEntry, TreeNode, TreeRefs, treeRefs } from '../../lib/format/tree.js';
import type { PruneRepository } from '../../lib/gc/prune.js';
import type { GcPlanInfo, SnapshotInfo } from '../../lib/repo/views.js';

export const FILES_PER_DIR = 64;
export const CHUNKS_PER_FILE = 4;
export const DIRS_PER_MID = 1024;
const CHUNKS_PER_DIR = FILES_PER_DIR * CHUNKS_PER_FILE;

/** Kinds of generated ids (byte 27). */
export const Tag = { Chunk: 1, Leaf: 2, Mid: 3, Root: 4, GarbageLeaf: 5, GarbageRoot: 6, Late: 7, Snapshot: 9 } as const;
export type Tag = (typeof Tag)[keyof typeof Tag];

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const scratch = Buffer.alloc(32);

/** The id of generated object `n` of kind `tag`, as 32 bytes in a shared buffer (copy to keep). */
export function idBytes(tag: Tag, n: number): Buffer {
  const x = ((tag << 28) | n) >>> 0; // n < 2^28
  let h = fmix32(x);
  scratch.writeUInt32BE(h, 0);
  for (let o = 4; o < 24; o += 4) {
    h = fmix32(h ^ 0x9e3779b9);
    scratch.writeUInt32BE(h, o);
  }
  scratch.writeUInt16BE(fmix32(h) & 0xffff, 24);
  scratch[26] = 0;
  scratch[27] = tag;
  scratch.writeUInt32BE(n, 28);
  return scratch;
}

export function idOf(tag: Tag, n: number): string {
  return idBytes(tag, n).toString('hex');
}

/** The tag and number of a generated id. */
export function parseId(id: string): { tag: Tag; n: number } {
  return { tag: parseInt(id.slice(54, 56), 16) as Tag, n: parseInt(id.slice(56, 64), 16) };
}

/** A bitmap over object numbers. */
class Bits {
  private readonly b: Uint8Array;
  constructor(n: number) {
    this.b = new Uint8Array(Math.ceil(n / 8) + 1);
  }
  set(i: number): void {
    this.b[i >>> 3]! |= 1 << (i & 7);
  }
  has(i: number): boolean {
    return (this.b[i >>> 3]! & (1 << (i & 7))) !== 0;
  }
}

export interface SyntheticShape {
  reachableChunks: number;
  garbageChunks: number;
  /** Live snapshots (each names a root; roots after the first share the first's mid directories). */
  snapshots?: number;
}

const T = { sec: 1_800_000_000, nsec: 0 };

function fileEntry(name: string, chunks: number[]): TreeEntry {
  return {
    name: Buffer.from(name),
    type: 'file',
    mode: 0o644,
    uid: 1000,
    gid: 1000,
    mtime: T,
    ctime: T,
    size: chunks.length * 4096,
    chunks: chunks.map((c) => ({ id: idOf(Tag.Chunk, c), length: 4096 })),
  };
}

function dirEntry(name: string, subtree: string): TreeEntry {
  return { name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 1000, gid: 1000, mtime: T, ctime: T, size: 0, subtree };
}

const pad = (n: number) => String(n).padStart(8, '0');

export class SyntheticGcRepo implements PruneRepository {
  readonly config: RepoConfig;
  readonly reachableChunks: number;
  readonly garbageChunks: number;
  readonly totalChunks: number;
  readonly leaves: number;
  readonly mids: number;
  readonly garbageLeaves: number;
  readonly snapshots: number;
  /** Garbage chunks named by garbage leaves: [reachableChunks, namedGarbageEnd). */
  readonly namedGarbageEnd: number;
  private readonly deleted = new Map<Tag, Bits>();
  private readonly plans = new Map<string, Uint8Array>();
  private late: { from: number; to: number } | undefined;
  /** Counts, for checks. */
  readonly counts = { treeReads: 0, snapshotReads: 0, deletes: 0 };

  constructor(shape: SyntheticShape) {
    this.reachableChunks = shape.reachableChunks;
    this.garbageChunks = shape.garbageChunks;
    this.totalChunks = shape.reachableChunks + shape.garbageChunks;
    this.leaves = Math.ceil(shape.reachableChunks / CHUNKS_PER_DIR);
    this.mids = Math.ceil(this.leaves / DIRS_PER_MID);
    const namedGarbage = Math.floor(shape.garbageChunks / 2);
    this.garbageLeaves = Math.ceil(namedGarbage / CHUNKS_PER_DIR);
    this.namedGarbageEnd = shape.reachableChunks + namedGarbage;
    this.snapshots = shape.snapshots ?? 2;
    if (this.totalChunks >= 2 ** 28 || this.mids > 4096 || this.garbageLeaves > 4096) throw new Error('synthetic repository too large for its id scheme');
    this.config = newConfig(undefined, undefined, undefined, 3600);
    for (const tag of [Tag.Chunk, Tag.Leaf, Tag.Mid, Tag.Root, Tag.GarbageLeaf, Tag.GarbageRoot, Tag.Late]) {
      this.deleted.set(tag, new Bits(tag === Tag.Chunk ? this.totalChunks : Math.max(this.leaves, this.garbageLeaves, this.snapshots, 1)));
    }
  }

  /** How many of each tree kind exist (before deletions). */
  private treeCount(tag: Tag): number {
    switch (tag) {
      case Tag.Leaf:
        return this.leaves;
      case Tag.Mid:
        return this.mids;
      case Tag.Root:
        return this.snapshots;
      case Tag.GarbageLeaf:
        return this.garbageLeaves;
      case Tag.GarbageRoot:
        return this.garbageLeaves ? 1 : 0;
      case Tag.Late:
        return this.late ? 1 : 0;
      default:
        return 0;
    }
  }

  isDeleted(tag: Tag, n: number): boolean {
    return this.deleted.get(tag)!.has(n);
  }

  private exists(kind: 'tree' | 'chunk', id: string): { tag: Tag; n: number } | undefined {
    const p = parseId(id);
    if (id !== idOf(p.tag, p.n)) return undefined;
    if (kind === 'chunk' ? p.tag !== Tag.Chunk || p.n >= this.totalChunks : p.tag === Tag.Chunk || p.n >= this.treeCount(p.tag)) return undefined;
    if (this.deleted.get(p.tag)?.has(p.n)) return undefined;
    return p;
  }

  /** A tree that names garbage chunks [from, to) appears, as written by a backup after the mark. */
  addLateTree(from: number, to: number): string {
    this.late = { from, to };
    return idOf(Tag.Late, 0);
  }

  // SnapshotCatalog, ObjectReader

  async *listSnapshotIds(): AsyncIterable<string> {
    for (let i = 0; i < this.snapshots; i++) yield idOf(Tag.Snapshot, i);
  }

  async getSnapshot(id: string): Promise<SnapshotInfo> {
    const p = parseId(id);
    if (p.tag !== Tag.Snapshot || p.n >= this.snapshots || id !== idOf(p.tag, p.n)) throw new ObnamError('NOT_FOUND', `snapshot ${id} not found`);
    this.counts.snapshotReads++;
    const s = {
      tree: idOf(Tag.Root, p.n),
      time: T,
      end: T,
      hostname: 'synthetic',
      username: 'synthetic',
      paths: ['/'],
      tags: [],
      program: 'synthetic',
      summary: { files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0, filesRead: 0, newChunks: 0, newTrees: 0, newBytes: 0, storedBytes: 0, errors: 0 },
    };
    return { id, ...s };
  }

  // ReferenceReader (what the collector reads): derived from the same nodes, as a version 1 or 2 repository does.

  async getSnapshotRoot(id: string): Promise<string> {
    return (await this.getSnapshot(id)).tree;
  }

  async getTreeRefs(id: string): Promise<TreeRefs> {
    return treeRefs(await this.getTree(id));
  }

  async getTree(id: string): Promise<TreeNode> {
    const p = this.exists('tree', id);
    if (!p) throw new ObnamError('NOT_FOUND', `tree ${id} not found`);
    this.counts.treeReads++;
    const entries: TreeEntry[] = [];
    const files = (first: number, end: number) => {
      for (let f = 0; first + f * CHUNKS_PER_FILE < end; f++) {
        const c0 = first + f * CHUNKS_PER_FILE;
        const cs: number[] = [];
        for (let c = c0; c < Math.min(end, c0 + CHUNKS_PER_FILE); c++) cs.push(c);
        entries.push(fileEntry(`f${pad(f)}`, cs));
      }
    };
    switch (p.tag) {
      case Tag.Leaf:
        files(p.n * CHUNKS_PER_DIR, Math.min(this.reachableChunks, (p.n + 1) * CHUNKS_PER_DIR));
        break;
      case Tag.Mid:
        for (let l = p.n * DIRS_PER_MID; l < Math.min(this.leaves, (p.n + 1) * DIRS_PER_MID); l++) entries.push(dirEntry(`d${pad(l)}`, idOf(Tag.Leaf, l)));
        break;
      case Tag.Root: {
        // The first snapshot names every mid directory; the others the first half of them (shared).
        const n = p.n === 0 ? this.mids : Math.ceil(this.mids / 2);
        for (let m = 0; m < n; m++) entries.push(dirEntry(`m${pad(m)}`, idOf(Tag.Mid, m)));
        break;
      }
      case Tag.GarbageLeaf:
        files(this.reachableChunks + p.n * CHUNKS_PER_DIR, Math.min(this.namedGarbageEnd, this.reachableChunks + (p.n + 1) * CHUNKS_PER_DIR));
        break;
      case Tag.GarbageRoot:
        for (let g = 0; g < this.garbageLeaves; g++) entries.push(dirEntry(`g${pad(g)}`, idOf(Tag.GarbageLeaf, g)));
        break;
      case Tag.Late:
        files(this.late!.from, this.late!.to);
        // It also names a tree the sweep deleted or never saw (an interrupted backup's): left out.
        entries.push(dirEntry('gone', idOf(Tag.Leaf, 2 ** 27)));
        break;
    }
    return { kind: 'leaf', entries };
  }

  async getObject(): Promise<Uint8Array> {
    throw new ObnamError('INTERNAL', 'the synthetic repository holds no object bytes');
  }

  // ObjectInventory

  async *listIds(kind: 'snapshot' | 'tree' | 'chunk'): AsyncIterable<string> {
    if (kind === 'snapshot') {
      yield* this.listSnapshotIds();
      return;
    }
    const tags = kind === 'chunk' ? [Tag.Chunk] : [Tag.Leaf, Tag.Mid, Tag.Root, Tag.GarbageLeaf, Tag.GarbageRoot, Tag.Late];
    for (const tag of tags) {
      const n = tag === Tag.Chunk ? this.totalChunks : this.treeCount(tag);
      const del = this.deleted.get(tag)!;
      for (let i = 0; i < n; i++) if (!del.has(i)) yield idBytes(tag, i).toString('hex');
    }
  }

  async hasObject(kind: string, id: string): Promise<boolean> {
    return kind === 'tree' || kind === 'chunk' ? this.exists(kind, id) !== undefined : false;
  }

  async hasMany(kind: string, ids: readonly string[]): Promise<boolean[]> {
    return Promise.all(ids.map((id) => this.hasObject(kind, id)));
  }

  async storedSize(kind: string, id: string): Promise<number> {
    if (!(kind === 'tree' || kind === 'chunk') || !this.exists(kind, id)) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
    return kind === 'chunk' ? 4096 : 1024;
  }

  async refresh(): Promise<void> {}

  // ObjectRemover

  async deleteObject(kind: 'tree' | 'chunk', id: string): Promise<void> {
    const p = this.exists(kind, id);
    if (!p) throw new ObnamError('NOT_FOUND', `${kind} ${id} not found`);
    this.deleted.get(p.tag)!.set(p.n);
    this.counts.deletes++;
  }

  // PlanCatalog

  async listPlanIds(): Promise<string[]> {
    return [...this.plans.keys()];
  }

  async getPlan(id: string): Promise<GcPlanInfo> {
    const b = this.plans.get(id);
    if (!b) throw new ObnamError('NOT_FOUND', `gcplan ${id} not found`);
    return { id, ...decodeGcPlan(decodeCbor(b, `gcplan ${id}`), `gcplan ${id}`) };
  }

  async putPlan(plan: GcPlan): Promise<string> {
    const id = randomBytes(32).toString('hex');
    this.plans.set(id, encodeGcPlan(plan));
    return id;
  }

  async deletePlan(id: string): Promise<void> {
    if (!this.plans.delete(id)) throw new ObnamError('NOT_FOUND', `gcplan ${id} not found`);
  }
}
