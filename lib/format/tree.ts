/**
 * Tree objects: one directory's entries, CBOR, deterministic.
 *
 * A directory is a tree node. A small directory is one leaf node
 * { entries: [entry...] }, entries sorted by name bytes. A directory with more
 * than LEAF_MAX entries is split into leaf pages at content-defined points and
 * referenced from index nodes { pages: [{ first, tree, count }...] } (see
 * lib/format/treesplit.ts), so no directory needs one giant object and a change
 * to one name rewrites only its page. Names are raw bytes.
 *
 * A file's content is inline (`data`), a list of chunks (`chunks`), or, in
 * format version 4, a byte range of a bundle (`bundle` on disk; in memory one
 * ChunkRef with an `offset`, so that everything that follows chunk ids,
 * reachability, gc, fsck, sees the bundle as the chunk it is).
 *
 * In format version 3 (format-spec/sharing.md section 7) every reference also
 * carries the content key of what it names: a chunk reference is
 * [id, length, key], a directory has `subtree_key`, a page reference `key`.
 * The node is then the inner plaintext of its object; treeRefs gives the
 * reference list of its outer envelope.
 */
import { ObnamError } from '../errors.js';
import { encodeCbor, CborValue } from './cbor.js';
import { idFromBytes, idToBytes } from './ids.js';
import { asArray, asBytes, asMap, asText, asTimestamp, asUint, fail, Obj, optional } from './schema.js';

export const ENTRY_TYPES = ['file', 'dir', 'symlink', 'hardlink', 'fifo', 'chardev', 'blockdev', 'socket'] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];

/** Seconds and nanoseconds since the epoch (seconds may be negative). */
export interface Timestamp {
  sec: number;
  nsec: number;
}

export interface ChunkRef {
  id: string;
  length: number;
  /** The chunk's content key (format version 3 only). */
  key?: Uint8Array;
  /**
   * Set for a bundle reference (format version 4, section 6.7): the content
   * is bytes [offset, offset + length) of the chunk's plaintext, not all of
   * it. A file with a bundle reference has exactly this one ref in `chunks`
   * (its `bundle` field on disk).
   */
  offset?: number;
}

