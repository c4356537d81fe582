/**
 * Test vectors of the objects of a shared repository that v3objects owns
 * (format-spec/sharing.md sections 4, 5 and 9): the member key set, a member
 * object, and the outer plaintexts of a share and a grant object (9.1, 9.2), computed by
 * the library from fixed inputs (the prng of README 17.1). Run this module to
 * write fixtures/vectors-v3-objects.json (only when the format changes: the
 * file is the contract); member-objects.test.ts and share-objects.test.ts recompute it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { identityFromSecret, publicKeyText } from '../../lib/crypto/identity.js';
import { encodeMemberKeySet, MemberKeySet } from '../../lib/crypto/memberkeys.js';
import { encodeCbor } from '../../lib/format/cbor.js';
import { encodeMemberObject, MemberInfo, memberMac } from '../../lib/format/member.js';
import { makeGrantObject, makeShareObject } from '../../lib/format/share.js';
import { ROOT } from './cli.js';
import { prngBytes } from './prng.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export function vectorMemberKeySet(): MemberKeySet {
  return {
    content: prngBytes('vector member content', 32),
    chunker: prngBytes('vector member chunker', 32),
    members: prngBytes('vector member members', 32),
    auth: prngBytes('vector member auth', 32),
  };
}

/** The member of the vectors: the identity of vectors-identity.json. */
export function vectorMember() {
  const identity = identityFromSecret(prngBytes('vector identity secret', 32));
  const info: MemberInfo = {
    id: hex(prngBytes('vector member id', 32)),
    name: 'alice',
    publicKey: identity.public,
    canDelete: true,
    created: 1700000000,
    addedBy: '',
  };
  return { identity, info };
}

export function computeV3ObjectVectors(): Record<string, unknown> {
  const keys = vectorMemberKeySet();
  const { identity, info } = vectorMember();
  const fileKey = prngBytes('vector member file key', 32);
  const ephemeral = prngBytes('vector member ephemeral', 32);
  const nonce = prngBytes('vector member nonce', 12);
  const bytes = encodeMemberObject(keys, info, { fileKey, ephemeralSecret: ephemeral, nonce });
  const grantee = identityFromSecret(prngBytes('vector sender secret', 32));
  const snapshot = { id: hex(prngBytes('vector shared snapshot id', 32)), key: prngBytes('vector shared snapshot key', 32) };
  const share = {
    id: hex(prngBytes('vector share id', 32)),
    file_key: prngBytes('vector share file key', 32),
    ephemeral: [prngBytes('vector share ephemeral 0', 32), prngBytes('vector share ephemeral 1', 32)],
    nonce: prngBytes('vector share nonce', 12),
    created: { sec: 1700000100, nsec: 5 },
  };
  const sharePlain = makeShareObject(share.id, identity, { publicKey: grantee.public, name: 'bob' }, [snapshot], share.created, {
    fileKey: share.file_key,
    ephemeralSecrets: share.ephemeral,
    nonce: share.nonce,
  });
  const grant = {
    id: hex(prngBytes('vector grant id', 32)),
    file_key: prngBytes('vector grant file key', 32),
    ephemeral: prngBytes('vector grant ephemeral', 32),
    nonce: prngBytes('vector grant nonce', 12),
    created: { sec: 1700000200, nsec: 0 },
  };
  const grantPlain = makeGrantObject(
    grant.id,
    identity,
    { host: 'laptop', grantee: { publicKey: grantee.public, name: 'bob' }, state: 'granted', created: grant.created },
    { fileKey: grant.file_key, ephemeralSecrets: [grant.ephemeral], nonce: grant.nonce },
  );
  return {
    member_key_set: {
      content: hex(keys.content),
      chunker: hex(keys.chunker),
      members: hex(keys.members),
      auth: hex(keys.auth),
      cbor: hex(encodeCbor(encodeMemberKeySet(keys))),
    },
    member_object: {
      id: info.id,
      identity_secret: hex(identity.secret),
      public: hex(identity.public),
      public_text: publicKeyText(identity),
      name: info.name,
      can_delete: info.canDelete,
      created: info.created,
      added_by: info.addedBy,
      file_key: hex(fileKey),
      ephemeral_secret: hex(ephemeral),
      nonce: hex(nonce),
      mac: hex(memberMac(keys.auth, info)),
      bytes: hex(bytes),
    },
    share_object: {
      id: share.id,
      owner_secret: hex(identity.secret),
      grantee_secret: hex(grantee.secret),
      grantee_name: 'bob',
      snapshot_id: snapshot.id,
      snapshot_key: hex(snapshot.key),
      created: [share.created.sec, share.created.nsec],
      file_key: hex(share.file_key),
      ephemeral_secrets: share.ephemeral.map(hex),
      nonce: hex(share.nonce),
      outer_plaintext: hex(sharePlain),
    },
    grant_object: {
      id: grant.id,
      owner_secret: hex(identity.secret),
      host: 'laptop',
      grantee_public: hex(grantee.public),
      grantee_name: 'bob',
      state: 'granted',
      created: [grant.created.sec, grant.created.nsec],
      file_key: hex(grant.file_key),
      ephemeral_secret: hex(grant.ephemeral),
      nonce: hex(grant.nonce),
      outer_plaintext: hex(grantPlain),
    },
  };
}

export const V3_OBJECT_VECTORS_FILE = path.join(ROOT, 'fixtures', 'vectors-v3-objects.json');

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(V3_OBJECT_VECTORS_FILE, JSON.stringify(computeV3ObjectVectors(), null, 2) + '\n');
  console.log(`wrote ${V3_OBJECT_VECTORS_FILE}`);
}
