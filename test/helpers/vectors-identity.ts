/**
 * Test vectors of identities and recipient stanzas (format-spec/sharing.md
 * section 14), computed by the library from fixed inputs. Run this module to
 * write fixtures/vectors-identity.json (only when the format changes, with a
 * version bump: the file is the contract); identity.test.ts recomputes it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { identityFromSecret, publicKeyText, sealIdentity } from '../../lib/crypto/identity.js';
import { stanzaToCbor, stanzaWrapKey, wrapFileKey } from '../../lib/crypto/stanza.js';
import { publicKeyOf, sharedSecret } from '../../lib/crypto/x25519.js';
import { encodeCbor } from '../../lib/format/cbor.js';
import { ROOT } from './cli.js';
import { prngBytes } from './prng.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export const VECTOR_PASSPHRASE = 'vector passphrase';
export const VECTOR_CONTEXT = 'obnam-vector-context';

export async function computeIdentityVectors(): Promise<Record<string, unknown>> {
  const recipient = identityFromSecret(prngBytes('vector identity secret', 32));
  const sender = identityFromSecret(prngBytes('vector sender secret', 32));
  const fileKey = prngBytes('vector file key', 32);
  const ephemeral = prngBytes('vector ephemeral', 32);
  const context = Buffer.from(VECTOR_CONTEXT, 'latin1');
  const file = await sealIdentity(recipient, Buffer.from(VECTOR_PASSPHRASE, 'utf8'), {
    cost: { logN: 10, r: 8, p: 1 },
    salt: prngBytes('vector identity salt', 32),
    nonce: prngBytes('vector identity nonce', 12),
    created: 1700000000,
  });
  const epk = publicKeyOf(ephemeral);
  const ssE = sharedSecret(ephemeral, recipient.public)!;
  const ssS = sharedSecret(sender.secret, recipient.public)!;
  const plain = wrapFileKey(fileKey, recipient.public, context, { ephemeralSecret: ephemeral });
  const auth = wrapFileKey(fileKey, recipient.public, context, { ephemeralSecret: ephemeral, sender });
  return {
    identity: { secret: hex(recipient.secret), public: hex(recipient.public), public_text: publicKeyText(recipient) },
    identity_file: { passphrase: VECTOR_PASSPHRASE, bytes: hex(file) },
    stanza_x25519: {
      file_key: hex(fileKey),
      ephemeral_secret: hex(ephemeral),
      context: VECTOR_CONTEXT,
      epk: hex(epk),
      shared_secret: hex(ssE),
      wrap_key: hex(stanzaWrapKey('x25519', ssE, Buffer.concat([epk, recipient.public]))),
      body: hex(plain.body),
      cbor: hex(encodeCbor(stanzaToCbor(plain))),
    },
    stanza_x25519_auth: {
      sender_secret: hex(sender.secret),
      sender_public: hex(sender.public),
      sender_public_text: publicKeyText(sender),
      sender_shared_secret: hex(ssS),
      wrap_key: hex(stanzaWrapKey('x25519-auth', Buffer.concat([ssE, ssS]), Buffer.concat([epk, recipient.public, sender.public]))),
      body: hex(auth.body),
      cbor: hex(encodeCbor(stanzaToCbor(auth))),
    },
  };
}

export const IDENTITY_VECTORS_FILE = path.join(ROOT, 'fixtures', 'vectors-identity.json');

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(IDENTITY_VECTORS_FILE, JSON.stringify(await computeIdentityVectors(), null, 2) + '\n');
  console.log(`wrote ${IDENTITY_VECTORS_FILE}`);
}