/** Whether two chunk lists name the same content the same way (ids, lengths and bundle offsets). */
export function sameChunkRefs(a: readonly ChunkRef[] | undefined, b: readonly ChunkRef[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  return a.every((c, i) => c.id === b[i]!.id && c.length === b[i]!.length && c.offset === b[i]!.offset);
}

/** Whether a file's chunk list is one bundle reference (format-spec 6.7). */
export function isBundleRef(chunks: readonly ChunkRef[]): boolean {
  return chunks.length === 1 && chunks[0]!.offset !== undefined;
}

/**
 * The part of a chunk's plaintext a reference names: all of it for an
 * ordinary chunk reference, whose length must match, or its range for a
 * bundle reference, which must lie inside it. CORRUPT otherwise.
 */
export function chunkContent<T extends Uint8Array>(ref: ChunkRef, plaintext: T): T {
  if (ref.offset === undefined) {
    if (plaintext.length !== ref.length) throw new ObnamError('CORRUPT', `chunk ${ref.id}: ${plaintext.length} bytes, the tree says ${ref.length}`);
    return plaintext;
  }
  return bundleContent(ref, plaintext);
}

/** The range a bundle reference names in its chunk's plaintext; CORRUPT if it is not inside it. */
export function bundleContent<T extends Uint8Array>(ref: ChunkRef, plaintext: T): T {
  const offset = ref.offset ?? 0;
  if (offset + ref.length > plaintext.length) {
    throw new ObnamError('CORRUPT', `chunk ${ref.id}: ${plaintext.length} bytes, but a tree names bytes ${offset} to ${offset + ref.length} of it`);
  }
  return plaintext.subarray(offset, offset + ref.length) as T;
}

export interface TreeEntry {
  name: Buffer;
  type: EntryType;
  /** Permission bits and set-id/sticky bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  mtime: Timestamp;
  ctime: Timestamp;
  /** Bytes of content for files; 0 for the others (symlinks: target length). */
  size: number;
  inode?: number;
  nlink?: number;
  /**
   * file: content as chunks, in order (files larger than the repository's
   * inline limit), or one bundle reference (a ref with `offset`: a small file
   * in a bundle, format version 4).
   */
  chunks?: ChunkRef[];
  /** file: the whole content, inline (files up to the repository's inline limit). */
  data?: Buffer;
  /** dir: the directory's tree node. */
  subtree?: string;
  /** dir: the content key of `subtree` (format version 3 only). */
  subtreeKey?: Uint8Array;
  /** symlink: the target, raw bytes. */
  target?: Buffer;
  /** hardlink: snapshot-relative path (components joined by "/") of the entry holding the content. */
  link?: Buffer;
  /** chardev, blockdev: device number. */
  rdev?: number;
  /** Extended attributes, sorted by name. */
  xattrs?: [Buffer, Buffer][];
}

export interface PageRef {
  /** The first name in the page (pages are in name order and do not overlap). */
  first: Buffer;
  tree: string;
  /** Entries in the page, all levels below included. */
  count: number;
  /** The page's content key (format version 3 only). */
  key?: Uint8Array;
}

/** Where a stored chunk or tree node is (its id) and, in format version 3, what opens it (its content key). */
export interface ObjectAddress {
  id: string;
  key?: Uint8Array;
}

/** The bytes of a content key. */
export const KEY_BYTES = 32;

export type TreeNode = { kind: 'leaf'; entries: TreeEntry[] } | { kind: 'index'; pages: PageRef[] };

export function compareNames(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Rejects names that cannot be a single path component: empty, ".", "..", or with "/" or NUL. */
export function isSafeName(name: Uint8Array): boolean {
  if (name.length === 0 || name.length > 4096) return false;
  if (name.length === 1 && name[0] === 0x2e) return false;
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return false;
  return !name.includes(0x2f) && !name.includes(0);
}

/** A snapshot-relative path made of safe components, as a hardlink's `link` must be. */
export function isSafeRelativePath(p: Uint8Array): boolean {
  if (p.length === 0) return false;
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      if (!isSafeName(p.subarray(start, i))) return false;
      start = i + 1;
    }
  }
  return true;
}

const ts = (t: Timestamp): CborValue => [t.sec, t.nsec];

function encodeEntry(e: TreeEntry): CborValue {
  const bundle = e.chunks && isBundleRef(e.chunks) ? e.chunks[0]! : undefined;
  if (bundle?.key) throw new ObnamError('INTERNAL', 'a bundle reference has no content key (format version 3 has no bundles)');
  return {
    name: e.name,
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    user: e.user,
    group: e.group,
    mtime: ts(e.mtime),
    ctime: ts(e.ctime),
    size: e.size,
    inode: e.inode,
    nlink: e.nlink,
    chunks: bundle ? undefined : e.chunks?.map((c) => (c.key ? [idToBytes(c.id), c.length, c.key] : [idToBytes(c.id), c.length])),
    bundle: bundle ? [idToBytes(bundle.id), bundle.offset!, bundle.length] : undefined,
    data: e.data,
    subtree: e.subtree === undefined ? undefined : idToBytes(e.subtree),
    subtree_key: e.subtreeKey,
    target: e.target,
    link: e.link,
    rdev: e.rdev,
    xattrs: e.xattrs,
  };
}

export function encodeTreeNode(node: TreeNode): Uint8Array {
  if (node.kind === 'leaf') return encodeCbor({ entries: node.entries.map(encodeEntry) });
  return encodeCbor({
    pages: node.pages.map((p) => ({ first: p.first, tree: idToBytes(p.tree), count: p.count, key: p.key })),
  });
}

const asBuffer = (v: unknown, what: string): Buffer => {
  const b = asBytes(v, what);
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
};

const asKey = (v: unknown, what: string): Uint8Array => {
  const b = asBytes(v, what);
  if (b.length !== KEY_BYTES) fail(what, `a content key must be ${KEY_BYTES} bytes`);
  return new Uint8Array(b);
};

