/**
 * Test vectors of format version 3's data path (format-spec/sharing.md 6-8,
 * 14): content digest, id and content key; a chunk's envelope; a tree's
 * inner plaintext, reference list, inner and outer envelopes; a snapshot's
 * header, recipient stanza, body and outer envelope. All inputs come from
 * prngBytes; fixtures/vectors-v3.json holds the result, and
 * test/fixtures.test.ts recomputes it on every run.
 */
import { contentAddress, contentDigest } from '../../lib/crypto/contentkey.js';
import { identityFromSecret } from '../../lib/crypto/identity.js';
import { encodeCbor } from '../../lib/format/cbor.js';
import { sealObject } from '../../lib/format/envelope.js';
import { innerAad, sealInner, snapshotBodyAad } from '../../lib/format/inner-envelope.js';
import { encodeHeader, encodeSnapshotBody, headerHash, makeSnapshotOuter, SnapshotBody } from '../../lib/format/snapshot-v3.js';
import { encodeTreeNode, encodeTreeRefs, TreeNode, treeRefs } from '../../lib/format/tree.js';
import { KIND_CODE } from '../../lib/format/version.js';
import { prngBytes } from './prng.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export function vectorMemberKeys() {
  return {
    content: prngBytes('vector v3 content key', 32),
    chunker: prngBytes('vector v3 chunker key', 32),
    members: prngBytes('vector v3 members key', 32),
    auth: prngBytes('vector v3 auth key', 32),
  };
}

export function computeVectorsV3(): Record<string, unknown> {
  const keys = vectorMemberKeys();
  const level = 3;
  const chunkPlain = Buffer.from('obnam format version 3 vector chunk: '.repeat(4));
  const chunk = contentAddress(keys.content, KIND_CODE.chunk, chunkPlain);
  const chunkEnvelope = sealObject(chunk.key, 'chunk', chunk.id, chunkPlain, level, prngBytes('vector v3 chunk nonce', 12), 3);

  const sub = { id: prngBytes('vector v3 subtree id', 32).toString('hex'), key: prngBytes('vector v3 subtree key', 32) };
  const t = { sec: 1700000000, nsec: 500 };
  const node: TreeNode = {
    kind: 'leaf',
    entries: [
      { name: Buffer.from('dir'), type: 'dir', mode: 0o755, uid: 1000, gid: 1000, mtime: t, ctime: t, size: 0, subtree: sub.id, subtreeKey: sub.key },
      { name: Buffer.from('file'), type: 'file', mode: 0o644, uid: 1000, gid: 1000, mtime: t, ctime: t, size: chunkPlain.length, chunks: [{ id: chunk.id, length: chunkPlain.length, key: chunk.key }] },
    ],
  };
  const treePlain = encodeTreeNode(node);
  const tree = contentAddress(keys.content, KIND_CODE.tree, treePlain);
  const refs = encodeCbor(encodeTreeRefs(treeRefs(node)));
  const inner = sealInner(tree.key, innerAad('tree', tree.id), treePlain, level, prngBytes('vector v3 tree inner nonce', 12));
  const treeOuter = encodeCbor({ refs: encodeTreeRefs(treeRefs(node)), content: inner });
  const treeEnvelope = sealObject(keys.members, 'tree', tree.id, treeOuter, 0, prngBytes('vector v3 tree outer nonce', 12), 3);

  const owner = identityFromSecret(prngBytes('vector v3 owner secret', 32));
  const body: SnapshotBody = {
    tree: tree.id,
    treeKey: tree.key,
    time: { sec: 1700000000, nsec: 0 },
    end: { sec: 1700000060, nsec: 0 },
    hostname: 'vector-host',
    username: 'alice',
    paths: ['/home/alice'],
    tags: [],
    program: 'obnam vectors',
    summary: { files: 1, dirs: 1, symlinks: 0, others: 0, bytes: chunkPlain.length, filesRead: 1, newChunks: 1, newTrees: 1, newBytes: chunkPlain.length, storedBytes: 0, errors: 0 },
    ownerName: 'alice',
    sharedWith: [],
  };
  const header = { owner: owner.public, hostname: body.hostname, time: body.time, tree: tree.id };
  const snapshotKey = prngBytes('vector v3 snapshot key', 32);
  const { plaintext: snapshotOuter } = makeSnapshotOuter(body, owner, [], level, {
    snapshotKey,
    ephemeralSecrets: [prngBytes('vector v3 snapshot ephemeral', 32)],
    nonce: prngBytes('vector v3 snapshot body nonce', 12),
  });
  const snapshot = contentAddress(keys.content, KIND_CODE.snapshot, snapshotOuter);
  const snapshotEnvelope = sealObject(keys.members, 'snapshot', snapshot.id, snapshotOuter, 0, prngBytes('vector v3 snapshot outer nonce', 12), 3);

  return {
    member_keys: { content: hex(keys.content), chunker: hex(keys.chunker), members: hex(keys.members), auth: hex(keys.auth) },
    chunk_plaintext: hex(chunkPlain),
    chunk_digest: hex(contentDigest(keys.content, KIND_CODE.chunk, chunkPlain)),
    chunk_id: chunk.id,
    chunk_key: hex(chunk.key),
    chunk_envelope: hex(chunkEnvelope),
    tree_plaintext: hex(treePlain),
    tree_id: tree.id,
    tree_key: hex(tree.key),
    tree_refs: hex(refs),
    tree_inner_aad: hex(innerAad('tree', tree.id)),
    tree_envelope: hex(treeEnvelope),
    owner_public: hex(owner.public),
    snapshot_header: hex(encodeHeader(header)),
    snapshot_header_hash: hex(headerHash(header)),
    snapshot_key: hex(snapshotKey),
    snapshot_body_plaintext: hex(encodeSnapshotBody(body)),
    snapshot_body_aad: hex(snapshotBodyAad(headerHash(header))),
    snapshot_outer_plaintext: hex(snapshotOuter),
    snapshot_id: snapshot.id,
    snapshot_envelope: hex(snapshotEnvelope),
  };
}
