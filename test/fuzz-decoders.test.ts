/**
 * Fuzz test of every decoder of stored and transferred bytes (fast-check):
 * CBOR, the config, garbage-collection plans, key slots, the master key set, snapshots, tree nodes
 * (leaves and index pages, and directory walks over hostile pages), the
 * envelope, compression frames, the local store's framed files and packs
 * (index, records, journals), the packed store's index segments, the
 * objects of shared (version 3) repositories (snapshots outside and inside,
 * keyed tree nodes, reference lists, shares and grants), and the HTTP batch
 * and fetch bodies. Random
 * and mutated inputs must give a result or a typed ObnamError: never another
 * exception, a hang or unbounded memory. Fixed seed first, then a random one.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { sha256 } from '../lib/crypto/hash.js';
import { checkKdfParams } from '../lib/crypto/kdf.js';
import { decodeMasterKeys, encodeMasterKeys, generateMasterKeys } from '../lib/crypto/keys.js';
import { createKeySlot, parseKeySlot } from '../lib/crypto/keyslot.js';
import { ObnamError } from '../lib/errors.js';
import { CborValue, decodeCbor, encodeCbor } from '../lib/format/cbor.js';
import { compressPayload, decompressPayload } from '../lib/format/compress.js';
import { decodeConfig, encodeConfig, newConfig } from '../lib/format/config.js';
import { envelopeVersion, openObject } from '../lib/format/envelope.js';
import { decodeSnapshot } from '../lib/format/snapshot.js';
import { decodeGcPlan } from '../lib/format/gcplan.js';
import type { Kind } from '../lib/format/version.js';
import { decodeTreeNode, decodeTreeRefs, encodeTreeNode, TreeNode } from '../lib/format/tree.js';
import { decodeSnapshotBody, decodeSnapshotOuter } from '../lib/format/snapshot-v3.js';
import { decodeSealedObject, openGrantObject, openShareObject } from '../lib/format/share.js';
import { identityFromSecret } from '../lib/crypto/identity.js';
import { directoryEntries, findEntry } from '../lib/format/treesplit.js';
import { frameHeader, unframe } from '../lib/store/framing.js';
import { LocalStore } from '../lib/store/local.js';
import { decodeBatch, decodeFetch, encodeBatch, encodeFetch, FETCH_MISSING } from '../lib/store/http-wire.js';
import { FOOTER_BYTES, indexLengthFromFooter, packHeader, packRecords, packTrailer, parsePackIndex, recordHeader } from '../lib/store/pack-format.js';
import { damagedJournalRecords, intactRecords } from '../lib/store/pack-recover.js';
import { decodeSegment, encodeSegment } from '../lib/store/index-segment.js';
import { entryJson, isoSeconds, isoTime, localTime, modeString, snapshotJson } from '../cli/format.js';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { assertBoth, assertBothAsync, cborValue, editedCbor, hostileBytes, mutatedBytes, returnsOrThrowsTyped } from './helpers/fuzz.js';
import { TEST_KDF } from './helpers/kdf.js';

const RUNS = { fixed: 300, random: 100 };
const vectors = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'vectors-v1.json'), 'utf8')) as Record<string, unknown>;
const hex = (key: string) => Buffer.from(vectors[key] as string, 'hex');
const id = (seed: string) => createHash('sha256').update(seed).digest('hex');

/** True once `p` settles with a value or an ObnamError; anything else is a finding. */
async function typed(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof ObnamError)) throw e;
  }
}

/** Property: decoding any of these inputs returns or throws an ObnamError. */
function fuzz(inputs: fc.Arbitrary<Uint8Array>, decode: (b: Buffer) => unknown, runs = RUNS): void {
  assertBoth(
    fc.property(inputs, (b) => returnsOrThrowsTyped(() => decode(Buffer.from(b)))),
    runs,
  );
}

const leaf = hex('tree_cbor');
const indexNode = Buffer.from(
  encodeTreeNode({
    kind: 'index',
    pages: [
      { first: Buffer.from('a'), tree: id('page a'), count: 3 },
      { first: Buffer.from('m'), tree: id('page m'), count: 4096 },
    ],
  }),
);

