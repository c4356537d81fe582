/**
 * node dist/bench/identity.js: what identities and recipient stanzas cost.
 * Unlocking an identity file at the default KDF cost (once per command), and
 * stanza wrap and unwrap per second, which bound how long listing a shared
 * repository takes (each reader tries every stanza of every snapshot: one
 * X25519 and one HKDF each, format-spec/sharing.md 3.3 and 10.1).
 */
import { generateIdentity, parseIdentity, sealIdentity, unlockIdentity } from '../lib/crypto/identity.js';
import { unwrapFileKey, wrapFileKey } from '../lib/crypto/stanza.js';

function perSecond(n: number, f: () => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const me = generateIdentity();
const other = generateIdentity();
const key = new Uint8Array(32).fill(1);
const ctx = new Uint8Array(Buffer.from('bench'));
const pass = Buffer.from('bench passphrase');

const t0 = process.hrtime.bigint();
const file = parseIdentity(await sealIdentity(me, pass));
const sealMs = Number(process.hrtime.bigint() - t0) / 1e6;
const t1 = process.hrtime.bigint();
await unlockIdentity(file, pass);
const unlockMs = Number(process.hrtime.bigint() - t1) / 1e6;

const stanza = wrapFileKey(key, me.public, ctx);
const auth = wrapFileKey(key, me.public, ctx, { sender: other });
const rows = {
  'identity new (seal, default KDF cost), ms': Math.round(sealMs),
  'identity unlock (default KDF cost), ms': Math.round(unlockMs),
  'x25519 wrap per second': Math.round(perSecond(500, () => wrapFileKey(key, me.public, ctx))),
  'x25519 unwrap per second (for me)': Math.round(perSecond(500, () => unwrapFileKey(stanza, me, ctx))),
  'x25519 unwrap per second (not for me)': Math.round(perSecond(500, () => unwrapFileKey(stanza, other, ctx))),
  'x25519-auth unwrap per second': Math.round(perSecond(500, () => unwrapFileKey(auth, me, ctx, other.public))),
};
for (const [k, v] of Object.entries(rows)) console.log(`${k.padEnd(42)} ${v}`);
