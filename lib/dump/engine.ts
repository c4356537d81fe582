/**
 * Dumping one path of a snapshot as a byte stream: a file's content (a
 * hardlink's is the content of the file it links to), or a directory as a tar
 * archive (lib/dump/tar.ts) of everything below it, named relative to the
 * directory's parent (dumping /home/a/docs gives docs/, docs/x, ...; dumping
 * the root gives the top-level names). Chunks are fetched a few ahead of the
 * writer and written in order, so memory stays bounded by a few chunks
 * whatever the size; the sink's promise is the backpressure.
 */
import { ObnamError, throwIfAborted } from '../errors.js';
import { chunkContent, isBundleRef } from '../format/tree.js';
import type { ObjectAddress, TreeEntry, TreeRef } from '../format/tree.js';
import { BundleReader } from '../repo/bundle-reader.js';
import { NodeLoader, resolvePath, walkTree } from '../repo/treewalk.js';
import { padding, TAR_END, tarHeader, TarMember, TarType } from './tar.js';

/** Chunks fetched ahead of the one being written. */
const FETCH_AHEAD = 4;

export interface DumpInput {
  load: NodeLoader;
  /** A chunk's plaintext, authenticated; `key` is its content key (format version 3). */
  getChunk: (id: string, key?: Uint8Array) => Promise<Uint8Array>;
  /** The snapshot's root tree (with its content key in format version 3). */
  root: TreeRef;
  /** The path to dump, as components below the root (empty: the root directory). */
  path: Buffer[];
  signal?: AbortSignal;
  /** Members a tar cannot hold (sockets), or links whose target is missing. */
  onWarning?: (path: string, message: string) => void;
}

export type Sink = (data: Uint8Array) => Promise<void>;

const SLASH = Buffer.from('/');
const show = (p: Buffer) => p.toString('utf8');

/** What dumping `path` writes: 'file' content or a 'tar' archive. */
export async function dumpKind(input: DumpInput): Promise<{ kind: 'file' | 'tar'; entry?: TreeEntry; tree?: ObjectAddress }> {
  const { tree, entry } = await resolvePath(input.load, input.root, input.path);
  const where = '/' + input.path.map(show).join('/');
  if (tree !== undefined) return { kind: 'tar', entry, tree };
  if (entry!.type === 'file' || entry!.type === 'hardlink') return { kind: 'file', entry };
  const what = entry!.type === 'symlink' ? `a symlink to ${show(entry!.target!)}` : `a ${entry!.type}`;
  throw new ObnamError('USAGE', `${where} is ${what}: dump writes the content of a file, or a directory as a tar archive`);
}

/** Writes the path's content (file) or tar archive (directory) to `sink`. */
export async function dump(dumpInput: DumpInput, sink: Sink): Promise<'file' | 'tar'> {
  const input: DumpRun = { ...dumpInput, bundles: new BundleReader((id) => dumpInput.getChunk(id)) };
  const target = await dumpKind(input);
  if (target.kind === 'file') {
    const entry = target.entry!.type === 'hardlink' ? await linkedFile(input, target.entry!) : target.entry!;
    await writeContent(input, entry, sink);
  } else {
    await writeTar(input, target.tree!, target.entry, sink);
  }
  return target.kind;
}

/** The file a hardlink entry names; NOT_FOUND if it is not a file in this snapshot. */
async function linkedFile(input: DumpInput, e: TreeEntry): Promise<TreeEntry> {
  const components = e.link!.toString('latin1').split('/').map((c) => Buffer.from(c, 'latin1'));
  const { entry } = await resolvePath(input.load, input.root, components).catch(() => ({ entry: undefined }));
  if (!entry || entry.type !== 'file') throw new ObnamError('NOT_FOUND', `hardlink to /${show(e.link!)}, which is not a file in this snapshot`);
  return entry;
}

/** One dump: its input, and the bundles it read last (small files of format version 4 share them). */
type DumpRun = DumpInput & { bundles: BundleReader };

/** Streams one file's content in order, a few chunks fetched ahead. */
async function writeContent(input: DumpRun, e: TreeEntry, sink: Sink): Promise<void> {
  if (e.data) {
    if (e.data.length) await sink(e.data);
    return;
  }
  const chunks = e.chunks ?? [];
  if (isBundleRef(chunks)) {
    const data = await input.bundles.read(chunks[0]!);
    if (data.length) await sink(data);
    return;
  }
  const fetch = async (i: number) => chunkContent(chunks[i]!, await input.getChunk(chunks[i]!.id, chunks[i]!.key));
  const ahead: Promise<Uint8Array>[] = [];
  let next = 0;
  try {
    for (let i = 0; i < chunks.length; i++) {
      throwIfAborted(input.signal);
      while (next < chunks.length && next <= i + FETCH_AHEAD) {
        const p = fetch(next++);
        p.catch(() => undefined); // surfaced in order, when awaited
        ahead.push(p);
      }
      await sink(await ahead.shift()!);
    }
  } finally {
    ahead.length = 0;
  }
}

