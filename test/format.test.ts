/**
 * The format's building blocks: deterministic CBOR, the crypto primitives
 * (cross-checked against the pure-JS @noble implementations), the envelope's
 * binding of id, kind and version, compression flags, tree validation of
 * hostile input, and large-directory paging.
 */
import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { gcm } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { scrypt as nobleScrypt } from '@noble/hashes/scrypt.js';
import { openAead, sealAead } from '../lib/crypto/aead.js';
import { hmacSha256, sha256 } from '../lib/crypto/hash.js';
import { deriveKey } from '../lib/crypto/kdf.js';
import { decodeCbor, encodeCbor } from '../lib/format/cbor.js';
import { FLAG_RAW, FLAG_ZSTD } from '../lib/format/compress.js';
import { HEADER_BYTES, openObject, sealObject } from '../lib/format/envelope.js';
import { decodeTreeNode, encodeTreeNode, TreeEntry, TreeNode } from '../lib/format/tree.js';
import { directoryEntries, findEntry, LEAF_MAX, writeDirectory } from '../lib/format/treesplit.js';
import { ObnamError } from '../lib/errors.js';

const key = randomBytes(32);
const id = randomBytes(32).toString('hex');

const code = (e: unknown) => (e instanceof ObnamError ? e.code : String(e));

describe('deterministic CBOR', () => {
  it('encodes equal values to equal bytes whatever the key order', () => {
    const a = encodeCbor({ b: 1, a: [2, 'x'], cc: new Uint8Array([1]) });
    const b = encodeCbor({ cc: new Uint8Array([1]), a: [2, 'x'], b: 1 });
    assert.deepEqual(a, b);
    // Core deterministic order: shorter keys first, then bytewise.
    assert.equal(Buffer.from(a).toString('hex'), 'a3' + '6161' + '82026178' + '6162' + '01' + '626363' + '4101');
  });

  it('writes integers in their shortest form, including 64-bit ones, and reads them back', () => {
    const cases: [number, string][] = [
      [0, '00'],
      [23, '17'],
      [24, '1818'],
      [65535, '19ffff'],
      [4294967296, '1b0000000100000000'],
      [-1, '20'],
      [-4294967297, '3b0000000100000000'],
      [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
    ];
    for (const [n, hex] of cases) {
      assert.equal(Buffer.from(encodeCbor(n)).toString('hex'), hex, String(n));
      assert.equal(decodeCbor(encodeCbor(n), 'test'), n);
    }
    assert.throws(() => encodeCbor(1.5), /only safe integers/);
  });
});

describe('crypto primitives against the pure-JS implementations', () => {
  it('AES-256-GCM: sealed by node:crypto opens with @noble, and the other way round', () => {
    const nonce = randomBytes(12);
    const aad = randomBytes(40);
    const pt = randomBytes(10_000);
    const ours = sealAead(key, pt, aad, nonce);
    assert.deepEqual(Buffer.from(gcm(key, nonce, aad).decrypt(ours.subarray(12))), pt);
    const theirs = gcm(key, nonce, aad).encrypt(pt);
    assert.deepEqual(openAead(key, Buffer.concat([nonce, theirs]), aad, 'x'), pt);
  });

  it('HMAC-SHA256 and SHA-256 agree with @noble/hashes', () => {
    const data = randomBytes(100_000);
    assert.deepEqual(hmacSha256(key, data), Buffer.from(hmac(nobleSha256, key, data)));
    assert.deepEqual(sha256(data), Buffer.from(nobleSha256(data)));
  });

  it('scrypt key derivation agrees with @noble/hashes', async () => {
    const salt = randomBytes(32);
    const p = Buffer.from('passphrase');
    const ours = await deriveKey(p, { algorithm: 'scrypt', logN: 10, r: 8, p: 1, salt });
    assert.deepEqual(ours, Buffer.from(nobleScrypt(p, salt, { N: 1024, r: 8, p: 1, dkLen: 32 })));
    assert.deepEqual(ours, scryptSync(p, salt, 32, { N: 1024, r: 8, p: 1 }));
  });

  it('refuses KDF parameters that would exhaust memory', async () => {
    await assert.rejects(deriveKey(Buffer.from('x'), { algorithm: 'scrypt', logN: 40, r: 8, p: 1, salt: randomBytes(32) }), {
      code: 'CORRUPT',
    });
  });
});

describe('the envelope', () => {
  it('round-trips, compressing only when it pays', () => {
    const text = Buffer.from('compress me '.repeat(1000));
    const noise = randomBytes(5000);
    for (const [pt, flag] of [
      [text, FLAG_ZSTD],
      [noise, FLAG_RAW],
    ] as const) {
      const sealed = sealObject(key, 'chunk', id, pt, 3);
      assert.deepEqual(Buffer.from(openObject(key, 'chunk', id, sealed, 1 << 20)), pt);
      const aad = Buffer.concat([sealed.subarray(0, HEADER_BYTES), Buffer.from(id, 'hex')]);
      const inner = openAead(key, sealed.subarray(HEADER_BYTES), aad, 'x');
      assert.equal(inner[0], flag);
      if (flag === FLAG_ZSTD) assert.ok(sealed.length < pt.length / 10);
    }
  });

  it('fails authentication when the id, the kind or any byte changes, or it is truncated', () => {
    const sealed = sealObject(key, 'tree', id, Buffer.from('a tree'), 3);
    const other = randomBytes(32).toString('hex');
    assert.equal(code(tryOpen(() => openObject(key, 'tree', other, sealed, 1000))), 'CORRUPT');
    assert.equal(code(tryOpen(() => openObject(key, 'chunk', id, sealed, 1000))), 'CORRUPT');
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 20]! ^= 1;
    assert.equal(code(tryOpen(() => openObject(key, 'tree', id, flipped, 1000))), 'CORRUPT');
    assert.equal(code(tryOpen(() => openObject(key, 'tree', id, sealed.subarray(0, sealed.length - 1), 1000))), 'CORRUPT');
    const wrongKind = Buffer.from(sealed);
    wrongKind[5] = 5;
    assert.equal(code(tryOpen(() => openObject(key, 'chunk', id, wrongKind, 1000))), 'CORRUPT');
    const future = Buffer.from(sealed);
    future[4] = 9;
    assert.equal(code(tryOpen(() => openObject(key, 'tree', id, future, 1000))), 'UNSUPPORTED_VERSION');
  });

  it('refuses to decompress beyond the size limit (no decompression bombs)', () => {
    const sealed = sealObject(key, 'tree', id, Buffer.alloc(1 << 20), 3);
    assert.equal(code(tryOpen(() => openObject(key, 'tree', id, sealed, 1000))), 'CORRUPT');
  });
});