describe('decoders given random and mutated bytes throw only typed errors', () => {
  let keySlot: Uint8Array;
  before(async () => {
    keySlot = await createKeySlot(id('slot'), generateMasterKeys(), Buffer.from('pass'), { hostname: 'h', username: 'u' }, TEST_KDF);
  });

  it('CBOR', () => {
    const valid = [leaf, hex('snapshot_cbor'), hex('config_cbor'), hex('master_keys_cbor')];
    fuzz(hostileBytes(valid), (b) => decodeCbor(b, 'fuzz'));
    // Declared lengths far beyond the input (arrays, maps, strings, bytes) and deep nesting.
    const heads = [0x9b, 0xbb, 0x7b, 0x5b, 0x9a, 0xba, 0x7a, 0x5a].map((h) => Buffer.from([h, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff].slice(0, h & 1 ? 9 : 5)));
    for (const h of heads) assert.ok(returnsOrThrowsTyped(() => decodeCbor(Buffer.concat([h, Buffer.alloc(8)]), 'fuzz')));
    assert.ok(returnsOrThrowsTyped(() => decodeCbor(Buffer.alloc(200_000, 0x81), 'fuzz')), 'deep nesting');
    assert.ok(returnsOrThrowsTyped(() => decodeCbor(Buffer.concat([Buffer.alloc(200_000, 0xa1).map((_, i) => (i % 2 ? 0x60 : 0xa1))]), 'fuzz')));
  });

  it('the repository config', () => {
    const valid = [hex('config_cbor'), Buffer.from(encodeConfig(newConfig(undefined, 19)))];
    const values = (decodeCbor(valid[0]!, 'config') as CborValue)!;
    fuzz(fc.oneof(hostileBytes(valid), editedCbor([values])), (b) => decodeConfig(decodeCbor(b, 'config')));
  });

  it('garbage-collection plans and version 2 configs', () => {
    const v2 = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'vectors-v2.json'), 'utf8'));
    const plan = Buffer.from(v2.gcplan_cbor, 'hex');
    fuzz(fc.oneof(hostileBytes([plan]), editedCbor([decodeCbor(plan, 'plan') as CborValue])), (b) => decodeGcPlan(decodeCbor(b, 'plan'), 'plan'));
    const config = Buffer.from(v2.config_cbor, 'hex');
    fuzz(fc.oneof(hostileBytes([config]), editedCbor([decodeCbor(config, 'config') as CborValue])), (b) => decodeConfig(decodeCbor(b, 'config')));
  });

  it('key slots (parsed and checked, as opening does before any key derivation)', () => {
    const values = decodeCbor(keySlot, 'key') as CborValue;
    fuzz(fc.oneof(hostileBytes([keySlot]), editedCbor([values])), (b) => checkKdfParams(parseKeySlot(id('slot'), b).kdf));
  });

  it('the master key set', () => {
    const valid = [hex('master_keys_cbor'), Buffer.from(encodeMasterKeys(generateMasterKeys()))];
    fuzz(fc.oneof(hostileBytes(valid), editedCbor([decodeCbor(valid[0]!, 'keys') as CborValue])), (b) => decodeMasterKeys(decodeCbor(b, 'keys')));
  });

  it('snapshots', () => {
    const valid = [hex('snapshot_cbor')];
    fuzz(fc.oneof(hostileBytes(valid), editedCbor([decodeCbor(valid[0]!, 'snapshot') as CborValue])), (b) =>
      decodeSnapshot(decodeCbor(b, 'snapshot'), 'snapshot'),
    );
  });

  it('tree nodes: leaves and index pages', () => {
    const values = [leaf, indexNode].map((b) => decodeCbor(b, 'tree') as CborValue);
    fuzz(fc.oneof(hostileBytes([leaf, indexNode]), editedCbor(values)), (b) => decodeTreeNode(decodeCbor(b, 'tree'), 'tree'), {
      fixed: 600,
      random: 200,
    });
  });

  it('directory walks over hostile index pages end, with entries or a typed error', async () => {
    // A few nodes whose pages point at each other (cycles included), each a mutated or edited index or leaf.
    const ids = ['root', 'p1', 'p2', 'p3'].map(id);
    const node = fc
      .oneof(editedCbor([decodeCbor(indexNode, 'tree') as CborValue, decodeCbor(leaf, 'tree') as CborValue]), mutatedBytes([indexNode, leaf]))
      .map((b) => {
        try {
          return decodeTreeNode(decodeCbor(b, 'tree'), 'tree');
        } catch {
          return undefined;
        }
      });
    const graph = fc.tuple(fc.array(node, { minLength: 4, maxLength: 4 }), fc.array(fc.nat(3), { minLength: 16, maxLength: 16 }));
    await assertBothAsync(
      fc.asyncProperty(graph, async ([nodes, links]) => {
        let l = 0;
        const byId = new Map<string, TreeNode>();
        nodes.forEach((n, i) => {
          if (!n) return;
          if (n.kind === 'index') n.pages = n.pages.map((p) => ({ ...p, tree: ids[links[l++ % links.length]!]! }));
          byId.set(ids[i]!, n);
        });
        const load = async (k: string) => {
          const n = byId.get(k);
          if (!n) throw new ObnamError('NOT_FOUND', `tree ${k}`);
          return n;
        };
        let loads = 0;
        const counted = async (k: string) => (loads++, load(k));
        try {
          for await (const _ of directoryEntries(counted, ids[0]!)) void _;
          await findEntry(load, ids[0]!, Buffer.from('m'));
        } catch (e) {
          if (!(e instanceof ObnamError)) throw e;
        }
        assert.ok(loads < 10_000, `bounded work (${loads} loads)`);
        return true;
      }),
      { fixed: 300, random: 100 },
    );
  });

  it('envelopes (authenticated, decrypted, decompressed)', () => {
    const env = vectors.envelope as { id: string; sealed: string };
    const keys = vectors.keys as { encryption: string };
    const key = Buffer.from(keys.encryption, 'hex');
    const sealed = Buffer.from(env.sealed, 'hex');
    fuzz(hostileBytes([sealed]), (b) => {
      envelopeVersion(b);
      return openObject(key, 'chunk', env.id, b, 1 << 20);
    });
  });

  it('compression frames', () => {
    const text = Buffer.from('compressible compressible compressible text\n'.repeat(200));
    const valid = [Buffer.from(compressPayload(text, 3)), Buffer.from(compressPayload(text, 0)), Buffer.from(compressPayload(Buffer.alloc(70_000), 19))];
    const before = process.memoryUsage().rss;
    fuzz(hostileBytes(valid), (b) => decompressPayload(b, 1 << 20, 'fuzz'), { fixed: 600, random: 200 });
    assert.ok(process.memoryUsage().rss - before < 256 << 20, 'memory stays bounded');
  });

  it("the local store's framed files", () => {
    const data = Buffer.from(encodeConfig(newConfig()));
    const framed = Buffer.concat([frameHeader(sha256(data)), data]);
    fuzz(hostileBytes([framed]), (b) => unframe(b, 'fuzz'));
  });

  it('packs: index, records and journals', () => {
    const objects = [Buffer.from('first object'), Buffer.alloc(300, 7), Buffer.from('third')];
    const parts: Buffer[] = [packHeader()];
    const entries = objects.map((data, i) => {
      const offset = parts.reduce((n, p) => n + p.length, 0) + 69;
      const e = { kind: (i === 1 ? 'chunk' : 'tree') as 'chunk' | 'tree', id: id(`object ${i}`), offset, length: data.length, digest: sha256(data) };
      parts.push(recordHeader(e.kind, e.id, data.length, e.digest), data);
      return e;
    });
    // Found by this test: an index shorter than a footer threw a RangeError.
    assert.throws(() => parsePackIndex(Buffer.alloc(0), 0, 'fuzz'), (e: unknown) => e instanceof ObnamError && e.code === 'CORRUPT');
    const journal = Buffer.concat(parts);
    const pack = Buffer.concat([journal, packTrailer(entries)]);
    fuzz(
      hostileBytes([pack, journal]),
      (b) => {
        returnsOrThrowsTyped(() => parsePackIndex(b.subarray(Math.max(0, b.length - (3 * 77 + FOOTER_BYTES))), b.length, 'fuzz'));
        returnsOrThrowsTyped(() => parsePackIndex(b, b.length, 'fuzz'));
        returnsOrThrowsTyped(() => indexLengthFromFooter(b.subarray(Math.max(0, b.length - FOOTER_BYTES)), 'fuzz'));
        returnsOrThrowsTyped(() => [...packRecords(b, 'fuzz')]);
        returnsOrThrowsTyped(() => intactRecords(b));
        return [...damagedJournalRecords(b)];
      },
      { fixed: 500, random: 150 },
    );
  });

  it('a local store whose pack, key or snapshot file was mangled on disk', async () => {
    const tmp = await tempDir('obnam-fuzz-store-');
    try {
      const dir = path.join(tmp.path, 'store');
      const store = await LocalStore.create(dir);
      const objects: [Kind, string][] = [];
      for (const [kind, i] of [['chunk', 0], ['chunk', 1], ['tree', 2], ['snapshot', 3], ['key', 4]] as [Kind, number][]) {
        const data = Buffer.alloc(100 + i * 40, i);
        objects.push([kind, id(`stored ${i}`)]);
        await store.put(kind, id(`stored ${i}`), data);
      }
      await store.close();
      const packFile = (await fs.promises.readdir(path.join(dir, 'packs'), { recursive: true })).find((f) => /[0-9a-f]{64}$/.test(String(f)));
      const files = [path.join(dir, 'packs', String(packFile)), path.join(dir, 'snapshots', id('stored 3')), path.join(dir, 'keys', id('stored 4'))];
      const pristine = files.map((f) => fs.readFileSync(f));
      const mangled = fc.nat(files.length - 1).chain((which) => mutatedBytes([pristine[which]!]).map((bytes) => ({ which, bytes })));
      await assertBothAsync(
        fc.asyncProperty(mangled, async ({ which, bytes }) => {
          files.forEach((f, i) => fs.writeFileSync(f, i === which ? bytes : pristine[i]!));
          const s = await LocalStore.open(dir);
          try {
            for (const [kind, oid] of objects) await typed(s.get(kind, oid));
            const drain = async (it: AsyncIterable<unknown>) => {
              for await (const _ of it) void _;
            };
            for (const kind of ['chunk', 'tree', 'snapshot', 'key'] as Kind[]) await typed(drain(s.list(kind)));
            await typed(drain(s.scrub()));
          } finally {
            await s.close();
          }
          return true;
        }),
        { fixed: 40, random: 15 },
      );
    } finally {
      await tmp.remove();
    }
  });

  it('index segments, their digest made right again after each mutation (as whoever can write the bucket can)', () => {
    const entry = (kind: 'tree' | 'chunk', i: number) => ({ kind, id: id(`segment entry ${i}`), offset: 69 + 100 * i, length: 100 });
    const segments = [
      encodeSegment(new Map([[id('pack a'), { size: 4000, entries: [entry('tree', 0), entry('chunk', 1), entry('chunk', 2)] }]])),
      encodeSegment(new Map([[id('pack b'), { size: 300, entries: [entry('chunk', 3)] }], [id('pack c'), { size: 69, entries: [] }]])),
      encodeSegment(new Map()),
    ];
    const redigested = (b: Buffer) => {
      if (b.length < 32) return b;
      const out = Buffer.from(b);
      sha256(out.subarray(0, out.length - 32)).copy(out, out.length - 32);
      return out;
    };
    const decodeAll = (b: Buffer) => [...decodeSegment(b, 'fuzz').values()].map((p) => [...p.entries]);
    fuzz(fc.oneof(hostileBytes(segments), hostileBytes(segments).map(redigested)), decodeAll, { fixed: 500, random: 150 });
    // A count far beyond the bytes there are is refused, not looped over.
    const huge = Buffer.from(segments[2]!);
    huge.writeUInt32BE(0xffffffff, 8);
    assert.throws(() => decodeAll(redigested(huge)), (e: unknown) => e instanceof ObnamError && e.code === 'CORRUPT');
  });

  it('objects of shared repositories: snapshots (outside and inside), keyed tree nodes, reference lists, shares and grants', () => {
    const v3 = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'vectors-v3.json'), 'utf8')) as Record<string, string>;
    const objects = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'vectors-v3-objects.json'), 'utf8')) as Record<string, Record<string, string>>;
    const v3hex = (key: string) => Buffer.from(v3[key]!, 'hex');
    const cbor = (b: Buffer) => decodeCbor(b, 'v3') as CborValue;
    const both = (valid: Buffer) => fc.oneof(hostileBytes([valid]), editedCbor([cbor(valid)]));

    const outer = v3hex('snapshot_outer_plaintext');
    fuzz(both(outer), (b) => decodeSnapshotOuter(b, 'snapshot'));
    const body = v3hex('snapshot_body_plaintext');
    fuzz(both(body), (b) => decodeSnapshotBody(decodeCbor(b, 'snapshot body'), 'snapshot body'));
    const tree = v3hex('tree_plaintext');
    assert.equal(decodeTreeNode(cbor(tree), 'tree', true).kind, 'leaf');
    fuzz(both(tree), (b) => decodeTreeNode(decodeCbor(b, 'tree'), 'tree', true));
    const refs = v3hex('tree_refs');
    assert.ok(decodeTreeRefs(cbor(refs), 'refs').trees.length > 0);
    fuzz(both(refs), (b) => decodeTreeRefs(decodeCbor(b, 'refs'), 'refs'));

    // Shares and grants, read by the members they name: the owner (who opens both) and the grantee.
    const share = objects.share_object!;
    const grant = objects.grant_object!;
    const owner = identityFromSecret(Buffer.from(share.owner_secret!, 'hex'));
    const grantee = identityFromSecret(Buffer.from(share.grantee_secret!, 'hex'));
    const sharePlain = Buffer.from(share.outer_plaintext!, 'hex');
    const grantPlain = Buffer.from(grant.outer_plaintext!, 'hex');
    assert.ok(openShareObject(share.id!, sharePlain, grantee));
    assert.equal(openGrantObject(grant.id!, grantPlain, owner)?.state, 'granted');
    fuzz(both(sharePlain), (b) => {
      returnsOrThrowsTyped(() => decodeSealedObject('share', share.id!, b));
      returnsOrThrowsTyped(() => openShareObject(share.id!, b, owner));
      return openShareObject(share.id!, b, grantee);
    });
    fuzz(both(grantPlain), (b) => {
      returnsOrThrowsTyped(() => decodeSealedObject('grant', grant.id!, b));
      return openGrantObject(grant.id!, b, owner);
    });
  });

  it('HTTP batch uploads and fetch answers', () => {
    const records = [0, 1, 2].map((i) => {
      const data = Buffer.alloc(i * 50, i);
      return { id: id(`r${i}`), digest: sha256(data), data };
    });
    const batch = Buffer.concat(encodeBatch(records));
    const fetched = Buffer.concat(encodeFetch([...records, { id: id('missing'), status: FETCH_MISSING }]));
    const ids = [...records.map((r) => r.id), id('missing')];
    fuzz(hostileBytes([batch, fetched]), (b) => {
      returnsOrThrowsTyped(() => decodeBatch(b, 100));
      return decodeFetch(b, ids);
    });
  });

  it('what list, ls and key list print of whatever decodes never throws', () => {
    // Found by this test: timestamps beyond what Date shows (|sec| > 8.64e12) threw a RangeError
    // (obnam list --json, ls, and key list, whose "created" a store can set: key slots are not authenticated).
    for (const sec of [2 ** 53 - 1, -(2 ** 53) + 1, 8.64e12 + 1]) {
      assert.match(isoTime({ sec, nsec: 5 }), /^@-?\d+\.000000005$/);
      assert.match(localTime({ sec, nsec: 0 }), /^@-?\d+$/);
      assert.match(isoSeconds(sec), /^@-?\d+$/);
    }
    const snapshot = decodeCbor(hex('snapshot_cbor'), 'snapshot') as CborValue;
    const tree = decodeCbor(leaf, 'tree') as CborValue;
    const slot = decodeCbor(keySlot, 'key') as CborValue;
    const decoded = (f: () => void) => {
      try {
        f();
      } catch (e) {
        if (!(e instanceof ObnamError)) throw e;
      }
    };
    assertBoth(
      fc.property(fc.oneof(editedCbor([snapshot]), editedCbor([tree]), editedCbor([slot])), (b) => {
        let s: ReturnType<typeof decodeSnapshot> | undefined;
        let t: TreeNode | undefined;
        let k: ReturnType<typeof parseKeySlot> | undefined;
        decoded(() => (s = decodeSnapshot(decodeCbor(b, 'snapshot'), 'snapshot')));
        decoded(() => (t = decodeTreeNode(decodeCbor(b, 'tree'), 'tree')));
        decoded(() => (k = parseKeySlot(id('slot'), b)));
        if (s) {
          JSON.stringify(snapshotJson({ id: id('s'), ...s }));
          localTime(s.time);
        }
        if (t?.kind === 'leaf') for (const e of t.entries) JSON.stringify(entryJson(Buffer.concat([Buffer.from('/x/'), e.name]), e)), modeString(e), localTime(e.mtime);
        if (k) isoSeconds(k.created);
        return true;
      }),
      RUNS,
    );
  });

  it('values only the decoder library makes (cycles, dates, sets, typed arrays, unknown tags) in every field', () => {
    const raw = ['d81c81d81d00', 'd81ca16178d81d00', 'd9010283010203', 'c11a5f5e1000', 'd85648' + '00'.repeat(8), 'd84043010203', 'd9ffff00', 'c24900ffffffffffffffff', 'f97e00', 'f7'].map((h) => Buffer.from(h, 'hex'));
    const marker = Buffer.from('\x00obnam-fuzz-marker\x00');
    const markerCbor = Buffer.from(encodeCbor(marker));
    const objects = [hex('snapshot_cbor'), leaf, indexNode, hex('config_cbor'), hex('master_keys_cbor'), Buffer.from(keySlot)].map((b) => decodeCbor(b, 'v') as CborValue);
    const decoders = (b: Buffer) => [
      () => decodeConfig(decodeCbor(b, 'v')),
      () => decodeMasterKeys(decodeCbor(b, 'v')),
      () => decodeSnapshot(decodeCbor(b, 'v'), 'snapshot'),
      () => decodeTreeNode(decodeCbor(b, 'v'), 'tree'),
      () => checkKdfParams(parseKeySlot(id('slot'), b).kdf),
    ];
    /** Every path to a value inside v (the root included). */
    const paths = (v: unknown, at: (string | number)[] = []): (string | number)[][] => {
      const out = [at];
      if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
      else if (v && typeof v === 'object' && !(v instanceof Uint8Array)) for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
      return out;
    };
    const replaced = (v: unknown, at: (string | number)[]): CborValue => {
      if (!at.length) return marker;
      const [k, ...rest] = at;
      if (Array.isArray(v)) return v.map((x, i) => (i === k ? replaced(x, rest) : x)) as CborValue;
      return { ...(v as Record<string, CborValue>), [k!]: replaced((v as Record<string, unknown>)[k!], rest) };
    };
    let cases = 0;
    for (const o of objects) {
      for (const at of paths(o)) {
        const encoded = Buffer.from(encodeCbor(replaced(o, at)));
        const i = encoded.indexOf(markerCbor);
        for (const r of raw) {
          const b = Buffer.concat([encoded.subarray(0, i), r, encoded.subarray(i + markerCbor.length)]);
          for (const d of decoders(b)) assert.ok(returnsOrThrowsTyped(d));
          cases++;
        }
      }
    }
    assert.ok(cases > 500, `${cases} cases`);
  });

  it('arbitrary CBOR values in place of any stored object', () => {
    const decoders: ((v: unknown) => unknown)[] = [
      (v) => decodeConfig(v),
      (v) => decodeMasterKeys(v),
      (v) => decodeSnapshot(v, 'snapshot'),
      (v) => decodeTreeNode(v, 'tree'),
      (v) => decodeTreeNode(v, 'tree', true),
      (v) => decodeTreeRefs(v, 'refs'),
      (v) => decodeSnapshotBody(v, 'snapshot body'),
      (v) => decodeSnapshotOuter(encodeCbor(v as CborValue), 'snapshot'),
      (v) => decodeSealedObject('grant', id('grant'), encodeCbor(v as CborValue)),
      (v) => checkKdfParams(parseKeySlot(id('slot'), encodeCbor(v as CborValue)).kdf),
    ];
    assertBoth(
      fc.property(cborValue, (v) => {
        const decoded = decodeCbor(encodeCbor(v), 'value');
        for (const d of decoders) returnsOrThrowsTyped(() => d(decoded));
        return true;
      }),
      RUNS,
    );
  });
});
