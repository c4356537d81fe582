/**
 * Identities (format-spec/sharing.md section 2): an X25519 key pair whose
 * secret key is kept in an identity file, encrypted under a key derived from
 * the member's passphrase with the project's KDF (kdf.ts):
 *
 *   { type: "obnam-identity", version: 1, public: bytes(32),
 *     kdf: { algorithm: "scrypt", log_n, r, p, salt },
 *     secret: nonce || AES-256-GCM(kek, secret key) || tag, created }
 *
 * Associated data of `secret`: "obnam-identity" || byte(1) || public key.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { ObnamError } from '../errors.js';
import { decodeCbor, encodeCbor } from '../format/cbor.js';
import { asBytes, asMap, asText, asUint, fail } from '../format/schema.js';
import { readSmallFile, writePrivateFile } from '../util/private-file.js';
import { openAead, sealAead } from './aead.js';
import { checkKdfParams, DEFAULT_KDF_COST, deriveKey, KdfParams } from './kdf.js';
import { encodePublicKey } from './pubkey.js';
import type { KeyPair } from './stanza.js';
import { newSecretKey, publicKeyOf, X25519_BYTES } from './x25519.js';

export const IDENTITY_FILE_VERSION = 1;
export const IDENTITY_FILE_TYPE = 'obnam-identity';
/** No identity file is anywhere near this large; readers refuse larger ones unread. */
export const MAX_IDENTITY_FILE_BYTES = 64 * 1024;

/** An identity: its secret and public key. */
export type Identity = KeyPair;

/** What scrypt costs for a new identity file (N = 2^logN, r, p). */
export interface IdentityKdfCost {
  logN: number;
  r: number;
  p: number;
}

/** An identity file as read, before its passphrase is known. */
export interface IdentityFile {
  public: Uint8Array;
  kdf: KdfParams;
  created: number;
  sealedSecret: Uint8Array;
}

export interface SealIdentityOptions {
  /** The scrypt cost (default: that of new key slots). */
  cost?: IdentityKdfCost;
  /** Seconds since the epoch (default: now). */
  created?: number;
  /** Fixed salt and nonce: only for computing test vectors. */
  salt?: Uint8Array;
  nonce?: Uint8Array;
}


export function generateIdentity(): Identity {
  const secret = newSecretKey();
  return { secret, public: publicKeyOf(secret) };
}

/** The identity whose secret key this is. */
export function identityFromSecret(secret: Uint8Array): Identity {
  if (secret.length !== X25519_BYTES) throw new ObnamError('INTERNAL', `a secret key is ${X25519_BYTES} bytes`);
  return { secret: new Uint8Array(secret), public: publicKeyOf(secret) };
}

export function publicKeyText(id: { public: Uint8Array }): string {
  return encodePublicKey(id.public);
}

function aad(version: number, pk: Uint8Array): Uint8Array {
  return new Uint8Array(Buffer.concat([Buffer.from('obnam-identity', 'latin1'), Buffer.from([version]), pk]));
}

/** The bytes of an identity file holding `id`, its secret key encrypted under `passphrase`. */
export async function sealIdentity(id: Identity, passphrase: Uint8Array, opts: SealIdentityOptions = {}): Promise<Uint8Array> {
  const cost = opts.cost ?? { ...DEFAULT_KDF_COST };
  const kdf: KdfParams = { algorithm: 'scrypt', logN: cost.logN, r: cost.r, p: cost.p, salt: opts.salt ?? randomBytes(32) };
  checkKdfParams(kdf);
  const kek = await deriveKey(passphrase, kdf);
  return encodeCbor({
    type: IDENTITY_FILE_TYPE,
    version: IDENTITY_FILE_VERSION,
    public: id.public,
    kdf: { algorithm: kdf.algorithm, log_n: kdf.logN, r: kdf.r, p: kdf.p, salt: kdf.salt },
    secret: sealAead(kek, id.secret, aad(IDENTITY_FILE_VERSION, id.public), opts.nonce),
    created: opts.created ?? Math.floor(Date.now() / 1000),
  });
}

