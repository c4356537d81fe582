/**
 * Tree objects: one directory's entries, CBOR, deterministic.
 *
 * A directory is a tree node. A small directory is one leaf node
 * { entries: [entry...] }, entries sorted by name bytes. A directory with more
 * than LEAF_MAX entries is split into leaf pages at content-defined points and
 * referenced from index nodes { pages: [{ first, tree, count }...] } (see
 * lib/format/treesplit.ts), so no directory needs one giant object and a change
 * to one name rewrites only its page. Names are raw bytes.
 */
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
  /** file: content as chunks, in order (files larger than the repository's inline limit). */
  chunks?: ChunkRef[];
  /** file: the whole content, inline (files up to the repository's inline limit). */
  data?: Buffer;
  /** dir: the directory's tree node. */
  subtree?: string;
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
}

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
    chunks: e.chunks?.map((c) => [idToBytes(c.id), c.length]),
    data: e.data,
    subtree: e.subtree === undefined ? undefined : idToBytes(e.subtree),
    target: e.target,
    link: e.link,
    rdev: e.rdev,
    xattrs: e.xattrs,
  };
}

export function encodeTreeNode(node: TreeNode): Uint8Array {
  if (node.kind === 'leaf') return encodeCbor({ entries: node.entries.map(encodeEntry) });
  return encodeCbor({
    pages: node.pages.map((p) => ({ first: p.first, tree: idToBytes(p.tree), count: p.count })),
  });
}

const asBuffer = (v: unknown, what: string): Buffer => {
  const b = asBytes(v, what);
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
};

function decodeEntry(v: unknown, what: string): TreeEntry {
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
  if (type === 'file' && m.data !== undefined) {
    e.data = asBuffer(m.data, `${where} data`);
    if (m.chunks !== undefined) fail(where, 'a file has either data or chunks, not both');
    if (e.data.length !== e.size) fail(where, `inline data has ${e.data.length} bytes, not the file size ${e.size}`);
  } else if (type === 'file') {
    let total = 0;
    e.chunks = asArray(m.chunks, `${where} chunks`).map((c) => {
      const pair = asArray(c, `${where} chunk`);
      if (pair.length !== 2) fail(where, 'chunk reference must be [id, length]');
      const length = asUint(pair[1], `${where} chunk length`);
      total += length;
      return { id: idFromBytes(asBytes(pair[0], `${where} chunk id`)), length };
    });
    if (total !== e.size) fail(where, `chunk lengths add up to ${total}, not the file size ${e.size}`);
  } else if (type === 'dir') {
    e.subtree = idFromBytes(asBytes(m.subtree, `${where} subtree`));
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

/** Validates a decoded tree node; hostile or damaged structure becomes CORRUPT. */
export function decodeTreeNode(v: unknown, what: string): TreeNode {
  const m: Obj = asMap(v, what);
  if (m.entries !== undefined) {
    const entries = asArray(m.entries, `${what} entries`).map((e) => decodeEntry(e, what));
    for (let i = 1; i < entries.length; i++) {
      if (compareNames(entries[i - 1]!.name, entries[i]!.name) >= 0) fail(what, 'entries not sorted or not unique');
    }
    return { kind: 'leaf', entries };
  }
  if (m.pages !== undefined) {
    const pages = asArray(m.pages, `${what} pages`).map((p) => {
      const pm = asMap(p, `${what} page`);
      return {
        first: asBuffer(pm.first, `${what} page first`),
        tree: idFromBytes(asBytes(pm.tree, `${what} page tree`)),
        count: asUint(pm.count, `${what} page count`),
      };
    });
    if (pages.length === 0) fail(what, 'index node without pages');
    for (let i = 1; i < pages.length; i++) {
      if (compareNames(pages[i - 1]!.first, pages[i]!.first) >= 0) fail(what, 'pages not sorted');
    }
    return { kind: 'index', pages };
  }
  return fail(what, 'neither entries nor pages');
}