function tryOpen(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

function entry(name: string | Buffer, extra: Partial<TreeEntry> = {}): TreeEntry {
  return {
    name: Buffer.isBuffer(name) ? name : Buffer.from(name),
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: { sec: 1, nsec: 2 },
    ctime: { sec: 3, nsec: 4 },
    size: 0,
    data: Buffer.alloc(0),
    ...extra,
  };
}

describe('tree validation', () => {
  const roundTrip = (node: unknown) => decodeTreeNode(decodeCbor(encodeCbor(node as never), 't'), 't');

  it('round-trips a leaf with every entry type', () => {
    const node: TreeNode = {
      kind: 'leaf',
      entries: [
        entry('a', { data: Buffer.from('hi'), size: 2 }),
        entry('b', { type: 'dir', data: undefined, subtree: id }),
        entry('c', { type: 'symlink', data: undefined, target: Buffer.from('/x') }),
        entry('d', { type: 'hardlink', data: undefined, link: Buffer.from('a') }),
        entry('e', { data: undefined, chunks: [{ id, length: 5 }], size: 5 }),
        entry(Buffer.from([0xff, 0xfe]), { type: 'fifo', data: undefined, xattrs: [[Buffer.from('user.x'), Buffer.from([0])]] }),
      ],
    };
    const bytes = encodeTreeNode(node);
    const back = decodeTreeNode(decodeCbor(bytes, 't'), 't');
    assert.ok(Buffer.from(encodeTreeNode(back)).equals(Buffer.from(bytes)), 'decode then encode gives the same bytes');
  });

  it('rejects hostile names and paths, unsorted entries and inconsistent sizes', () => {
    const bad: [string, unknown][] = [
      ['dot-dot', { entries: [{ ...encodeable(entry('..')) }] }],
      ['slash', { entries: [{ ...encodeable(entry('a/b')) }] }],
      ['empty', { entries: [{ ...encodeable(entry('')) }] }],
      ['nul', { entries: [{ ...encodeable(entry('a\0b')) }] }],
      ['unsorted', { entries: [encodeable(entry('b')), encodeable(entry('a'))] }],
      ['duplicate', { entries: [encodeable(entry('a')), encodeable(entry('a'))] }],
      ['link escape', { entries: [encodeable(entry('h', { type: 'hardlink', data: undefined, link: Buffer.from('../etc/passwd') }))] }],
      ['size mismatch', { entries: [encodeable(entry('a', { data: Buffer.from('abc'), size: 2 }))] }],
      ['no content', { entries: [encodeable(entry('a', { data: undefined }))] }],
      ['neither', { other: 1 }],
    ];
    for (const [what, node] of bad) {
      assert.throws(() => roundTrip(node), (e: unknown) => code(e) === 'CORRUPT', what);
    }
  });
});

/** The CBOR form of an entry, as encodeTreeNode writes it. */
function encodeable(e: TreeEntry): Record<string, unknown> {
  return (decodeCbor(encodeTreeNode({ kind: 'leaf', entries: [e] }), 'x') as { entries: Record<string, unknown>[] }).entries[0]!;
}

describe('large directories', () => {
  it('split into pages; lookups load one page; a new name changes one page', async () => {
    const names = Array.from({ length: 3 * LEAF_MAX }, (_, i) => `file-${String(i).padStart(6, '0')}`);
    const store = new Map<string, TreeNode>();
    const put = async (n: TreeNode) => {
      const bytes = encodeTreeNode(n);
      const nid = hmacSha256(key, bytes).toString('hex');
      store.set(nid, decodeTreeNode(decodeCbor(bytes, 't'), 't'));
      return nid;
    };
    let loads = 0;
    const load = async (nid: string) => {
      loads++;
      return store.get(nid)!;
    };
    const root = await writeDirectory(names.map((n) => entry(n)), key, put);
    assert.equal(store.get(root)!.kind, 'index');
    const seen: string[] = [];
    for await (const e of directoryEntries(load, root)) seen.push(e.name.toString());
    assert.deepEqual(seen, names);
    loads = 0;
    assert.equal((await findEntry(load, root, Buffer.from('file-007777')))?.name.toString(), 'file-007777');
    assert.equal(loads, 2, 'root and one page');
    assert.equal(await findEntry(load, root, Buffer.from('zzz')), undefined);
    const before = new Set(store.keys());
    await writeDirectory([...names.slice(0, 5001), 'file-005000x', ...names.slice(5001)].map((n) => entry(n)), key, put);
    const added = [...store.keys()].filter((k) => !before.has(k));
    assert.equal(added.length, 2, 'one leaf page and the root');
  });
});