function decodeEntry(v: unknown, what: string, keyed: boolean): TreeEntry {
  const m = asMap(v, what);
  const name = asBuffer(m.name, `${what} name`);
  if (!isSafeName(name)) fail(what, `unsafe file name ${JSON.stringify(name.toString('latin1').slice(0, 80))}`);
  const where = `${what} ${JSON.stringify(name.toString('utf8').slice(0, 80))}`;
  const type = asText(m.type, `${where} type`) as EntryType;
  if (!ENTRY_TYPES.includes(type)) fail(where, `unknown entry type ${JSON.stringify(type)}`);
  const e: TreeEntry = {
    name,
    type,
    mode: asUint(m.mode, `${where} mode`) & 0o7777,
    uid: asUint(m.uid, `${where} uid`),
    gid: asUint(m.gid, `${where} gid`),
    user: optional(m.user, asText, `${where} user`),
    group: optional(m.group, asText, `${where} group`),
    mtime: asTimestamp(m.mtime, `${where} mtime`),
    ctime: asTimestamp(m.ctime, `${where} ctime`),
    size: asUint(m.size, `${where} size`),
    inode: optional(m.inode, asUint, `${where} inode`),
    nlink: optional(m.nlink, asUint, `${where} nlink`),
    rdev: optional(m.rdev, asUint, `${where} rdev`),
  };
  if (type === 'file' && [m.data, m.chunks, m.bundle].filter((x) => x !== undefined).length > 1) {
    fail(where, 'a file has one of data, chunks and bundle, not several');
  }
  if (type === 'file' && m.data !== undefined) {
    e.data = asBuffer(m.data, `${where} data`);
    if (e.data.length !== e.size) fail(where, `inline data has ${e.data.length} bytes, not the file size ${e.size}`);
  } else if (type === 'file' && m.bundle !== undefined) {
    // Format version 4 (section 6.7); shared repositories (version 3, keyed) have no bundles.
    if (keyed) fail(where, 'a shared repository (format version 3) has no bundles');
    const b = asArray(m.bundle, `${where} bundle`);
    if (b.length !== 3) fail(where, 'a bundle reference must be [id, offset, length]');
    const ref: ChunkRef = {
      id: idFromBytes(asBytes(b[0], `${where} bundle id`)),
      offset: asUint(b[1], `${where} bundle offset`),
      length: asUint(b[2], `${where} bundle length`),
    };
    if (ref.length !== e.size) fail(where, `the bundle reference names ${ref.length} bytes, not the file size ${e.size}`);
    e.chunks = [ref];
  } else if (type === 'file') {
    let total = 0;
    e.chunks = asArray(m.chunks, `${where} chunks`).map((c) => {
      const pair = asArray(c, `${where} chunk`);
      if (pair.length !== (keyed ? 3 : 2)) fail(where, keyed ? 'chunk reference must be [id, length, key]' : 'chunk reference must be [id, length]');
      const length = asUint(pair[1], `${where} chunk length`);
      total += length;
      const ref: ChunkRef = { id: idFromBytes(asBytes(pair[0], `${where} chunk id`)), length };
      if (keyed) ref.key = asKey(pair[2], `${where} chunk key`);
      return ref;
    });
    if (total !== e.size) fail(where, `chunk lengths add up to ${total}, not the file size ${e.size}`);
  } else if (type === 'dir') {
    e.subtree = idFromBytes(asBytes(m.subtree, `${where} subtree`));
    if (keyed) e.subtreeKey = asKey(m.subtree_key, `${where} subtree_key`);
  } else if (type === 'symlink') {
    e.target = asBuffer(m.target, `${where} target`);
    if (e.target.length === 0 || e.target.includes(0)) fail(where, 'bad symlink target');
  } else if (type === 'hardlink') {
    e.link = asBuffer(m.link, `${where} link`);
    if (!isSafeRelativePath(e.link)) fail(where, 'hardlink path is not a safe relative path');
  }
  if (m.xattrs !== undefined) {
    e.xattrs = asArray(m.xattrs, `${where} xattrs`).map((x) => {
      const pair = asArray(x, `${where} xattr`);
      if (pair.length !== 2) fail(where, 'xattr must be [name, value]');
      return [asBuffer(pair[0], `${where} xattr name`), asBuffer(pair[1], `${where} xattr value`)];
    });
  }
  return e;
}

/**
 * Validates a decoded tree node; hostile or damaged structure becomes CORRUPT.
 * `keyed` (format version 3): every reference must carry its content key.
 */
