/**
 * A model of the "small-file bundles" proposal (format-spec/proposal-bundles.md,
 * not a format version): what the churn bench's incremental backup would have
 * stored if each directory's inlined files were kept in bundles, apart from
 * the tree's metadata. It reads the two snapshots of a real obnam repository
 * made by bench/churn.ts and re-encodes their trees with the real encoder
 * and compressor, so only the bundle rule itself is modelled:
 *
 *   - metadata tree: each entry as it is, `data` replaced by a reference of
 *     the proposal's size (32-byte id, offset, length);
 *   - bundles: a directory's inlined files in name order, cut after a file
 *     with probability min(1, (size + 64) / target), decided by a hash of the
 *     name alone (the proposal keys it; sha256 stands in for the HMAC), each
 *     bundle one content-addressed object (compressed, plus the 35-byte
 *     envelope); a bundle the first snapshot already has costs nothing.
 *
 * Chunks of large files are what the repository really stored for them.
 */
import { createHash } from 'node:crypto';
import { compressPayload } from '../lib/format/compress.js';
import { encodeTreeNode, TreeEntry, TreeNode } from '../lib/format/tree.js';
import { Repository } from '../lib/repo/repository.js';
import { LocalStore } from '../lib/store/local.js';

const ENVELOPE = 35;
/** Bytes the proposal's reference adds to an entry beyond a `chunks`-like [id, length] pair: an offset (CBOR uint, at most 5 bytes) and a key. */
const REF_EXTRA = 8;

interface SnapshotTrees {
  /** Every tree node id the snapshot reaches. */
  ids: Set<string>;
  /** Leaves by id. */
  leaves: Map<string, TreeEntry[]>;
}

async function treesOf(repo: Repository, root: string): Promise<SnapshotTrees> {
  const out: SnapshotTrees = { ids: new Set(), leaves: new Map() };
  const visit = async (id: string): Promise<void> => {
    if (out.ids.has(id)) return;
    out.ids.add(id);
    const node: TreeNode = await repo.getTree(id);
    if (node.kind === 'index') {
      for (const p of node.pages) await visit(p.tree);
      return;
    }
    out.leaves.set(id, node.entries);
    for (const e of node.entries) if (e.type === 'dir' && e.subtree) await visit(e.subtree);
  };
  await visit(root);
  return out;
}

const dataId = (data: Buffer) => createHash('sha256').update(data).digest('hex');
/** Sealed size of an object: compressed at the repository's level (kept only if smaller, as the writer does) plus the envelope. */
const sealedSize = (plaintext: Uint8Array, level: number) => compressPayload(plaintext, level).length + ENVELOPE;

/** Whether the bundle rule cuts after this file. */
function cutsAfter(e: TreeEntry, target: number): boolean {
  const h = createHash('sha256').update('obnam-bundle-split').update(e.name).digest().readUInt32BE(0);
  return h / 2 ** 32 < Math.min(1, (e.size + 64) / target);
}

/** The bundles of one leaf's inlined files: content id (hash of the bytes) and bytes. */
function bundlesOf(entries: TreeEntry[], target: number): { id: string; bytes: Buffer }[] {
  const out: { id: string; bytes: Buffer }[] = [];
  let open: Buffer[] = [];
  const close = () => {
    if (!open.length) return;
    const bytes = Buffer.concat(open);
    out.push({ id: createHash('sha256').update(bytes).digest('hex'), bytes });
    open = [];
  };
  for (const e of entries) {
    if (e.type !== 'file' || !e.data) continue;
    open.push(e.data);
    if (cutsAfter(e, target)) close();
  }
  close();
  return out;
}

/** The leaf as the proposal's metadata tree: `data` becomes a reference of the proposal's size. */
function metadataSize(entries: TreeEntry[], level: number): number {
  let refs = 0;
  const meta = entries.map((e) => {
    if (e.type !== 'file' || !e.data) return e;
    refs++;
    const { data, ...rest } = e;
    return { ...rest, chunks: [{ id: createHash('sha256').update(data).digest('hex'), length: data.length }] };
  });
  return sealedSize(encodeTreeNode({ kind: 'leaf', entries: meta }), level) + refs * REF_EXTRA;
}

/**
 * How an incremental backup bundles: `regroup` cuts every changed directory's
 * inlined files into bundles again (unchanged bundles keep their ids);
 * `carry` keeps the references of unchanged files and puts only this backup's
 * new contents into new bundles, filled in walk order across directories.
 */
export type BundleRule = 'regroup' | 'carry';

export interface BundleModel {
  /** Sealed bytes of the tree nodes the second backup really added. */
  newTreeBytes: number;
  newTreeObjects: number;
  /** Per rule and bundle target: sealed bytes of the metadata trees and of the new bundles, and their object count. */
  targets: { rule: BundleRule; target: number; metadataBytes: number; bundleBytes: number; objects: number; firstObjects: number }[];
}

/** Models the proposal on the last two snapshots of the local repository at `dir`. */
export async function modelBundles(dir: string, passphrase: string, targets: number[], rules: BundleRule[] = ['regroup', 'carry']): Promise<BundleModel> {
  const repo = await Repository.open(await LocalStore.open(dir), passphrase);
  try {
    const level = repo.config.compressionLevel;
    const snaps = await repo.listSnapshots();
    if (snaps.length < 2) throw new Error(`${dir}: needs two snapshots, has ${snaps.length}`);
    const before = await treesOf(repo, snaps[snaps.length - 2]!.tree);
    const after = await treesOf(repo, snaps[snaps.length - 1]!.tree);
    const added = [...after.ids].filter((id) => !before.ids.has(id));
    let newTreeBytes = 0;
    for (const id of added) newTreeBytes += await repo.storedSize('tree', id);
    const model: BundleModel = { newTreeBytes, newTreeObjects: added.length, targets: [] };
    const oldData = new Set<string>();
    for (const entries of before.leaves.values()) for (const e of entries) if (e.data) oldData.add(dataId(e.data));
    let metadataBytes = 0;
    for (const id of added) {
      const entries = after.leaves.get(id);
      // An index node is unchanged by the proposal.
      metadataBytes += entries ? metadataSize(entries, level) : await repo.storedSize('tree', id);
    }
    for (const rule of rules) {
      for (const target of targets) {
        const old = new Set<string>();
        for (const entries of before.leaves.values()) for (const b of bundlesOf(entries, target)) old.add(b.id);
        let bundleBytes = 0;
        let bundles = 0;
        if (rule === 'regroup') {
          const fresh = new Set<string>();
          for (const id of added) {
            for (const b of bundlesOf(after.leaves.get(id) ?? [], target)) {
              if (old.has(b.id) || fresh.has(b.id)) continue;
              fresh.add(b.id);
              bundleBytes += sealedSize(b.bytes, level);
            }
          }
          bundles = fresh.size;
        } else {
          const seen = new Set(oldData);
          let open: Buffer[] = [];
          let size = 0;
          const close = () => {
            if (size === 0) return;
            bundleBytes += sealedSize(Buffer.concat(open), level);
            bundles++;
            open = [];
            size = 0;
          };
          for (const id of added) {
            for (const e of after.leaves.get(id) ?? []) {
              if (!e.data || e.data.length === 0 || seen.has(dataId(e.data))) continue;
              seen.add(dataId(e.data));
              open.push(e.data);
              size += e.data.length;
              if (size >= target) close();
            }
          }
          close();
        }
        model.targets.push({ rule, target, metadataBytes, bundleBytes, objects: added.length + bundles, firstObjects: old.size });
      }
    }
    return model;
  } finally {
    await repo.close();
  }
}
