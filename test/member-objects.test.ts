/**
 * The member key set and member objects (format-spec/sharing.md sections 4
 * and 5) through the library: round trip, the wrong identity, every
 * authenticated field bound by the mac, an object moved to another id,
 * truncated, oversized and malformed objects (CORRUPT, never a crash), and the
 * vectors in fixtures/vectors-v3-objects.json, recomputed by the library and
 * independently from the spec's steps with @noble primitives.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gcm } from '@noble/ciphers/aes.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { decode as cborxDecode } from 'cbor-x';
import fc from 'fast-check';
import { generateIdentity } from '../lib/crypto/identity.js';
import { decodeMemberKeySet, encodeMemberKeySet, newMemberKeySet } from '../lib/crypto/memberkeys.js';
import { ObnamError } from '../lib/errors.js';
import { decodeCbor, encodeCbor, CborValue } from '../lib/format/cbor.js';
import {
  checkMemberName,
  decodeMemberObject,
  encodeMemberObject,
  isMemberName,
  MAX_MEMBER_OBJECT_BYTES,
  MemberInfo,
  memberMacValid,
  newMemberId,
  unlockMemberKeys,
} from '../lib/format/member.js';
import { computeV3ObjectVectors, V3_OBJECT_VECTORS_FILE } from './helpers/vectors-v3-objects.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const text = (s: string) => new TextEncoder().encode(s);
const code = (c: string) => (e: unknown) => e instanceof ObnamError && e.code === c;

function fresh(overrides: Partial<MemberInfo> = {}) {
  const identity = generateIdentity();
  const keys = newMemberKeySet();
  const info: MemberInfo = {
    id: newMemberId(),
    name: 'alice',
    publicKey: identity.public,
    canDelete: true,
    created: 1700000000,
    addedBy: '',
    ...overrides,
  };
  return { identity, keys, info, bytes: encodeMemberObject(keys, info) };
}

/** The stored map with one field replaced (or removed, with undefined). */
function edited(bytes: Uint8Array, field: string, value: CborValue | undefined): Uint8Array {
  const m = decodeCbor(bytes, 't') as Record<string, CborValue | undefined>;
  m[field] = value;
  return encodeCbor(m);
}

describe('member key set', () => {
  it('round-trips through CBOR and refuses wrong shapes', () => {
    const k = newMemberKeySet();
    assert.deepEqual(decodeMemberKeySet(decodeCbor(encodeCbor(encodeMemberKeySet(k)), 't')), k);
    const good = encodeMemberKeySet(k);
    assert.throws(() => decodeMemberKeySet({ ...good, auth: new Uint8Array(31) }), code('CORRUPT'));
    assert.throws(() => decodeMemberKeySet({ ...good, members: undefined }), code('CORRUPT'));
    assert.throws(() => decodeMemberKeySet({ ...good, content: 'x' }), code('CORRUPT'));
    assert.throws(() => decodeMemberKeySet({ ...good, version: 2 }), code('UNSUPPORTED_VERSION'));
    assert.throws(() => decodeMemberKeySet([1, 2]), code('CORRUPT'));
  });
  it('four independent random keys', () => {
    const k = newMemberKeySet();
    const all = [k.content, k.chunker, k.members, k.auth].map((b) => Buffer.from(b).toString('hex'));
    assert.equal(new Set(all).size, 4);
    assert.notDeepEqual(newMemberKeySet(), k);
  });
});

