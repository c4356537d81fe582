/**
 * Opening a test repository with the library, to find and damage the
 * objects behind a given file or directory.
 */
import * as fs from 'node:fs/promises';
import { Repository } from '../../lib/repo/repository.js';
import { resolvePath, snapshotPathComponents } from '../../lib/repo/treewalk.js';
import { LocalStore } from '../../lib/store/local.js';
import type { TreeEntry } from '../../lib/format/tree.js';

export async function openTestRepo(dir: string, passphrase: string): Promise<Repository> {
  const store = await LocalStore.open(dir);
  return Repository.open(store, passphrase);
}

/** The entry for an absolute path in the latest snapshot. */
export async function entryAt(repo: Repository, path: string): Promise<TreeEntry> {
  const snaps = await repo.listSnapshots();
  const { entry } = await resolvePath((id) => repo.getTree(id), snaps[snaps.length - 1]!.tree, snapshotPathComponents(path));
  if (!entry) throw new Error(`no entry at ${path}`);
  return entry;
}

/** Where an object's bytes are on disk. */
export function locate(repo: Repository, kind: 'tree' | 'chunk', id: string): { file: string; offset: number; length: number } {
  const loc = (Repository.storeForTests(repo) as LocalStore).locate(kind, id);
  if (!loc) throw new Error(`${kind} ${id} is not in a pack`);
  return loc;
}

/** Flips one bit of an object in its pack. */
export async function flipByte(repo: Repository, kind: 'tree' | 'chunk', id: string, at = 0.5): Promise<void> {
  const loc = locate(repo, kind, id);
  await flipByteInFile(loc.file, loc.offset + Math.floor(loc.length * at));
}

/** Flips one bit of the byte at `pos` of a file. */
export async function flipByteInFile(file: string, pos: number): Promise<void> {
  const fh = await fs.open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, pos);
    b[0]! ^= 0x10;
    await fh.write(b, 0, 1, pos);
  } finally {
    await fh.close();
  }
}
