/**
 * What one member can open of a version 3 repository with everything they
 * have (format-spec/sharing.md 13.1): every stored object, read straight from
 * the local store; their identity; the member key set their member object
 * gives them; and every key they find on the way. Written from the spec
 * alone (node:crypto AES-GCM and the identity and stanza primitives of
 * sections 2 and 3), not with the repository code, so it checks what is
 * stored rather than what the code believes.
 *
 * It does not stop at the legitimate path (stanzas for the member, shares
 * from owners, content keys named in opened trees): it tries every key it
 * knows (the four member keys, the identity's secret and public key, every
 * snapshot, share and content key found) on every tree, chunk, snapshot
 * body, share and grant body, until nothing new opens. The result says
 * which objects opened and holds every plaintext, for tests to search.
 */
import { createDecipheriv, createHash } from 'node:crypto';
import type { KeyPair } from '../../lib/crypto/stanza.js';
import { stanzaFromCbor, unwrapFileKey } from '../../lib/crypto/stanza.js';
import { decodeCbor, encodeCbor, CborValue } from '../../lib/format/cbor.js';
import { decompressPayload } from '../../lib/format/compress.js';
import { idFromBytes, idToBytes } from '../../lib/format/ids.js';
import type { Kind } from '../../lib/format/version.js';
import { LocalStore } from '../../lib/store/local.js';

const V = 3;
const CODE = { config: 1, key: 2, snapshot: 3, tree: 4, chunk: 5, gcplan: 6, member: 7, share: 8, grant: 9 } as const;
type AnyKind = keyof typeof CODE;
const MAX = 64 << 20;

type Obj = Record<string, unknown>;
const bytes = (v: unknown): Buffer => {
  if (!(v instanceof Uint8Array)) throw new Error(`not bytes: ${typeof v}`);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
};
const label = (s: string, ...rest: (Uint8Array | number)[]) =>
  Buffer.concat([Buffer.from(s, 'latin1'), ...rest.map((r) => (typeof r === 'number' ? Buffer.from([r]) : Buffer.from(r)))]);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

/** AES-256-GCM open of nonce || ciphertext || tag; undefined if it does not authenticate. */
function gcmOpen(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | undefined {
  if (key.length !== 32 || sealed.length < 28) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  } catch {
    return undefined;
  }
}

/** An envelope (README 4.1) of format version 3: header, then nonce || ct || tag, AAD header || id. */
function openEnvelope(key: Uint8Array, kind: AnyKind, id: string, stored: Uint8Array): Buffer | undefined {
  if (stored.length < 6 + 28 || Buffer.from(stored.subarray(0, 4)).toString('latin1') !== 'OBNM') return undefined;
  if (stored[4] !== V || stored[5] !== CODE[kind]) return undefined;
  const header = stored.subarray(0, 6);
  const payload = gcmOpen(key, stored.subarray(6), Buffer.concat([header, idToBytes(id)]));
  return payload && Buffer.from(decompressPayload(payload, MAX, `${kind} ${id}`));
}

/** An inner envelope (6.2) with its AAD. */
function openInner(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array, what: string): Buffer | undefined {
  const payload = gcmOpen(key, sealed, aad);
  return payload && Buffer.from(decompressPayload(payload, MAX, what));
}
const innerAad = (kind: AnyKind, id: string) => label('obnam-inner', V, CODE[kind], idToBytes(id));

export interface MemberKeys {
  content: Buffer;
  chunker: Buffer;
  members: Buffer;
  auth: Buffer;
}

export interface MemberView {
  /** The member key set the identity's member object gave (undefined: not a member). */
  memberKeys?: MemberKeys;
  /** Every stored object, by kind, with its id. */
  stored: Map<AnyKind, Map<string, Uint8Array>>;
  /** Ids whose content opened: snapshot bodies, tree nodes (inner), chunks, share and grant bodies. */
  opened: Record<'snapshot' | 'tree' | 'chunk' | 'share' | 'grant', Set<string>>;
  /** Snapshots whose body opened through a stanza for this identity, or a share from the owner. */
  readableSnapshots: Set<string>;
  /** Root tree ids named by snapshot headers (visible to every member). */
  rootOf: Map<string, string>;
  /** Every plaintext opened beyond outer envelopes (tree nodes, chunks, bodies). */
  plaintexts: Buffer[];
  /** Keys tried (member keys, identity, found keys). */
  keysTried: number;
}