export function decodeTreeNode(v: unknown, what: string, keyed = false): TreeNode {
  const m: Obj = asMap(v, what);
  if (m.entries !== undefined) {
    const entries = asArray(m.entries, `${what} entries`).map((e) => decodeEntry(e, what, keyed));
    for (let i = 1; i < entries.length; i++) {
      if (compareNames(entries[i - 1]!.name, entries[i]!.name) >= 0) fail(what, 'entries not sorted or not unique');
    }
    return { kind: 'leaf', entries };
  }
  if (m.pages !== undefined) {
    const pages = asArray(m.pages, `${what} pages`).map((p) => {
      const pm = asMap(p, `${what} page`);
      const page: PageRef = {
        first: asBuffer(pm.first, `${what} page first`),
        tree: idFromBytes(asBytes(pm.tree, `${what} page tree`)),
        count: asUint(pm.count, `${what} page count`),
      };
      if (keyed) page.key = asKey(pm.key, `${what} page key`);
      return page;
    });
    if (pages.length === 0) fail(what, 'index node without pages');
    for (let i = 1; i < pages.length; i++) {
      if (compareNames(pages[i - 1]!.first, pages[i]!.first) >= 0) fail(what, 'pages not sorted');
    }
    return { kind: 'index', pages };
  }
  return fail(what, 'neither entries nor pages');
}

/** A version 3 tree's reference list (format-spec/sharing.md 7.2): the ids its node names, sorted, unique. */
export interface TreeRefs {
  trees: string[];
  chunks: string[];
}

const sortedUnique = (ids: Iterable<string>): string[] => [...new Set(ids)].sort();

/** The reference list of a node, derived from the node and nothing else. */
export function treeRefs(node: TreeNode): TreeRefs {
  if (node.kind === 'index') return { trees: sortedUnique(node.pages.map((p) => p.tree)), chunks: [] };
  const trees: string[] = [];
  const chunks: string[] = [];
  for (const e of node.entries) {
    if (e.subtree !== undefined) trees.push(e.subtree);
    for (const c of e.chunks ?? []) chunks.push(c.id);
  }
  return { trees: sortedUnique(trees), chunks: sortedUnique(chunks) };
}

export function encodeTreeRefs(r: TreeRefs): CborValue {
  return { trees: r.trees.map(idToBytes), chunks: r.chunks.map(idToBytes) };
}

/** A reference list from decoded CBOR; CORRUPT unless each list is sorted, unique ids. */
export function decodeTreeRefs(v: unknown, what: string): TreeRefs {
  const m = asMap(v, what);
  const list = (x: unknown, name: string): string[] => {
    const ids = asArray(x, `${what} ${name}`).map((b) => idFromBytes(asBytes(b, `${what} ${name} id`)));
    for (let i = 1; i < ids.length; i++) if (ids[i - 1]! >= ids[i]!) fail(what, `${name} not sorted or not unique`);
    return ids;
  };
  return { trees: list(m.trees, 'trees'), chunks: list(m.chunks, 'chunks') };
}

/** Whether two reference lists are the same. */
export function sameTreeRefs(a: TreeRefs, b: TreeRefs): boolean {
  const eq = (x: string[], y: string[]) => x.length === y.length && x.every((id, i) => id === y[i]);
  return eq(a.trees, b.trees) && eq(a.chunks, b.chunks);
}

/** The address of a directory entry's subtree (its id and, in version 3, its key); undefined for other entries. */
export function subtreeOf(e: TreeEntry): ObjectAddress | undefined {
  if (e.subtree === undefined) return undefined;
  return e.subtreeKey ? { id: e.subtree, key: e.subtreeKey } : { id: e.subtree };
}

/** A directory entry naming the tree node at `at`. */
export function withSubtree(e: TreeEntry, at: ObjectAddress): TreeEntry {
  const out: TreeEntry = { ...e, subtree: at.id };
  if (at.key) out.subtreeKey = at.key;
  else delete out.subtreeKey;
  return out;
}

/** A tree node named by id alone (format versions 1 and 2) or by its address (version 3: with its content key). */
export type TreeRef = string | ObjectAddress;

export function addressOf(r: TreeRef): ObjectAddress {
  return typeof r === 'string' ? { id: r } : r;
}