/** Parses an identity file without its passphrase; CORRUPT or UNSUPPORTED_VERSION if it is not one obnam reads. */
export function parseIdentity(bytes: Uint8Array, what = 'identity file'): IdentityFile {
  if (bytes.length > MAX_IDENTITY_FILE_BYTES) fail(what, `larger than ${MAX_IDENTITY_FILE_BYTES} bytes`);
  const m = asMap(decodeCbor(bytes, what), what);
  if (m.type !== IDENTITY_FILE_TYPE) fail(what, 'not an obnam identity');
  const version = asUint(m.version, `${what} version`);
  if (version !== IDENTITY_FILE_VERSION) {
    throw new ObnamError('UNSUPPORTED_VERSION', `${what} has version ${version}, but this obnam reads only version ${IDENTITY_FILE_VERSION}; upgrade obnam`);
  }
  const pk = asBytes(m.public, `${what} public key`);
  if (pk.length !== X25519_BYTES) fail(what, `public key must be ${X25519_BYTES} bytes`);
  const k = asMap(m.kdf, `${what} kdf`);
  const algorithm = asText(k.algorithm, `${what} kdf algorithm`);
  if (algorithm !== 'scrypt') throw new ObnamError('UNSUPPORTED_VERSION', `${what} uses unknown KDF ${algorithm}`);
  const kdf: KdfParams = {
    algorithm,
    logN: asUint(k.log_n, `${what} log_n`),
    r: asUint(k.r, `${what} r`),
    p: asUint(k.p, `${what} p`),
    salt: new Uint8Array(asBytes(k.salt, `${what} salt`)),
  };
  const sealedSecret = asBytes(m.secret, `${what} secret`);
  if (sealedSecret.length !== 12 + X25519_BYTES + 16) fail(what, 'encrypted secret key has the wrong length');
  return { public: new Uint8Array(pk), kdf, created: asUint(m.created, `${what} created`), sealedSecret: new Uint8Array(sealedSecret) };
}

/** The identity in a parsed file: BAD_PASSPHRASE if the passphrase does not open it, CORRUPT if the keys disagree. */
export async function unlockIdentity(file: IdentityFile, passphrase: Uint8Array, what = 'identity file'): Promise<Identity> {
  checkKdfParams(file.kdf);
  const kek = await deriveKey(passphrase, file.kdf);
  let secret: Uint8Array;
  try {
    secret = openAead(kek, file.sealedSecret, aad(IDENTITY_FILE_VERSION, file.public), what);
  } catch {
    throw new ObnamError('BAD_PASSPHRASE', `wrong passphrase for ${what} (or the file was changed)`);
  }
  const id = identityFromSecret(secret);
  if (!Buffer.from(id.public).equals(Buffer.from(file.public))) fail(what, 'its secret key does not belong to its public key');
  return id;
}

// ---- The identity file on disk -------------------------------------------

/** The parsed identity file at `file`; NO_IDENTITY if there is none. */
export async function readIdentityFile(file: string): Promise<IdentityFile> {
  const bytes = await readSmallFile(file, MAX_IDENTITY_FILE_BYTES, 'identity file');
  if (!bytes) throw new ObnamError('NO_IDENTITY', `no identity at ${file}: create one with obnam identity new`);
  return parseIdentity(bytes, `identity file ${file}`);
}

/** Opens the identity at `file` with its passphrase. */
export async function loadIdentity(file: string, passphrase: string | Uint8Array): Promise<Identity> {
  const pass = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : passphrase;
  return unlockIdentity(await readIdentityFile(file), pass, `identity file ${file}`);
}

export interface SaveIdentityOptions extends SealIdentityOptions {
  /** Replace an existing identity, keeping it as identity.replaced-TIMESTAMP beside it. */
  force?: boolean;
}

function utcStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * Writes a new identity file at `file` (mode 0600, atomically). An existing
 * one is never overwritten: IDENTITY_EXISTS, unless `force`, which keeps it
 * under a backup name returned in `replaced`.
 */
export async function saveIdentity(
  file: string,
  id: Identity,
  passphrase: string | Uint8Array,
  opts: SaveIdentityOptions = {},
): Promise<{ replaced?: string }> {
  const pass = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : passphrase;
  const bytes = await sealIdentity(id, pass, opts);
  const name = path.basename(file);
  const { backup } = await writePrivateFile(file, bytes, {
    backupName: opts.force ? `${name}.replaced-${utcStamp(Date.now())}` : undefined,
    existsError: () =>
      new ObnamError(
        'IDENTITY_EXISTS',
        `an identity already exists at ${file} and is never replaced silently: snapshots granted to it would become unreadable ` +
          `(--force replaces it and keeps the old one beside it as ${name}.replaced-TIMESTAMP)`,
      ),
  });
  return backup ? { replaced: backup } : {};
}