const TAR_TYPES: Partial<Record<TreeEntry['type'], TarType>> = {
  file: 'file',
  dir: 'dir',
  symlink: 'symlink',
  fifo: 'fifo',
  chardev: 'chardev',
  blockdev: 'blockdev',
};

/** Linux's device number encoding (glibc's major() and minor()). */
function major(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function minor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

function member(name: Buffer, e: TreeEntry, type: TarType, size: number): TarMember {
  const m: TarMember = { name, type, mode: e.mode, uid: e.uid, gid: e.gid, user: e.user, group: e.group, size, mtime: e.mtime, xattrs: e.xattrs };
  if (type === 'symlink') m.linkname = e.target;
  if ((type === 'chardev' || type === 'blockdev') && e.rdev !== undefined) {
    m.devmajor = major(e.rdev);
    m.devminor = minor(e.rdev);
  }
  return m;
}

async function writeTar(input: DumpRun, tree: ObjectAddress, dirEntry: TreeEntry | undefined, sink: Sink): Promise<void> {
  // Snapshot paths (without the leading "/") below `base` become archive names below `top`.
  const base = Buffer.concat(input.path.flatMap((c, i) => (i ? [SLASH, c] : [c])));
  const top = input.path.length ? input.path[input.path.length - 1]! : Buffer.alloc(0);
  const archiveName = (snapshotPath: Buffer): Buffer | undefined => {
    if (!base.length) return snapshotPath;
    if (snapshotPath.equals(base)) return top;
    if (snapshotPath.length > base.length && snapshotPath[base.length] === 0x2f && snapshotPath.subarray(0, base.length).equals(base)) {
      return Buffer.concat([top, snapshotPath.subarray(base.length)]);
    }
    return undefined;
  };
  /** Archive names of files already written in full, by snapshot path: where later hardlinks can point. */
  const written = new Map<string, Buffer>();
  if (dirEntry) await sink(tarHeader(member(top, dirEntry, 'dir', 0)));
  const prefix = base.length ? Buffer.concat([SLASH, base]) : Buffer.alloc(0);
  for await (const { path, entry } of walkTree(input.load, tree, prefix)) {
    throwIfAborted(input.signal);
    const rel = path.subarray(1);
    const name = archiveName(rel)!;
    if (entry.type === 'socket') {
      input.onWarning?.(show(path), 'a socket: tar archives cannot hold sockets, left out');
      continue;
    }
    if (entry.type === 'hardlink') {
      const to = written.get(entry.link!.toString('latin1'));
      if (to) {
        await sink(tarHeader({ ...member(name, entry, 'hardlink', 0), linkname: to }));
        continue;
      }
      // Its file is outside this archive (or not written): store the content here.
      let file: TreeEntry;
      try {
        file = await linkedFile(input, entry);
      } catch (e) {
        if (!(e instanceof ObnamError && e.code === 'NOT_FOUND')) throw e;
        input.onWarning?.(show(path), `${e.message}; left out`);
        continue;
      }
      await writeFileMember(input, name, { ...file, ...pickMeta(entry) }, sink);
      written.set(entry.link!.toString('latin1'), name);
      continue;
    }
    const type = TAR_TYPES[entry.type]!;
    if (type === 'file') {
      await writeFileMember(input, name, entry, sink);
      if ((entry.nlink ?? 1) > 1) written.set(rel.toString('latin1'), name);
    } else {
      await sink(tarHeader(member(name, entry, type, 0)));
    }
  }
  await sink(TAR_END);
}

/** The metadata of a path (a hardlink's own), to put on content taken from another entry. */
function pickMeta(e: TreeEntry): Partial<TreeEntry> {
  return { mode: e.mode, uid: e.uid, gid: e.gid, user: e.user, group: e.group, mtime: e.mtime, xattrs: e.xattrs };
}

async function writeFileMember(input: DumpRun, name: Buffer, e: TreeEntry, sink: Sink): Promise<void> {
  await sink(tarHeader(member(name, e, 'file', e.size)));
  await writeContent(input, e, sink);
  const pad = padding(e.size);
  if (pad.length) await sink(pad);
}