describe('member objects', () => {
  it('decode gives the information; the identity opens the keys; the mac verifies', () => {
    const { identity, keys, info, bytes } = fresh({ canDelete: false, addedBy: 'bob.laptop' });
    const obj = decodeMemberObject(info.id, bytes);
    assert.equal(obj.name, 'alice');
    assert.equal(obj.canDelete, false);
    assert.equal(obj.addedBy, 'bob.laptop');
    assert.equal(obj.created, 1700000000);
    assert.deepEqual(obj.publicKey, identity.public);
    assert.deepEqual(unlockMemberKeys(obj, identity), keys);
    assert.equal(memberMacValid(obj, keys.auth), true);
    assert.equal(memberMacValid(obj, newMemberKeySet().auth), false);
  });
  it('does not open with another identity (CORRUPT)', () => {
    const { info, bytes } = fresh();
    assert.throws(() => unlockMemberKeys(decodeMemberObject(info.id, bytes), generateIdentity()), code('CORRUPT'));
  });
  it('a changed name, public key, can_delete, created or added_by fails the mac', () => {
    const { keys, info, bytes } = fresh({ canDelete: false });
    const changes: [string, CborValue][] = [
      ['name', 'mallory'],
      ['public', generateIdentity().public],
      ['can_delete', true],
      ['created', 1700000001],
      ['added_by', 'mallory'],
    ];
    for (const [field, value] of changes) {
      const obj = decodeMemberObject(info.id, edited(bytes, field, value));
      assert.equal(memberMacValid(obj, keys.auth), false, field);
    }
    // Unchanged, it verifies: the test above can fail.
    assert.equal(memberMacValid(decodeMemberObject(info.id, bytes), keys.auth), true);
  });
  it('moved to another id: neither the keys open nor the mac verifies', () => {
    const { identity, keys, bytes } = fresh();
    const obj = decodeMemberObject(newMemberId(), bytes);
    assert.throws(() => unlockMemberKeys(obj, identity), code('CORRUPT'));
    assert.equal(memberMacValid(obj, keys.auth), false);
  });
  it('sealed keys changed or swapped between members do not open (CORRUPT)', () => {
    const a = fresh();
    const b = fresh();
    const swapped = edited(a.bytes, 'keys', decodeMemberObject(b.info.id, b.bytes).sealedKeys);
    assert.throws(() => unlockMemberKeys(decodeMemberObject(a.info.id, swapped), a.identity), code('CORRUPT'));
    const sealed = decodeMemberObject(a.info.id, a.bytes).sealedKeys;
    sealed[20]! ^= 1;
    assert.throws(() => unlockMemberKeys(decodeMemberObject(a.info.id, edited(a.bytes, 'keys', sealed)), a.identity), code('CORRUPT'));
  });
  it('every truncation is CORRUPT', () => {
    const { info, bytes } = fresh();
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => decodeMemberObject(info.id, bytes.subarray(0, n)), code('CORRUPT'), `truncated to ${n}`);
    }
  });
  it('an oversized object is CORRUPT before it is parsed', () => {
    const { info, bytes } = fresh();
    const big = edited(bytes, 'padding', new Uint8Array(MAX_MEMBER_OBJECT_BYTES));
    assert.ok(big.length > MAX_MEMBER_OBJECT_BYTES);
    assert.throws(() => decodeMemberObject(info.id, big), (e) => code('CORRUPT')(e) && /larger than/.test((e as Error).message));
    // With the padding field small, the same object decodes: extra fields are ignored, size is what is refused.
    decodeMemberObject(info.id, edited(bytes, 'padding', new Uint8Array(10)));
  });
  it('malformed fields are CORRUPT, another version UNSUPPORTED_VERSION', () => {
    const { info, bytes, identity } = fresh();
    const stanza = (decodeCbor(bytes, 't') as Record<string, CborValue>).stanza as Record<string, CborValue>;
    const bad: [string, CborValue | undefined][] = [
      ['name', ''],
      ['name', 'Alice'],
      ['name', '-alice'],
      ['name', 'a'.repeat(65)],
      ['name', 7],
      ['public', new Uint8Array(31)],
      ['public', undefined],
      ['can_delete', 1],
      ['created', -1],
      ['created', 'now'],
      ['added_by', 'Bob'],
      ['added_by', undefined],
      ['stanza', { ...stanza, type: 'x25519-auth' }],
      ['stanza', { ...stanza, epk: new Uint8Array(31) }],
      ['stanza', 'x'],
      ['keys', new Uint8Array(20)],
      ['keys', new Uint8Array(2000)],
      ['mac', new Uint8Array(31)],
      ['mac', undefined],
      ['version', '3'],
    ];
    for (const [field, value] of bad) {
      assert.throws(() => decodeMemberObject(info.id, edited(bytes, field, value)), code('CORRUPT'), `${field}=${String(value)}`);
    }
    assert.throws(() => decodeMemberObject(info.id, edited(bytes, 'version', 4)), code('UNSUPPORTED_VERSION'));
    assert.throws(() => decodeMemberObject(info.id, encodeCbor([1, 2, 3])), code('CORRUPT'));
    assert.throws(() => decodeMemberObject('not-an-id', bytes), code('CORRUPT'));
    // The longest valid name and a name with every allowed character decode.
    for (const name of ['a'.repeat(64), '0a._-z9']) {
      const f = fresh({ name });
      assert.equal(decodeMemberObject(f.info.id, f.bytes).name, name);
    }
    void identity;
  });
  it('random bytes and random edits never crash the decoder', () => {
    const { info, bytes } = fresh();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        try {
          decodeMemberObject(info.id, b);
        } catch (e) {
          assert.ok(e instanceof ObnamError, String(e));
        }
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const b = new Uint8Array(bytes);
        b[at]! ^= x;
        try {
          decodeMemberObject(info.id, b);
        } catch (e) {
          assert.ok(e instanceof ObnamError, String(e));
        }
      }),
      { numRuns: 300 },
    );
  });
  it('member names: the rule of 5.1, USAGE for a bad one on a command line', () => {
    assert.equal(isMemberName('alice'), true);
    assert.equal(isMemberName('9lives'), true);
    assert.equal(isMemberName('.alice'), false);
    assert.equal(isMemberName('al ice'), false);
    assert.throws(() => checkMemberName('Alice'), code('USAGE'));
    assert.equal(checkMemberName('carol'), 'carol');
  });
  it('refuses a low-order public key when writing (USAGE)', () => {
    assert.throws(() => fresh({ publicKey: new Uint8Array(32) }), code('USAGE'));
  });
});