/** What `identity` can open of the local repository at `dir`. */
export async function memberView(dir: string, identity: KeyPair): Promise<MemberView> {
  const store = await LocalStore.open(dir);
  const stored = new Map<AnyKind, Map<string, Uint8Array>>();
  try {
    for (const kind of Object.keys(CODE) as AnyKind[]) {
      const m = new Map<string, Uint8Array>();
      try {
        for await (const id of store.list(kind as Kind)) m.set(id, await store.get(kind as Kind, id));
      } catch {
        // a store that does not know the kind holds none of it
      }
      stored.set(kind, m);
    }
  } finally {
    await store.close();
  }
  const view: MemberView = {
    stored,
    opened: { snapshot: new Set(), tree: new Set(), chunk: new Set(), share: new Set(), grant: new Set() },
    readableSnapshots: new Set(),
    rootOf: new Map(),
    plaintexts: [],
    keysTried: 0,
  };

  // Member objects (5.1): plain CBOR; the identity's own gives the member key set.
  const publics: Buffer[] = [];
  for (const [id, b] of stored.get('member')!) {
    const m = decodeCbor(b, 'member') as Obj;
    publics.push(bytes(m.public));
    if (!bytes(m.public).equals(Buffer.from(identity.public))) continue;
    const km = unwrapFileKey(stanzaFromCbor(m.stanza), identity, label('obnam-member', V, idToBytes(id)));
    if (!km) throw new Error(`member object ${id} is for this identity but its stanza does not open`);
    const ks = gcmOpen(km, bytes(m.keys), label('obnam-member-keys', V, idToBytes(id)));
    if (!ks) throw new Error(`member object ${id}: keys do not open`);
    const k = decodeCbor(ks, 'member keys') as Obj;
    view.memberKeys = { content: bytes(k.content), chunker: bytes(k.chunker), members: bytes(k.members), auth: bytes(k.auth) };
  }
  if (!view.memberKeys) return view;
  const members = view.memberKeys.members;

  // Outer envelopes under `members` (6.2): what every member sees.
  const outer = (kind: AnyKind, id: string, b: Uint8Array): Obj | undefined => {
    const p = openEnvelope(members, kind, id, b);
    return p && (decodeCbor(p, `${kind} ${id} outer`) as Obj);
  };
  const snapshots = new Map<string, { header: Obj; recipients: unknown[]; body: Buffer }>();
  for (const [id, b] of stored.get('snapshot')!) {
    const o = outer('snapshot', id, b);
    if (!o) continue;
    const header = o.header as Obj;
    snapshots.set(id, { header, recipients: o.recipients as unknown[], body: bytes(o.body) });
    view.rootOf.set(id, idFromBytes(bytes(header.tree)));
  }
  const trees = new Map<string, Buffer>();
  for (const [id, b] of stored.get('tree')!) {
    const o = outer('tree', id, b);
    if (o) trees.set(id, bytes(o.content));
  }
  const sealedObjects = (kind: 'share' | 'grant') => {
    const out = new Map<string, { owner: Buffer; recipients: unknown[]; body: Buffer }>();
    for (const [id, b] of stored.get(kind)!) {
      const o = outer(kind, id, b);
      if (o) out.set(id, { owner: bytes(o.owner), recipients: o.recipients as unknown[], body: bytes(o.body) });
    }
    return out;
  };
  const shares = sealedObjects('share');
  const grants = sealedObjects('grant');

  // Every key the member has, growing as things open.
  const keys: Buffer[] = [];
  const seen = new Set<string>();
  const learn = (k: unknown) => {
    if (!(k instanceof Uint8Array) || k.length !== 32) return;
    const hex = Buffer.from(k).toString('hex');
    if (seen.has(hex)) return;
    seen.add(hex);
    keys.push(Buffer.from(k));
  };
  for (const k of Object.values(view.memberKeys)) learn(k);
  learn(identity.secret);
  learn(identity.public);

  const snapshotKeys = new Map<string, Buffer>();
  const senders = [...publics, Buffer.from(identity.public)];
  // The legitimate path first: stanzas (8.1, 8.3) and shares (9.1), with any member as sender.
  for (const [id, s] of snapshots) {
    const context = label('obnam-snapshot', V, sha256(encodeCbor(s.header as CborValue)));
    for (const r of s.recipients) {
      for (const sender of senders) {
        const k = unwrapFileKey(stanzaFromCbor(r), identity, context, sender);
        if (k) snapshotKeys.set(id, Buffer.from(k));
      }
    }
  }
  const openSealed = (kind: 'share' | 'grant', id: string, o: { owner: Buffer; recipients: unknown[]; body: Buffer }, k: Uint8Array) => {
    const p = openInner(k, o.body, innerAad(kind, id), `${kind} ${id}`);
    if (!p) return;
    view.opened[kind].add(id);
    view.plaintexts.push(p);
    const body = decodeCbor(p, `${kind} body`) as Obj;
    if (kind === 'share') {
      for (const pair of body.snapshots as unknown[][]) {
        const sid = idFromBytes(bytes(pair[0]));
        if (bytes(o.owner).equals(bytes(snapshots.get(sid)?.header.owner ?? Buffer.alloc(0)))) snapshotKeys.set(sid, bytes(pair[1]));
        learn(pair[1]);
      }
    } else {
      learn(body.grantee);
    }
  };
  for (const [kind, objs] of [['share', shares], ['grant', grants]] as const) {
    for (const [id, o] of objs) {
      for (const r of o.recipients) {
        const k = unwrapFileKey(stanzaFromCbor(r), identity, label(`obnam-${kind}`, V, idToBytes(id)), o.owner);
        if (k) {
          learn(k);
          openSealed(kind, id, o, k);
        }
      }
    }
  }
  for (const k of snapshotKeys.values()) learn(k);

  // Then everything with every key, until nothing new opens.
  const tried = new Map<string, number>(); // object -> number of keys tried on it
  const openSnapshotBody = (id: string, k: Buffer): boolean => {
    const s = snapshots.get(id)!;
    const p = openInner(k, s.body, label('obnam-snapshot-body', V, sha256(encodeCbor(s.header as CborValue))), `snapshot ${id} body`);
    if (!p) return false;
    view.opened.snapshot.add(id);
    view.plaintexts.push(p);
    const b = decodeCbor(p, 'snapshot body') as Obj;
    learn(b.tree_key);
    return true;
  };
  for (const [id, k] of snapshotKeys) if (openSnapshotBody(id, k)) view.readableSnapshots.add(id);
  const learnFromNode = (node: Obj) => {
    for (const e of (node.entries as Obj[] | undefined) ?? []) {
      learn(e.subtree_key);
      for (const c of (e.chunks as unknown[][] | undefined) ?? []) learn(c[2]);
    }
    for (const p of (node.pages as Obj[] | undefined) ?? []) learn(p.key);
  };
  for (let progress = true; progress; ) {
    progress = false;
    const attempt = (kind: AnyKind, id: string, f: (k: Buffer) => boolean) => {
      const tag = `${kind}:${id}`;
      for (let i = tried.get(tag) ?? 0; i < keys.length; i++) {
        view.keysTried++;
        if (f(keys[i]!)) {
          tried.set(tag, Infinity);
          progress = true;
          return;
        }
      }
      tried.set(tag, keys.length);
    };
    for (const id of snapshots.keys()) if (!view.opened.snapshot.has(id)) attempt('snapshot', id, (k) => openSnapshotBody(id, k));
    for (const [id, content] of trees) {
      if (view.opened.tree.has(id)) continue;
      attempt('tree', id, (k) => {
        const p = openInner(k, content, innerAad('tree', id), `tree ${id}`);
        if (!p) return false;
        view.opened.tree.add(id);
        view.plaintexts.push(p);
        learnFromNode(decodeCbor(p, `tree ${id}`) as Obj);
        return true;
      });
    }
    for (const [id, b] of stored.get('chunk')!) {
      if (view.opened.chunk.has(id)) continue;
      attempt('chunk', id, (k) => {
        const p = openEnvelope(k, 'chunk', id, b);
        if (!p) return false;
        view.opened.chunk.add(id);
        view.plaintexts.push(p);
        return true;
      });
    }
    for (const [kind, objs] of [['share', shares], ['grant', grants]] as const) {
      for (const [id, o] of objs) {
        if (view.opened[kind].has(id)) continue;
        attempt(kind, id, (k) => {
          const before = view.opened[kind].size;
          openSealed(kind, id, o, k);
          return view.opened[kind].size > before;
        });
      }
    }
  }
  return view;
}

/** Whether any plaintext the member opened holds `needle`. */
export function viewHolds(view: MemberView, needle: string | Buffer): boolean {
  const n = typeof needle === 'string' ? Buffer.from(needle) : needle;
  return view.plaintexts.some((p) => p.includes(n));
}
