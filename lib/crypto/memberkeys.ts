/**
 * The member key set of a shared (version 3) repository (format-spec/sharing.md
 * section 4): four independent random 256-bit keys every member holds.
 *
 * - content: HMAC-SHA256 key of the content digest (ids and content keys, 6.1);
 * - chunker: seed of the gear table and of directory split points;
 * - members: AES-256-GCM key of every object's outer envelope (6.2);
 * - auth: HMAC-SHA256 key authenticating member objects (5.2).
 *
 * They let a member write, deduplicate and collect garbage, not read another
 * member's snapshots. Only ever stored inside a member object, as the CBOR map
 * { version: 3, content, chunker, members, auth }.
 */
import { randomBytes } from 'node:crypto';
import { ObnamError } from '../errors.js';
import { asBytes, asMap, asUint, fail } from '../format/schema.js';

/** The format version of a shared repository, written in the member key set and member objects. */
export const SHARED_FORMAT_VERSION = 3;
export const MEMBER_KEY_BYTES = 32;

export interface MemberKeySet {
  readonly content: Uint8Array;
  readonly chunker: Uint8Array;
  readonly members: Uint8Array;
  readonly auth: Uint8Array;
}

const NAMES = ['content', 'chunker', 'members', 'auth'] as const;

/** A fresh member key set from the system's secure generator. */
export function newMemberKeySet(): MemberKeySet {
  return {
    content: new Uint8Array(randomBytes(MEMBER_KEY_BYTES)),
    chunker: new Uint8Array(randomBytes(MEMBER_KEY_BYTES)),
    members: new Uint8Array(randomBytes(MEMBER_KEY_BYTES)),
    auth: new Uint8Array(randomBytes(MEMBER_KEY_BYTES)),
  };
}

/** The CBOR-ready map of a member key set (encode it with encodeCbor). */
export function encodeMemberKeySet(k: MemberKeySet): {
  version: number;
  content: Uint8Array;
  chunker: Uint8Array;
  members: Uint8Array;
  auth: Uint8Array;
} {
  for (const n of NAMES) {
    if (!(k[n] instanceof Uint8Array) || k[n].length !== MEMBER_KEY_BYTES) {
      throw new ObnamError('INTERNAL', `member key ${n} must be ${MEMBER_KEY_BYTES} bytes`);
    }
  }
  return { version: SHARED_FORMAT_VERSION, content: k.content, chunker: k.chunker, members: k.members, auth: k.auth };
}

/** A member key set from decoded CBOR: CORRUPT unless it has exactly the shape of section 4. */
export function decodeMemberKeySet(v: unknown, what = 'member key set'): MemberKeySet {
  const m = asMap(v, what);
  const version = asUint(m.version, `${what} version`);
  if (version !== SHARED_FORMAT_VERSION) {
    throw new ObnamError('UNSUPPORTED_VERSION', `${what} has version ${version}, but this obnam reads only version ${SHARED_FORMAT_VERSION}`);
  }
  const get = (name: (typeof NAMES)[number]): Uint8Array => {
    const b = asBytes(m[name], `${what} ${name}`);
    if (b.length !== MEMBER_KEY_BYTES) fail(what, `${name} key must be ${MEMBER_KEY_BYTES} bytes`);
    return new Uint8Array(b);
  };
  return { content: get('content'), chunker: get('chunker'), members: get('members'), auth: get('auth') };
}

/** The structured-clone form handed to worker threads. */
export function memberKeySetToTransfer(k: MemberKeySet): MemberKeySet {
  return {
    content: new Uint8Array(k.content),
    chunker: new Uint8Array(k.chunker),
    members: new Uint8Array(k.members),
    auth: new Uint8Array(k.auth),
  };
}
