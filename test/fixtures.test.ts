/**
 * The format contract: the test vectors in fixtures/vectors-v1.json and the
 * repository in fixtures/repo-v1/ were written by this code when format
 * version 1 was fixed, fixtures/vectors-v2.json and fixtures/repo-v2/ when
 * version 2 was. If what obnam writes or how it reads ever changes,
 * these tests fail: change the format only with a new version, a spec update
 * and new vectors (npm run fixtures).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { decodeCbor } from '../lib/format/cbor.js';
import { encodeTreeNode } from '../lib/format/tree.js';
import { directoryEntries } from '../lib/format/treesplit.js';
import { ROOT, obnamOk } from './helpers/cli.js';
import { openTestRepo } from './helpers/repo.js';
import { tempDir } from './helpers/tmp.js';
import { computeVectors, computeVectorsV2, computeVectorsV4 } from './helpers/vectors.js';
import { decodeTreeNode } from '../lib/format/tree.js';
import { computeVectorsV3, vectorMemberKeys } from './helpers/vectors-v3.js';
import { MemberKeySealing } from '../lib/repo/sealing-v3.js';
import { identityFromSecret } from '../lib/crypto/identity.js';
import { prngBytes } from './helpers/prng.js';
import { encodeCbor } from '../lib/format/cbor.js';
import { gcm as nobleGcm } from '@noble/ciphers/aes.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { decodeGcPlan } from '../lib/format/gcplan.js';
import { prune } from '../lib/gc/prune.js';

describe('format version 1 test vectors', () => {
  const stored = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'vectors-v1.json'), 'utf8'));
  const computed = computeVectors();
  for (const key of Object.keys(stored)) {
    it(`${key} is what the code computes`, () => {
      assert.deepEqual(computed[key], stored[key]);
    });
  }
  it('covers every vector the code computes', () => {
    assert.deepEqual(Object.keys(computed).sort(), Object.keys(stored).sort());
  });
});

describe('format version 2 test vectors', () => {
  const stored = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'vectors-v2.json'), 'utf8'));
  const computed = computeVectorsV2();
  for (const key of Object.keys(stored)) {
    it(`${key} is what the code computes`, () => {
      assert.deepEqual(computed[key], stored[key]);
    });
  }
  it('covers every vector the code computes', () => {
    assert.deepEqual(Object.keys(computed).sort(), Object.keys(stored).sort());
  });
  it('the plan vector decodes to its candidates, sorted', () => {
    const plan = decodeGcPlan(decodeCbor(Buffer.from(stored.gcplan_cbor, 'hex'), 'plan'), 'plan');
    assert.equal(plan.hostname, 'collector');
    assert.deepEqual(plan.created, { sec: 1700003600, nsec: 250000000 });
    assert.equal(plan.trees.length, 2);
    assert.equal(plan.chunks.length, 3);
  });
});

describe('format version 4 test vectors (format-spec 17.5)', () => {
  const stored = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'vectors-v4.json'), 'utf8'));
  const computed = computeVectorsV4();
  for (const key of Object.keys(stored)) {
    it(`${key} is what the code computes`, () => {
      assert.deepEqual(computed[key], stored[key]);
    });
  }
  it('covers every vector the code computes', () => {
    assert.deepEqual(Object.keys(computed).sort(), Object.keys(stored).sort());
  });
  it('the tree vector decodes to data, a bundle reference and chunks, and names bytes 100 to 1100 of the bundle', () => {
    const node = decodeTreeNode(decodeCbor(Buffer.from(stored.tree_cbor, 'hex'), 'tree'), 'tree');
    assert.equal(node.kind, 'leaf');
    if (node.kind !== 'leaf') return;
    const [a, b, c] = node.entries;
    assert.equal(a!.data!.toString(), 'hello, obnam\n');
    assert.deepEqual(b!.chunks, [{ id: stored.bundle_id, offset: 100, length: 1000 }]);
    assert.equal(c!.chunks!.length, 1);
    assert.equal(c!.chunks![0]!.offset, undefined);
    const bundle = Buffer.from(stored.bundle_plaintext, 'hex');
    assert.equal(bundle.length, 1400);
    assert.deepEqual(Buffer.from(encodeTreeNode(node)), Buffer.from(stored.tree_cbor, 'hex'));
  });
});

describe('format version 3 test vectors (sharing.md 14)', () => {
  const stored = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'vectors-v3.json'), 'utf8'));
  const computed = computeVectorsV3();
  for (const key of Object.keys(stored)) {
    it(`${key} is what the code computes`, () => {
      assert.deepEqual(computed[key], stored[key]);
    });
  }
  it('covers every vector the code computes', () => {
    assert.deepEqual(Object.keys(computed).sort(), Object.keys(stored).sort());
  });
  it('d, id, ck, AAD_inner and the envelopes agree with an independent computation from sharing.md 6 (@noble primitives)', () => {
    const h = (k: string) => Buffer.from(stored[k], 'hex');
    const keys = vectorMemberKeys();
    const enc = (s: string) => new TextEncoder().encode(s);
    const address = (code: number, p: Uint8Array) => {
      const d = nobleHmac(nobleSha256, keys.content, Buffer.concat([Buffer.from([code]), p]));
      return { d: Buffer.from(d), id: Buffer.from(nobleHmac(nobleSha256, d, enc('obnam-id'))).toString('hex'), ck: Buffer.from(nobleHmac(nobleSha256, d, enc('obnam-content-key'))) };
    };
    const chunk = address(5, h('chunk_plaintext'));
    assert.equal(chunk.d.toString('hex'), stored.chunk_digest);
    assert.equal(chunk.id, stored.chunk_id);
    assert.equal(chunk.ck.toString('hex'), stored.chunk_key);
    const tree = address(4, h('tree_plaintext'));
    assert.equal(tree.id, stored.tree_id);
    assert.equal(tree.ck.toString('hex'), stored.tree_key);
    assert.deepEqual(h('tree_inner_aad'), Buffer.concat([Buffer.from('obnam-inner'), Buffer.from([3, 4]), Buffer.from(tree.id, 'hex')]));
    // The chunk envelope: OBNM 03 05 nonce AES-GCM(ck, flag||payload, header||id).
    const env = h('chunk_envelope');
    assert.deepEqual(env.subarray(0, 6), Buffer.from([0x4f, 0x42, 0x4e, 0x4d, 3, 5]));
    const payload = nobleGcm(chunk.ck, env.subarray(6, 18), Buffer.concat([env.subarray(0, 6), Buffer.from(chunk.id, 'hex')])).decrypt(env.subarray(18));
    assert.ok(payload[0] === 0 || payload[0] === 1);
    // The tree's outer envelope opens under `members` (flag 00) to { refs, content }; content opens under ck with AAD_inner.
    const tenv = h('tree_envelope');
    const outer = nobleGcm(keys.members, tenv.subarray(6, 18), Buffer.concat([tenv.subarray(0, 6), Buffer.from(tree.id, 'hex')])).decrypt(tenv.subarray(18));
    assert.equal(outer[0], 0);
    const m = decodeCbor(outer.subarray(1), 'outer') as { refs: unknown; content: Uint8Array };
    assert.deepEqual(Buffer.from(encodeCbor(m.refs as never)), h('tree_refs'));
    const inner = nobleGcm(tree.ck, m.content.subarray(0, 12), h('tree_inner_aad')).decrypt(m.content.subarray(12));
    assert.ok(inner[0] === 0 || inner[0] === 1);
    // The snapshot: id over the outer plaintext; body AAD binds SHA-256 of the header's CBOR.
    assert.equal(address(3, h('snapshot_outer_plaintext')).id, stored.snapshot_id);
    assert.equal(Buffer.from(nobleSha256(h('snapshot_header'))).toString('hex'), stored.snapshot_header_hash);
    assert.deepEqual(h('snapshot_body_aad'), Buffer.concat([Buffer.from('obnam-snapshot-body'), Buffer.from([3]), h('snapshot_header_hash')]));
  });

  it('the stored envelopes open with the keys their references carry, and the snapshot with its owner\'s identity', () => {
    const owner = identityFromSecret(prngBytes('vector v3 owner secret', 32));
    const sealing = new MemberKeySealing(vectorMemberKeys(), 3, { identity: owner, name: 'alice' });
    const h = (k: string) => Buffer.from(stored[k], 'hex');
    assert.deepEqual(Buffer.from(sealing.openChunk(stored.chunk_id, h('chunk_key'), h('chunk_envelope'), 1 << 20)), h('chunk_plaintext'));
    assert.deepEqual(Buffer.from(sealing.openTree(stored.tree_id, h('tree_key'), h('tree_envelope')).plaintext), h('tree_plaintext'));
    const snap = sealing.openSnapshot(stored.snapshot_id, h('snapshot_envelope'));
    assert.equal(snap.tree, stored.tree_id);
    assert.deepEqual(Buffer.from(snap.treeKey!), h('tree_key'));
    assert.equal(snap.hostname, 'vector-host');
  });
});

describe('the fixture repository (format version 2)', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'repo-v2.json'), 'utf8'));

  it('opens, lists its snapshot, passes fsck, restores byte for byte; its plan holds what the forgotten snapshot alone held, and a prune sweeps it', async () => {
    const tmp = await tempDir();
    try {
      const repo = path.join(tmp.path, 'repo');
      fs.cpSync(path.join(ROOT, 'fixtures', 'repo-v2'), repo, { recursive: true });
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: manifest.passphrase, HOME: tmp.path };
      const snaps = JSON.parse((await obnamOk(['list', '--json'], { env })).stdout);
      assert.deepEqual(snaps.map((s: { id: string }) => s.id), [manifest.snapshot]);
      await obnamOk(['fsck'], { env });
      const out = path.join(tmp.path, 'out');
      await obnamOk(['restore', 'latest', out], { env });
      for (const [f, sha] of Object.entries(manifest.files as Record<string, string>)) {
        assert.equal(createHash('sha256').update(fs.readFileSync(path.join(out, manifest.source, f))).digest('hex'), sha, f);
      }
      const r = await openTestRepo(repo, manifest.passphrase);
      assert.equal(r.config.version, 2);
      assert.equal(r.config.gcGrace, 86400);
      assert.deepEqual(await r.listPlanIds(), [manifest.plan]);
      const plan = await r.getPlan(manifest.plan);
      assert.deepEqual(plan.trees, manifest.plan_trees);
      assert.deepEqual(plan.chunks, manifest.plan_chunks);
      assert.deepEqual(plan.created, { sec: 1700007200, nsec: 0 });
      // Its plan was made in 2023: past its grace period, any prune sweeps it.
      const report = await prune(r, { clock: { now: () => Date.now() } });
      assert.equal(report.swept.length, 1);
      assert.equal(report.deleted.trees, manifest.plan_trees.length);
      assert.equal(report.deleted.chunks, manifest.plan_chunks.length);
      assert.deepEqual(await r.listPlanIds(), []);
      await r.close();
      await obnamOk(['fsck'], { env });
    } finally {
      await tmp.remove();
    }
  });
});

describe('the fixture repository (format version 1)', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'repo-v1.json'), 'utf8'));

  async function copy() {
    const tmp = await tempDir();
    const repo = path.join(tmp.path, 'repo');
    fs.cpSync(path.join(ROOT, 'fixtures', 'repo-v1'), repo, { recursive: true });
    return { tmp, repo, env: { OBNAM_REPO: repo, OBNAM_PASSPHRASE: manifest.passphrase, HOME: tmp.path } };
  }

  it('opens with its passphrase, lists its snapshot, passes fsck and restores byte for byte', async () => {
    const { tmp, repo, env } = await copy();
    try {
      const snaps = JSON.parse((await obnamOk(['list', '--json'], { env })).stdout);
      assert.deepEqual(snaps.map((s: { id: string }) => s.id), [manifest.snapshot]);
      assert.equal(snaps[0].hostname, 'fixture-host');
      await obnamOk(['fsck'], { env });
      const out = path.join(tmp.path, 'out');
      await obnamOk(['restore', 'latest', out], { env });
      const base = path.join(out, manifest.source);
      for (const [f, sha] of Object.entries(manifest.files as Record<string, string>)) {
        assert.equal(createHash('sha256').update(fs.readFileSync(path.join(base, f))).digest('hex'), sha, f);
        assert.equal(fs.statSync(path.join(base, f), { bigint: true }).mtimeNs / 1000n, BigInt(manifest.mtime_ns) / 1000n, `${f} mtime`);
      }
      for (const [l, t] of Object.entries(manifest.symlinks as Record<string, string>)) assert.equal(fs.readlinkSync(path.join(base, l)), t);
      for (const d of manifest.dirs as string[]) assert.ok(fs.statSync(path.join(base, d)).isDirectory());
      void repo;
    } finally {
      await tmp.remove();
    }
  });

  it('every stored tree re-encodes to the same bytes, and every id is the keyed hash of its content', async () => {
    const { tmp, repo } = await copy();
    try {
      const r = await openTestRepo(repo, manifest.passphrase);
      const snap = await r.getSnapshot(manifest.snapshot);
      assert.equal(snap.tree, manifest.tree);
      const walk = async (treeId: string): Promise<number> => {
        const plain = await r.getObject('tree', treeId);
        const node = await r.getTree(treeId);
        assert.ok(Buffer.from(encodeTreeNode(node)).equals(Buffer.from(plain)), `tree ${treeId} re-encodes identically`);
        assert.equal(r.contentId(encodeTreeNode(node)), treeId);
        let n = 1;
        for await (const e of directoryEntries((id) => r.getTree(id), treeId)) {
          if (e.subtree) n += await walk(e.subtree);
          for (const c of e.chunks ?? []) assert.equal(r.contentId(await r.getObject('chunk', c.id)), c.id);
        }
        return n;
      };
      assert.ok((await walk(snap.tree)) >= 4);
      const config = decodeCbor(await r.getObject('config', '0'.repeat(64)), 'config') as Record<string, unknown>;
      assert.equal(config.version, 1);
      await r.close();
    } finally {
      await tmp.remove();
    }
  });
});
