/**
 * Test vectors of format version 1: every value is computed by the code from
 * fixed inputs. make-fixtures.ts writes them to fixtures/vectors-v1.json;
 * fixtures.test.ts recomputes them and compares, so any change to what obnam
 * writes fails a test.
 */
import { Chunker, DEFAULT_CHUNKER, deriveGearTable } from '../../lib/chunking/fastcdc.js';
import { hmacSha256 } from '../../lib/crypto/hash.js';
import { encodeMasterKeys, MasterKeys } from '../../lib/crypto/keys.js';
import { encodeConfig } from '../../lib/format/config.js';
import { encodeGcPlan } from '../../lib/format/gcplan.js';
import { sealObject } from '../../lib/format/envelope.js';
import { encodeSnapshot } from '../../lib/format/snapshot.js';
import { encodeTreeNode, TreeNode } from '../../lib/format/tree.js';
import { isSplitPoint } from '../../lib/format/treesplit.js';
import { prngBytes } from './prng.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function vectorKeys(): MasterKeys {
  return {
    encryption: prngBytes('vector encryption key', 32),
    id: prngBytes('vector id key', 32),
    chunker: prngBytes('vector chunker key', 32),
  };
}

/**
 * Test vectors of format version 2 (fixtures/vectors-v2.json): what version 2
 * adds to version 1, whose vectors still hold for everything else (trees,
 * snapshots, chunking and ids did not change).
 */
export function computeVectorsV2(): Record<string, unknown> {
  const keys = vectorKeys();
  const config = encodeConfig({
    version: 2,
    repositoryId: prngBytes('vector repository id', 32).toString('hex'),
    created: 1700000000,
    chunker: DEFAULT_CHUNKER,
    compressionLevel: 3,
    inlineMax: 16384,
    gcGrace: 86400,
  });
  const ids = (label: string, n: number) => Array.from({ length: n }, (_, i) => hmacSha256(keys.id, Buffer.from(`${label} ${i}`)).toString('hex')).sort();
  const plan = encodeGcPlan({ created: { sec: 1700003600, nsec: 250000000 }, hostname: 'collector', trees: ids('tree', 2), chunks: ids('chunk', 3) });
  const planId = prngBytes('vector plan id', 32).toString('hex');
  const nonce = prngBytes('vector nonce v2', 12);
  const plaintext = Buffer.from('obnam test vector: an object plaintext, compressible compressible compressible\n'.repeat(4));
  const id = hmacSha256(keys.id, plaintext).toString('hex');
  return {
    keys: { encryption: hex(keys.encryption), id: hex(keys.id), chunker: hex(keys.chunker) },
    config_cbor: hex(config),
    gcplan_cbor: hex(plan),
    gcplan_envelope: { kind: 'gcplan', id: planId, nonce: hex(nonce), level: 3, sealed: hex(sealObject(keys.encryption, 'gcplan', planId, plan, 3, nonce, 2)) },
    chunk_envelope: { kind: 'chunk', id, nonce: hex(nonce), level: 3, sealed: hex(sealObject(keys.encryption, 'chunk', id, plaintext, 3, nonce, 2)) },
  };
}

/**
 * Test vectors of format version 4 (fixtures/vectors-v4.json): what version 4
 * adds to version 2 (format-spec 2.6 and 17.5): the config with
 * bundle_target, a bundle and its id, and a tree node mixing `data`,
 * `bundle` and `chunks`, encoded and sealed.
 */
export function computeVectorsV4(): Record<string, unknown> {
  const keys = vectorKeys();
  const config = encodeConfig({
    version: 4,
    repositoryId: prngBytes('vector repository id', 32).toString('hex'),
    created: 1700000000,
    chunker: DEFAULT_CHUNKER,
    compressionLevel: 3,
    inlineMax: 16384,
    gcGrace: 86400,
    bundleTarget: 65536,
  });
  const files = [100, 1000, 300].map((n, i) => prngBytes(`vector bundle file ${i}`, n));
  const bundle = Buffer.concat(files);
  const bundleId = hmacSha256(keys.id, bundle).toString('hex');
  const plaintext = Buffer.from('obnam test vector: an object plaintext, compressible compressible compressible\n'.repeat(4));
  const chunkId = hmacSha256(keys.id, plaintext).toString('hex');
  const meta = { mode: 0o644, uid: 1000, gid: 1000, user: 'alice', group: 'alice', mtime: { sec: 1700000000, nsec: 123456789 }, ctime: { sec: 1700000001, nsec: 5 }, nlink: 1 };
  const tree: TreeNode = {
    kind: 'leaf',
    entries: [
      { name: Buffer.from('a'), type: 'file', ...meta, size: 13, inode: 1, data: Buffer.from('hello, obnam\n') },
      { name: Buffer.from('b'), type: 'file', ...meta, size: 1000, inode: 2, chunks: [{ id: bundleId, offset: 100, length: 1000 }] },
      { name: Buffer.from('c'), type: 'file', ...meta, size: plaintext.length, inode: 3, chunks: [{ id: chunkId, length: plaintext.length }] },
    ],
  };
  const treeBytes = encodeTreeNode(tree);
  const treeId = hmacSha256(keys.id, treeBytes).toString('hex');
  const nonce = prngBytes('vector nonce v4', 12);
  return {
    config_cbor: hex(config),
    bundle_plaintext: hex(bundle),
    bundle_id: bundleId,
    tree_cbor: hex(treeBytes),
    tree_id: treeId,
    tree_envelope: { kind: 'tree', id: treeId, nonce: hex(nonce), level: 3, sealed: hex(sealObject(keys.encryption, 'tree', treeId, treeBytes, 3, nonce, 4)) },
  };
}

