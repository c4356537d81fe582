/**
 * Share and standing-grant objects (format-spec/sharing.md 9.1, 9.2) through
 * the library: who opens them (grantee and owner for a share, only the owner
 * for a grant), a forged owner, an object moved to another id, damaged and
 * malformed plaintexts (CORRUPT, never a crash), the latest-state rule of
 * grants, and the share and grant vectors of fixtures/vectors-v3-objects.json
 * checked independently from the spec's steps with @noble primitives.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gcm } from '@noble/ciphers/aes.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { decode as cborxDecode } from 'cbor-x';
import fc from 'fast-check';
import { generateIdentity, Identity } from '../lib/crypto/identity.js';
import { ObnamError } from '../lib/errors.js';
import { CborValue, decodeCbor, encodeCbor } from '../lib/format/cbor.js';
import {
  currentGrantees,
  Grant,
  latestGrants,
  makeGrantObject,
  makeShareObject,
  newShareId,
  openGrantObject,
  openShareObject,
  sealedObjectOwner,
} from '../lib/format/share.js';
import { V3_OBJECT_VECTORS_FILE } from './helpers/vectors-v3-objects.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const text = (s: string) => new TextEncoder().encode(s);
const code = (c: string) => (e: unknown) => e instanceof ObnamError && e.code === c;
const randomKey = () => new Uint8Array(Buffer.from(newShareId(), 'hex'));

function edited(bytes: Uint8Array, field: string, value: CborValue | undefined): Uint8Array {
  const m = decodeCbor(bytes, 't') as Record<string, CborValue | undefined>;
  m[field] = value;
  return encodeCbor(m);
}

function setup() {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const carol = generateIdentity();
  const snaps = [
    { id: newShareId(), key: randomKey() },
    { id: newShareId(), key: randomKey() },
  ];
  const id = newShareId();
  const plain = makeShareObject(id, alice, { publicKey: bob.public, name: 'bob' }, snaps, { sec: 1700000000, nsec: 7 });
  return { alice, bob, carol, snaps, id, plain };
}

describe('share objects', () => {
  it('open for the grantee and for the owner, with the snapshot keys; not for anyone else', () => {
    const { alice, bob, carol, snaps, id, plain } = setup();
    for (const who of [bob, alice]) {
      const s = openShareObject(id, plain, who)!;
      assert.ok(s, 'opens');
      assert.deepEqual(s.snapshots, snaps);
      assert.deepEqual(s.owner, alice.public);
      assert.deepEqual(s.grantee, bob.public);
      assert.equal(s.granteeName, 'bob');
      assert.deepEqual(s.created, { sec: 1700000000, nsec: 7 });
    }
    assert.equal(openShareObject(id, plain, carol), undefined);
    assert.deepEqual(sealedObjectOwner('share', id, plain), alice.public);
  });
  it('a share claiming another owner does not open (x25519-auth binds the sender)', () => {
    const { bob, carol, id, plain } = setup();
    assert.equal(openShareObject(id, edited(plain, 'owner', carol.public), bob), undefined);
    // carol writing a share in alice's name: her stanzas do not open as alice's.
    const alice2 = generateIdentity();
    const forged = makeShareObject(id, carol, { publicKey: bob.public, name: 'bob' }, [{ id: newShareId(), key: randomKey() }]);
    assert.equal(openShareObject(id, edited(forged, 'owner', alice2.public), bob), undefined);
  });
  it('moved to another id, it does not open', () => {
    const { bob, plain } = setup();
    assert.equal(openShareObject(newShareId(), plain, bob), undefined);
  });
  it('a damaged body is CORRUPT; malformed plaintexts are CORRUPT', () => {
    const { bob, id, plain } = setup();
    const m = decodeCbor(plain, 't') as Record<string, any>;
    const body = new Uint8Array(m.body);
    body[body.length - 1]! ^= 1;
    assert.throws(() => openShareObject(id, edited(plain, 'body', body), bob), code('CORRUPT'));
    const bad: [string, CborValue | undefined][] = [
      ['owner', new Uint8Array(31)],
      ['owner', undefined],
      ['recipients', [m.recipients[0]]],
      ['recipients', [m.recipients[0], m.recipients[1], m.recipients[1]]],
      ['recipients', [{ ...m.recipients[0], type: 'x25519' }, m.recipients[1]]],
      ['recipients', 'x'],
      ['body', 'x'],
    ];
    for (const [field, value] of bad) {
      assert.throws(() => openShareObject(id, edited(plain, field, value), bob), code('CORRUPT'), field);
    }
    for (let n = 0; n < plain.length; n += 7) {
      assert.throws(() => openShareObject(id, plain.subarray(0, n), bob), code('CORRUPT'), `truncated to ${n}`);
    }
    fc.assert(
      fc.property(fc.nat(plain.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const b = new Uint8Array(plain);
        b[at]! ^= x;
        try {
          openShareObject(id, b, bob);
        } catch (e) {
          assert.ok(e instanceof ObnamError, String(e));
        }
      }),
      { numRuns: 200 },
    );
  });
  it('a well-sealed body of the wrong shape is CORRUPT', () => {
    // The owner is authenticated but still untrusted input: an empty snapshot list, a short key.
    const { alice, bob } = setup();
    const id = newShareId();
    assert.throws(() => makeShareObject(id, alice, { publicKey: bob.public, name: 'bob' }, []), code('INTERNAL'));
    assert.throws(() => makeShareObject(id, alice, { publicKey: bob.public, name: 'Bob' }, [{ id, key: randomKey() }]), code('INTERNAL'));
  });
});

function grant(owner: Identity, host: string, grantee: Identity, name: string, state: 'granted' | 'withdrawn', sec: number, nsec = 0, id = newShareId()) {
  const plain = makeGrantObject(id, owner, { host, grantee: { publicKey: grantee.public, name }, state, created: { sec, nsec } });
  return { id, plain };
}

describe('grant objects', () => {
  it('only the owner opens them', () => {
    const { alice, bob, carol } = setup();
    const g = grant(alice, 'laptop', bob, 'bob', 'granted', 1700000000);
    const opened = openGrantObject(g.id, g.plain, alice)!;
    assert.equal(opened.host, 'laptop');
    assert.equal(opened.state, 'granted');
    assert.equal(opened.granteeName, 'bob');
    assert.deepEqual(opened.grantee, bob.public);
    assert.equal(openGrantObject(g.id, g.plain, bob), undefined);
    assert.equal(openGrantObject(g.id, g.plain, carol), undefined);
    assert.equal(openGrantObject(newShareId(), g.plain, alice), undefined);
    assert.deepEqual(sealedObjectOwner('grant', g.id, g.plain), alice.public);
    // A grant claiming alice as owner, made by carol, does not open for alice.
    const forged = grant(carol, 'laptop', bob, 'bob', 'granted', 1700000000);
    assert.equal(openGrantObject(forged.id, edited(forged.plain, 'owner', alice.public), alice), undefined);
    assert.throws(() => openGrantObject(g.id, edited(g.plain, 'recipients', []), alice), code('CORRUPT'));
  });
  it('the latest grant per (host, grantee) decides; ties go to the greater id', () => {
    const { alice, bob, carol } = setup();
    const open = (g: { id: string; plain: Uint8Array }) => openGrantObject(g.id, g.plain, alice)!;
    const names = (gs: Grant[], host: string) => currentGrantees(gs, host).map((g) => g.name).sort();
    const g1 = open(grant(alice, 'laptop', bob, 'bob', 'granted', 100));
    const w1 = open(grant(alice, 'laptop', bob, 'bob', 'withdrawn', 200));
    const g2 = open(grant(alice, 'laptop', bob, 'bob', 'granted', 200, 1));
    const c1 = open(grant(alice, 'laptop', carol, 'carol', 'granted', 50));
    const d1 = open(grant(alice, 'desktop', bob, 'bob', 'granted', 10));
    assert.deepEqual(names([g1], 'laptop'), ['bob']);
    assert.deepEqual(names([g1, w1], 'laptop'), []);
    assert.deepEqual(names([w1, g1], 'laptop'), []);
    assert.deepEqual(names([g1, w1, g2], 'laptop'), ['bob']);
    assert.deepEqual(names([g1, w1, c1, d1], 'laptop'), ['carol']);
    assert.deepEqual(names([g1, w1, c1, d1], 'desktop'), ['bob']);
    assert.deepEqual(names([g1, w1, c1, d1], 'server'), []);
    assert.equal(latestGrants([g1, w1, c1, d1]).length, 3);
    // Same created time: the greater id wins.
    const lo = open(grant(alice, 'nas', bob, 'bob', 'granted', 300, 0, '1'.repeat(64)));
    const hi = open(grant(alice, 'nas', bob, 'bob', 'withdrawn', 300, 0, 'f'.repeat(64)));
    assert.deepEqual(names([lo, hi], 'nas'), []);
    assert.deepEqual(names([hi, lo], 'nas'), []);
    const hi2 = open(grant(alice, 'nas', bob, 'bob', 'granted', 300, 0, 'f'.repeat(64)));
    const lo2 = open(grant(alice, 'nas', bob, 'bob', 'withdrawn', 300, 0, '1'.repeat(64)));
    assert.deepEqual(names([lo2, hi2], 'nas'), ['bob']);
  });
});

describe('share and grant vectors (fixtures/vectors-v3-objects.json)', () => {
  const stored = JSON.parse(readFileSync(V3_OBJECT_VECTORS_FILE, 'utf8'));
  /** Opens an x25519-auth stanza and an inner envelope from the spec's steps. */
  function openIndependently(kind: 'share' | 'grant', kindCode: number, v: any, recipientSecret: Uint8Array, stanzaIndex: number) {
    const o = cborxDecode(Buffer.from(v.outer_plaintext, 'hex')) as Record<string, any>;
    const id = hex(v.id);
    const owner = x25519.getPublicKey(hex(v.owner_secret));
    assert.deepEqual(new Uint8Array(o.owner), owner);
    const st = o.recipients[stanzaIndex];
    assert.equal(st.type, 'x25519-auth');
    const rpk = x25519.getPublicKey(recipientSecret);
    const epk = new Uint8Array(st.epk);
    const ss = new Uint8Array([...x25519.getSharedSecret(recipientSecret, epk), ...x25519.getSharedSecret(recipientSecret, owner)]);
    const wk = hkdf(sha256, ss, new Uint8Array([...epk, ...rpk, ...owner]), text('obnam-stanza x25519-auth'), 32);
    const context = new Uint8Array([...text(`obnam-${kind}`), 3, ...id]);
    const fileKey = gcm(wk, new Uint8Array(12), context).decrypt(new Uint8Array(st.body));
    assert.equal(Buffer.from(fileKey).toString('hex'), v.file_key);
    const body = new Uint8Array(o.body);
    const aad = new Uint8Array([...text('obnam-inner'), 3, kindCode, ...id]);
    const flagged = gcm(fileKey, body.subarray(0, 12), aad).decrypt(body.subarray(12));
    assert.equal(flagged[0], 0, 'stored raw');
    return cborxDecode(Buffer.from(flagged.subarray(1))) as Record<string, any>;
  }
  it('the share follows from the spec, for the grantee and for the owner', () => {
    const v = stored.share_object;
    for (const [secret, index] of [[hex(v.grantee_secret), 0], [hex(v.owner_secret), 1]] as const) {
      const b = openIndependently('share', 8, v, secret, index);
      assert.deepEqual(b.snapshots, [[Buffer.from(v.snapshot_id, 'hex'), Buffer.from(v.snapshot_key, 'hex')]]);
      assert.deepEqual(new Uint8Array(b.grantee), x25519.getPublicKey(hex(v.grantee_secret)));
      assert.equal(b.grantee_name, v.grantee_name);
      assert.deepEqual(b.created, v.created);
    }
  });
  it('the grant follows from the spec', () => {
    const v = stored.grant_object;
    const b = openIndependently('grant', 9, v, hex(v.owner_secret), 0);
    assert.deepEqual(b, {
      host: v.host,
      grantee: Buffer.from(v.grantee_public, 'hex'),
      grantee_name: v.grantee_name,
      state: v.state,
      created: v.created,
    });
  });
});
