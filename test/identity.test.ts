/**
 * Identities and recipient stanzas through the library (format-spec/sharing.md
 * sections 2 and 3): X25519 against RFC 7748, bech32m against BIP 350, the
 * public-key text, the identity file (passphrase, tampering, hostile KDF,
 * atomic no-overwrite writes) and stanza wrap/unwrap, plus the vectors in
 * fixtures/vectors-identity.json, recomputed by the library and independently
 * from the spec's steps with @noble primitives.
 */
import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { gcm } from '@noble/ciphers/aes.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { decode as cborxDecode } from 'cbor-x';
import fc from 'fast-check';
import { sealAead } from '../lib/crypto/aead.js';
import { bech32mDecode, bech32mDecodeWords, bech32mEncode } from '../lib/crypto/bech32m.js';
import {
  generateIdentity,
  identityFromSecret,
  loadIdentity,
  parseIdentity,
  publicKeyText,
  readIdentityFile,
  saveIdentity,
  sealIdentity,
  unlockIdentity,
} from '../lib/crypto/identity.js';
import { deriveKey } from '../lib/crypto/kdf.js';
import { decodePublicKey, encodePublicKey } from '../lib/crypto/pubkey.js';
import { Stanza, stanzaFromCbor, stanzaToCbor, unwrapFileKey, wrapFileKey } from '../lib/crypto/stanza.js';
import { publicKeyOf, sharedSecret } from '../lib/crypto/x25519.js';
import { ObnamError } from '../lib/errors.js';
import { decodeCbor, encodeCbor } from '../lib/format/cbor.js';
import { tempDir } from './helpers/tmp.js';
import { computeIdentityVectors, IDENTITY_VECTORS_FILE } from './helpers/vectors-identity.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const CHEAP = { cost: { logN: 10, r: 8, p: 1 } };
const ctx = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

function code(c: string) {
  return (e: unknown) => e instanceof ObnamError && e.code === c;
}