describe('v3 object vectors (fixtures/vectors-v3-objects.json)', () => {
  const stored = JSON.parse(readFileSync(V3_OBJECT_VECTORS_FILE, 'utf8'));
  it('are what the code computes', () => {
    assert.deepEqual(computeV3ObjectVectors(), stored);
  });
  it('member key set and member object follow from the spec, computed independently', () => {
    const k = stored.member_key_set;
    assert.deepEqual(cborxDecode(Buffer.from(k.cbor, 'hex')), {
      version: 3,
      content: Buffer.from(k.content, 'hex'),
      chunker: Buffer.from(k.chunker, 'hex'),
      members: Buffer.from(k.members, 'hex'),
      auth: Buffer.from(k.auth, 'hex'),
    });
    const v = stored.member_object;
    const id = hex(v.id);
    const pk = x25519.getPublicKey(hex(v.identity_secret));
    assert.equal(Buffer.from(pk).toString('hex'), v.public);
    const o = cborxDecode(Buffer.from(v.bytes, 'hex')) as Record<string, any>;
    assert.equal(o.version, 3);
    assert.equal(o.name, v.name);
    assert.equal(o.can_delete, v.can_delete);
    assert.equal(o.created, v.created);
    assert.equal(o.added_by, v.added_by);
    // The stanza: x25519 for the member's key, context "obnam-member" || 3 || id.
    const ctx = new Uint8Array([...text('obnam-member'), 3, ...id]);
    const epk = x25519.getPublicKey(hex(v.ephemeral_secret));
    assert.deepEqual(new Uint8Array(o.stanza.epk), epk);
    assert.equal(o.stanza.type, 'x25519');
    const ss = x25519.getSharedSecret(hex(v.identity_secret), epk);
    const wk = hkdf(sha256, ss, new Uint8Array([...epk, ...pk]), text('obnam-stanza x25519'), 32);
    const fileKey = gcm(wk, new Uint8Array(12), ctx).decrypt(new Uint8Array(o.stanza.body));
    assert.equal(Buffer.from(fileKey).toString('hex'), v.file_key);
    // The keys: nonce || AES-GCM(K_m, CBOR(key set), "obnam-member-keys" || 3 || id) || tag.
    const keys = new Uint8Array(o.keys);
    assert.equal(Buffer.from(keys.subarray(0, 12)).toString('hex'), v.nonce);
    const aad = new Uint8Array([...text('obnam-member-keys'), 3, ...id]);
    const plain = gcm(fileKey, keys.subarray(0, 12), aad).decrypt(keys.subarray(12));
    assert.equal(Buffer.from(plain).toString('hex'), k.cbor);
    // The mac over the label, the id and CBOR([name, public, can_delete, created, added_by]).
    const fields = encodeCbor([v.name, pk, v.can_delete, v.created, v.added_by]);
    const mac = hmac(sha256, hex(k.auth), new Uint8Array([...ctx, ...fields]));
    assert.equal(Buffer.from(mac).toString('hex'), v.mac);
    assert.deepEqual(new Uint8Array(o.mac), mac);
  });
});