export function computeVectors(): Record<string, unknown> {
  const keys: MasterKeys = {
    encryption: prngBytes('vector encryption key', 32),
    id: prngBytes('vector id key', 32),
    chunker: prngBytes('vector chunker key', 32),
  };
  const gear = deriveGearTable(keys.chunker);
  const data = prngBytes('vector chunk data', 12 << 20);
  const chunker = new Chunker(gear, DEFAULT_CHUNKER);
  const lengths: number[] = [];
  for (let s = 0; s < data.length; ) {
    const n = chunker.cut(data, s, data.length, true);
    lengths.push(n);
    s += n;
  }
  const plaintext = Buffer.from('obnam test vector: an object plaintext, compressible compressible compressible\n'.repeat(4));
  const id = hmacSha256(keys.id, plaintext).toString('hex');
  const nonce = prngBytes('vector nonce', 12);
  const chunkId = hmacSha256(keys.id, Buffer.from('chunk')).toString('hex');
  const tree: TreeNode = {
    kind: 'leaf',
    entries: [
      {
        name: Buffer.from('dir'),
        type: 'dir',
        mode: 0o755,
        uid: 1000,
        gid: 1000,
        user: 'alice',
        group: 'alice',
        mtime: { sec: 1700000000, nsec: 123456789 },
        ctime: { sec: 1700000001, nsec: 5 },
        size: 0,
        inode: 4242,
        nlink: 2,
        subtree: id,
        xattrs: [[Buffer.from('user.note'), Buffer.from('hi')]],
      },
      {
        name: Buffer.from('file'),
        type: 'file',
        mode: 0o4755,
        uid: 0,
        gid: 0,
        mtime: { sec: -86400, nsec: 0 },
        ctime: { sec: 2 ** 40, nsec: 999999999 },
        size: 5,
        inode: 2 ** 40,
        nlink: 1,
        chunks: [{ id: chunkId, length: 5 }],
      },
      { name: Buffer.from('inline'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: { sec: 1, nsec: 1 }, ctime: { sec: 1, nsec: 1 }, size: 3, data: Buffer.from('abc') },
      { name: Buffer.from([0xff]), type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: { sec: 1, nsec: 1 }, ctime: { sec: 1, nsec: 1 }, size: 4, target: Buffer.from('file') },
    ],
  };
  const treeBytes = encodeTreeNode(tree);
  const snapshot = encodeSnapshot({
    tree: hmacSha256(keys.id, treeBytes).toString('hex'),
    time: { sec: 1700000000, nsec: 0 },
    end: { sec: 1700000060, nsec: 500000000 },
    hostname: 'host',
    username: 'alice',
    paths: ['/home/alice'],
    tags: ['daily'],
    parent: chunkId,
    program: 'obnam 0.1.0',
    summary: { files: 1, dirs: 2, symlinks: 1, others: 0, bytes: 5, filesRead: 1, newChunks: 1, newTrees: 2, newBytes: 5, storedBytes: 100, errors: 0 },
  });
  const config = encodeConfig({
    version: 1,
    repositoryId: prngBytes('vector repository id', 32).toString('hex'),
    created: 1700000000,
    chunker: DEFAULT_CHUNKER,
    compressionLevel: 3,
    inlineMax: 16384,
  });
  return {
    keys: { encryption: hex(keys.encryption), id: hex(keys.id), chunker: hex(keys.chunker) },
    master_keys_cbor: hex(encodeMasterKeys(keys)),
    gear_first_8: Array.from(gear.slice(0, 8)),
    chunk_lengths_of_prng_12MiB: lengths,
    object_id: { plaintext: hex(plaintext), id },
    envelope: { kind: 'chunk', id, nonce: hex(nonce), level: 3, sealed: hex(sealObject(keys.encryption, 'chunk', id, plaintext, 3, nonce, 1)) },
    tree_cbor: hex(treeBytes),
    snapshot_cbor: hex(snapshot),
    config_cbor: hex(config),
    tree_split_points: Array.from({ length: 20000 }, (_, i) => `name-${i}`)
      .filter((n) => isSplitPoint(keys.chunker, 0, Buffer.from(n)))
      .slice(0, 8),
  };
}