describe('X25519', () => {
  it('matches RFC 7748 section 6.1', () => {
    const a = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const b = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    assert.equal(Buffer.from(publicKeyOf(a)).toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    assert.equal(Buffer.from(publicKeyOf(b)).toString('hex'), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const k = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    assert.equal(Buffer.from(sharedSecret(a, publicKeyOf(b))!).toString('hex'), k);
    assert.equal(Buffer.from(sharedSecret(b, publicKeyOf(a))!).toString('hex'), k);
  });
  it('matches RFC 7748 section 5.2 (the top bit of u is masked) and @noble/curves on random and non-canonical inputs', () => {
    const k = hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4');
    const u = hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c');
    assert.equal(Buffer.from(sharedSecret(k, u)!).toString('hex'), 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
    for (let i = 0; i < 50; i++) {
      const s = generateIdentity().secret;
      const peer = new Uint8Array(randomBytes(32));
      if (i % 2) peer[31]! |= 0x80; // the top bit, which X25519 ignores
      if (i % 5 === 0) peer.set(hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f').map((b, j) => (j === 0 ? b + (i % 3) : b)));
      const mine = sharedSecret(s, peer);
      let theirs: Uint8Array | undefined;
      try {
        theirs = x25519.getSharedSecret(s, peer);
      } catch {
        theirs = undefined;
      }
      assert.equal(mine && Buffer.from(mine).toString('hex'), theirs && Buffer.from(theirs).toString('hex'), `input ${i}`);
      assert.equal(Buffer.from(publicKeyOf(s)).toString('hex'), Buffer.from(x25519.getPublicKey(s)).toString('hex'));
    }
  });
  it('refuses low-order points (all-zero shared secret)', () => {
    const s = generateIdentity().secret;
    const one = new Uint8Array(32);
    one[0] = 1;
    assert.equal(sharedSecret(s, new Uint8Array(32)), undefined);
    assert.equal(sharedSecret(s, one), undefined);
  });
});

describe('bech32m checksum (BIP 350 vectors)', () => {
  const valid = [
    'A1LQFN3A',
    'a1lqfn3a',
    'an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6',
    'abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx',
    '11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8',
    'split1checkupstagehandshakeupstreamerranterredcaperredlc445v',
    '?1v759aa',
  ];
  const invalid = [
    '\x201xj0phk',
    '\x7f1g6xzxy',
    '\x801vctc34',
    'an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4',
    'qyrz8wqd2c9m',
    '1qyrz8wqd2c9m',
    'y1b0jsk6g',
    'lt1igcx5c0',
    'in1muywd',
    'mm1crxm3i',
    'au1s5cgom',
    'M1VUXWEZ',
    '16plkw9',
    '1p2gdwpf',
    // bech32 (BIP 173, constant 1) strings are not bech32m
    'a12uel5l',
    'abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw',
  ];
  for (const s of valid) it(`accepts ${JSON.stringify(s)}`, () => void bech32mDecodeWords(s));
  for (const s of invalid) it(`refuses ${JSON.stringify(s)}`, () => assert.throws(() => bech32mDecodeWords(s)));
  it('round-trips bytes', () => {
    const b = new Uint8Array([0, 1, 2, 254, 255, 128, 7]);
    const d = bech32mDecode(bech32mEncode('test', b));
    assert.equal(d.hrp, 'test');
    assert.deepEqual(d.bytes, b);
  });
});

describe('public key text', () => {
  it('is obnam-pk1 and 58 characters, and decodes to the key', () => {
    for (let i = 0; i < 20; i++) {
      const id = generateIdentity();
      const t = encodePublicKey(id.public);
      assert.match(t, /^obnam-pk1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/);
      assert.deepEqual(decodePublicKey(t), id.public);
      assert.deepEqual(decodePublicKey(t.toUpperCase()), id.public);
      assert.deepEqual(decodePublicKey(`  ${t}\n`), id.public);
    }
  });
  it('detects every single-character change and refuses mixed case', () => {
    const t = encodePublicKey(generateIdentity().public);
    const alphabet = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
    for (let i = 9; i < t.length; i++) {
      const other = alphabet[(alphabet.indexOf(t[i]!) + 1 + (i % 31)) % 32]!;
      const bad = t.slice(0, i) + other + t.slice(i + 1);
      assert.throws(() => decodePublicKey(bad), code('USAGE'), bad);
    }
    assert.throws(() => decodePublicKey(t.slice(0, -1)), code('USAGE'));
    assert.throws(() => decodePublicKey(t + 'q'), code('USAGE'));
    assert.throws(() => decodePublicKey('O' + t.slice(1)), code('USAGE'));
  });
  it('refuses other prefixes and lengths', () => {
    const pk = generateIdentity().public;
    assert.throws(() => decodePublicKey(bech32mEncode('age', pk)), /starts with age1/);
    assert.throws(() => decodePublicKey(bech32mEncode('obnam-pk', pk.subarray(0, 31))), /31 bytes/);
    assert.throws(() => decodePublicKey(bech32mEncode('obnam-pk', new Uint8Array(33))), /33 bytes/);
    assert.throws(() => decodePublicKey(''), code('USAGE'));
  });
});

describe('identity file', () => {
  it('opens with its passphrase and gives the same key pair', async () => {
    const id = generateIdentity();
    const bytes = await sealIdentity(id, ctx('correct horse'), CHEAP);
    const parsed = parseIdentity(bytes);
    assert.deepEqual(parsed.public, id.public);
    const back = await unlockIdentity(parsed, ctx('correct horse'));
    assert.deepEqual(back.secret, id.secret);
    assert.deepEqual(back.public, id.public);
  });
  it('refuses a wrong passphrase (BAD_PASSPHRASE)', async () => {
    const bytes = await sealIdentity(generateIdentity(), ctx('right'), CHEAP);
    await assert.rejects(unlockIdentity(parseIdentity(bytes), ctx('wrong')), code('BAD_PASSPHRASE'));
  });
  it('binds the public key: a file with another public key does not open', async () => {
    const bytes = await sealIdentity(generateIdentity(), ctx('pw'), CHEAP);
    const m = decodeCbor(bytes, 't') as Record<string, never>;
    const swapped = encodeCbor({ ...m, public: generateIdentity().public });
    await assert.rejects(unlockIdentity(parseIdentity(swapped), ctx('pw')), code('BAD_PASSPHRASE'));
  });
  it('refuses a secret key that does not belong to the public key (CORRUPT)', async () => {
    const a = generateIdentity();
    const b = generateIdentity();
    const parsed = parseIdentity(await sealIdentity(a, ctx('pw'), CHEAP));
    const kek = await deriveKey(ctx('pw'), parsed.kdf);
    const aad = Buffer.concat([Buffer.from('obnam-identity'), Buffer.from([1]), a.public]);
    const forged = { ...parsed, sealedSecret: sealAead(kek, b.secret, aad) };
    await assert.rejects(unlockIdentity(forged, ctx('pw')), /does not belong to its public key/);
  });
  it('refuses damaged, foreign, newer and hostile files before any key derivation', async () => {
    const bytes = await sealIdentity(generateIdentity(), ctx('pw'), CHEAP);
    const m = decodeCbor(bytes, 't') as Record<string, unknown>;
    const kdf = m.kdf as Record<string, unknown>;
    assert.throws(() => parseIdentity(new Uint8Array([1, 2, 3])), code('CORRUPT'));
    assert.throws(() => parseIdentity(bytes.subarray(0, bytes.length - 5)), code('CORRUPT'));
    assert.throws(() => parseIdentity(encodeCbor({ ...m, type: 'obnam-key' } as never)), /not an obnam identity/);
    assert.throws(() => parseIdentity(encodeCbor({ ...m, version: 2 } as never)), code('UNSUPPORTED_VERSION'));
    assert.throws(() => parseIdentity(encodeCbor({ ...m, public: new Uint8Array(31) } as never)), code('CORRUPT'));
    assert.throws(() => parseIdentity(encodeCbor({ ...m, kdf: { ...kdf, algorithm: 'argon2id' } } as never)), code('UNSUPPORTED_VERSION'));
    assert.throws(() => parseIdentity(new Uint8Array(64 * 1024 + 1)), code('CORRUPT'));
    // a cost no reader accepts (2^30 blocks) is refused at once, not computed
    const hostile = parseIdentity(encodeCbor({ ...m, kdf: { ...kdf, log_n: 30 } } as never));
    const t0 = process.hrtime.bigint();
    await assert.rejects(unlockIdentity(hostile, ctx('pw')), code('CORRUPT'));
    assert.ok(process.hrtime.bigint() - t0 < 5_000_000_000n);
  });
  it('is written 0600 in a 0700 directory, never overwritten, replaced only with --force keeping the old one', async () => {
    const tmp = await tempDir();
    try {
      const file = path.join(tmp.path, 'cfg', 'obnam', 'identity');
      await assert.rejects(readIdentityFile(file), code('NO_IDENTITY'));
      const first = generateIdentity();
      assert.deepEqual(await saveIdentity(file, first, 'pw1', CHEAP), {});
      assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
      assert.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700);
      const firstBytes = await fs.readFile(file);
      await assert.rejects(saveIdentity(file, generateIdentity(), 'pw2', CHEAP), code('IDENTITY_EXISTS'));
      assert.deepEqual(await fs.readFile(file), firstBytes);
      const second = generateIdentity();
      const { replaced } = await saveIdentity(file, second, 'pw2', { ...CHEAP, force: true });
      assert.ok(replaced && /identity\.replaced-\d{8}T\d{6}Z$/.test(replaced), String(replaced));
      assert.deepEqual(await fs.readFile(replaced), firstBytes);
      assert.deepEqual((await loadIdentity(file, 'pw2')).public, second.public);
      assert.deepEqual((await loadIdentity(replaced, 'pw1')).public, first.public);
      assert.deepEqual((await fs.readdir(path.dirname(file))).sort(), ['identity', path.basename(replaced)]);
    } finally {
      await tmp.remove();
    }
  });
  it('two concurrent creations: exactly one wins, the file is whole', async () => {
    const tmp = await tempDir();
    try {
      const file = path.join(tmp.path, 'identity');
      const ids = [generateIdentity(), generateIdentity(), generateIdentity()];
      const results = await Promise.allSettled(ids.map((id) => saveIdentity(file, id, 'pw', CHEAP)));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(code('IDENTITY_EXISTS')(r.reason));
      const winner = ids[results.findIndex((r) => r.status === 'fulfilled')]!;
      assert.deepEqual((await loadIdentity(file, 'pw')).public, winner.public);
      assert.deepEqual(await fs.readdir(tmp.path), ['identity']);
    } finally {
      await tmp.remove();
    }
  });
});

describe('recipient stanzas', () => {
  const fileKey = new Uint8Array(32).fill(0x5a);
  const c = ctx('obnam-test');
  it('x25519: only the recipient, under the same context, unwraps', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const s = wrapFileKey(fileKey, bob.public, c);
    assert.equal(s.type, 'x25519');
    assert.equal(s.body.length, 48);
    assert.deepEqual(unwrapFileKey(s, bob, c), fileKey);
    assert.equal(unwrapFileKey(s, alice, c), undefined);
    assert.equal(unwrapFileKey(s, bob, ctx('obnam-other')), undefined);
    const s2 = wrapFileKey(fileKey, bob.public, c);
    assert.notDeepEqual(s2.epk, s.epk, 'a fresh ephemeral key per stanza');
  });
  it('x25519-auth: also needs the right sender', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const carol = generateIdentity();
    const s = wrapFileKey(fileKey, bob.public, c, { sender: alice });
    assert.equal(s.type, 'x25519-auth');
    assert.deepEqual(unwrapFileKey(s, bob, c, alice.public), fileKey);
    assert.equal(unwrapFileKey(s, bob, c, carol.public), undefined);
    assert.equal(unwrapFileKey(s, bob, c), undefined);
    assert.equal(unwrapFileKey(s, carol, c, alice.public), undefined);
    // carol cannot make a stanza that opens for bob as alice's
    const forged = wrapFileKey(fileKey, bob.public, c, { sender: { secret: carol.secret, public: alice.public } });
    assert.equal(unwrapFileKey(forged, bob, c, alice.public), undefined);
  });
  it('a changed epk, body or type does not open', () => {
    const bob = generateIdentity();
    const s = wrapFileKey(fileKey, bob.public, c);
    for (const field of ['epk', 'body'] as const) {
      for (const i of [0, 13, 31]) {
        const t: Stanza = { ...s, [field]: new Uint8Array(s[field]) };
        t[field][i]! ^= 1;
        assert.equal(unwrapFileKey(t, bob, c), undefined, `${field}[${i}]`);
      }
    }
    assert.equal(unwrapFileKey({ ...s, type: 'x25519-auth' }, bob, c, generateIdentity().public), undefined);
  });
  it('refuses low-order recipient keys', () => {
    const one = new Uint8Array(32);
    one[0] = 1;
    assert.throws(() => wrapFileKey(fileKey, new Uint8Array(32), c), code('USAGE'));
    assert.throws(() => wrapFileKey(fileKey, one, c), code('USAGE'));
  });
  it('CBOR round trip; malformed stanzas are CORRUPT', () => {
    const s = wrapFileKey(fileKey, generateIdentity().public, c);
    assert.deepEqual(stanzaFromCbor(decodeCbor(encodeCbor(stanzaToCbor(s)), 't')), s);
    const m = stanzaToCbor(s);
    for (const bad of [{ ...m, type: 'scrypt' }, { ...m, epk: new Uint8Array(31) }, { ...m, body: new Uint8Array(47) }, { type: 'x25519' }, 'x']) {
      assert.throws(() => stanzaFromCbor(bad), code('CORRUPT'));
    }
  });
});

describe('identity test vectors (fixtures/vectors-identity.json)', () => {
  const stored = JSON.parse(readFileSync(IDENTITY_VECTORS_FILE, 'utf8'));
  it('are what the code computes', async () => {
    assert.deepEqual(await computeIdentityVectors(), stored);
  });
  it('follow from the spec, computed independently', () => {
    const v = stored;
    const pk = x25519.getPublicKey(hex(v.identity.secret));
    assert.equal(Buffer.from(pk).toString('hex'), v.identity.public);
    assert.equal(v.identity.public_text.length, 67);
    const s = v.stanza_x25519;
    const epk = x25519.getPublicKey(hex(s.ephemeral_secret));
    assert.equal(Buffer.from(epk).toString('hex'), s.epk);
    const ss = x25519.getSharedSecret(hex(s.ephemeral_secret), pk);
    assert.equal(Buffer.from(ss).toString('hex'), s.shared_secret);
    const wk = hkdf(sha256, ss, new Uint8Array([...epk, ...pk]), new TextEncoder().encode('obnam-stanza x25519'), 32);
    assert.equal(Buffer.from(wk).toString('hex'), s.wrap_key);
    const body = gcm(wk, new Uint8Array(12), new TextEncoder().encode(s.context)).encrypt(hex(s.file_key));
    assert.equal(Buffer.from(body).toString('hex'), s.body);
    assert.deepEqual(cborxDecode(Buffer.from(s.cbor, 'hex')), { type: 'x25519', epk: Buffer.from(epk), body: Buffer.from(body) });

    const a = v.stanza_x25519_auth;
    const spk = x25519.getPublicKey(hex(a.sender_secret));
    const ss2 = x25519.getSharedSecret(hex(a.sender_secret), pk);
    assert.equal(Buffer.from(ss2).toString('hex'), a.sender_shared_secret);
    const wk2 = hkdf(sha256, new Uint8Array([...ss, ...ss2]), new Uint8Array([...epk, ...pk, ...spk]), new TextEncoder().encode('obnam-stanza x25519-auth'), 32);
    assert.equal(Buffer.from(wk2).toString('hex'), a.wrap_key);
    const body2 = gcm(wk2, new Uint8Array(12), new TextEncoder().encode(s.context)).encrypt(hex(s.file_key));
    assert.equal(Buffer.from(body2).toString('hex'), a.body);

    const f = cborxDecode(Buffer.from(v.identity_file.bytes, 'hex')) as Record<string, any>;
    assert.equal(f.type, 'obnam-identity');
    assert.equal(f.version, 1);
    assert.deepEqual(Buffer.from(f.public), Buffer.from(pk));
    const kek = scryptSync(v.identity_file.passphrase, f.kdf.salt, 32, { N: 2 ** f.kdf.log_n, r: f.kdf.r, p: f.kdf.p });
    const aad = new Uint8Array([...new TextEncoder().encode('obnam-identity'), 1, ...pk]);
    const secret = gcm(kek, f.secret.subarray(0, 12), aad).decrypt(f.secret.subarray(12));
    assert.equal(Buffer.from(secret).toString('hex'), v.identity.secret);
  });
  it('the library opens the stored stanzas and identity file', async () => {
    const v = stored;
    const me = identityFromSecret(hex(v.identity.secret));
    const c2 = ctx(v.stanza_x25519.context);
    const plain = stanzaFromCbor(decodeCbor(hex(v.stanza_x25519.cbor), 't'));
    assert.equal(Buffer.from(unwrapFileKey(plain, me, c2)!).toString('hex'), v.stanza_x25519.file_key);
    const auth = stanzaFromCbor(decodeCbor(hex(v.stanza_x25519_auth.cbor), 't'));
    assert.equal(Buffer.from(unwrapFileKey(auth, me, c2, hex(v.stanza_x25519_auth.sender_public))!).toString('hex'), v.stanza_x25519.file_key);
    const opened = await unlockIdentity(parseIdentity(hex(v.identity_file.bytes)), ctx(v.identity_file.passphrase));
    assert.equal(publicKeyText(opened), v.identity.public_text);
    assert.equal(encodePublicKey(decodePublicKey(v.stanza_x25519_auth.sender_public_text)), v.stanza_x25519_auth.sender_public_text);
  });
});

describe('hostile input (property tests)', () => {
  const typed = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof ObnamError)) throw e;
    }
  };
  it('identity files, public keys and stanzas: an ObnamError or a value, never another exception', async () => {
    const valid = await sealIdentity(generateIdentity(), ctx('pw'), CHEAP);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => typed(() => parseIdentity(b))),
      { numRuns: 2000 },
    );
    // mutations of a valid file: flipped and truncated bytes
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 }), fc.nat(valid.length), (i, x, cut) => {
        const b = new Uint8Array(valid);
        b[i]! ^= x;
        typed(() => parseIdentity(b));
        typed(() => parseIdentity(valid.subarray(0, cut)));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (s) => {
        try {
          assert.equal(decodePublicKey(s).length, 32);
        } catch (e) {
          assert.ok(code('USAGE')(e), String(e));
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.anything(), (v) => typed(() => stanzaFromCbor(v))),
      { numRuns: 1000 },
    );
  });
});
