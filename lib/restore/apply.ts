/**
 * Creating restored entries and applying their metadata, in a worker thread.
 * Creating an inode is slow (about a millisecond on ext4 here) but overlaps
 * well, so creation goes through the async thread pool, several at a time;
 * the cheap calls (lstat, chown, chmod, utimes) block, which costs less than
 * Node's async hand-off (see lib/backup/inspect.ts). Order per entry:
 * content, owner (which clears set-id bits), xattrs, mode, then times.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { setAttributeSync } from 'fs-xattr';
import { describeError, errnoCode } from '../errors.js';

export interface RestoreMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: { sec: number; nsec: number };
  xattrs?: [Uint8Array, Uint8Array][];
}

export type RestoreItem =
  | { type: 'file'; path: Uint8Array; data: Uint8Array; meta: RestoreMeta }
  | { type: 'symlink'; path: Uint8Array; target: Uint8Array; meta: RestoreMeta }
  | { type: 'fifo'; path: Uint8Array; meta: RestoreMeta }
  | { type: 'chardev' | 'blockdev'; path: Uint8Array; rdev: number; meta: RestoreMeta }
  | { type: 'hardlink'; path: Uint8Array; target: Uint8Array }
  | { type: 'dirmeta'; path: Uint8Array; meta: RestoreMeta };

/** Per item: undefined when all went well, else the messages of what failed. */
export type RestoreItemResult = string[] | undefined;

/** Removes a non-directory in the way of a new entry (restore overwrites, as restic does). */
export function replaceSync(p: Buffer): void {
  try {
    if (fs.lstatSync(p).isDirectory()) throw new Error(`${p} exists and is a directory`);
    fs.unlinkSync(p);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}

/** Applies owner, xattrs, mode and mtime; returns what could not be applied. */
export function applyMetadataSync(p: Buffer, meta: RestoreMeta, isLink: boolean, owners: boolean): string[] {
  const problems: string[] = [];
  if (owners) {
    try {
      fs.lchownSync(p, meta.uid, meta.gid);
    } catch (e) {
      problems.push(`cannot set owner: ${describeError(e)}`);
    }
  }
  if (meta.xattrs && !isLink) {
    const str = p.toString('utf8');
    for (const [name, value] of meta.xattrs) {
      try {
        setAttributeSync(str, Buffer.from(name).toString('utf8'), Buffer.from(value));
      } catch (e) {
        problems.push(`cannot set xattr ${Buffer.from(name).toString()}: ${describeError(e)}`);
      }
    }
  }
  // Seconds as a double keep sub-microsecond precision for current dates.
  const t = meta.mtime.sec + meta.mtime.nsec / 1e9;
  try {
    if (isLink) fs.lutimesSync(p, t, t);
    else {
      fs.chmodSync(p, meta.mode & 0o7777);
      fs.utimesSync(p, t, t);
    }
  } catch (e) {
    problems.push(`cannot set mode or time: ${describeError(e)}`);
  }
  return problems;
}

function devNumbers(rdev: number): [number, number] {
  const r = BigInt(rdev);
  return [Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), Number((r & 0xffn) | ((r >> 12n) & ~0xffn))];
}

const CREATE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/** Runs `fn` on every item, at most `limit` at a time, results in order. */
async function mapLimited<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}

/** Creates `p` (which must not exist) with `data`, through the thread pool. */
export async function createFile(p: Buffer, data: Uint8Array): Promise<void> {
  const fh = await fsp.open(p, CREATE, 0o600);
  try {
    if (data.length) await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}

async function restoreOne(item: RestoreItem, owners: boolean): Promise<string[]> {
  const p = Buffer.from(item.path);
  switch (item.type) {
    case 'dirmeta':
      return applyMetadataSync(p, item.meta, false, owners);
    case 'hardlink':
      replaceSync(p);
      fs.linkSync(Buffer.from(item.target), p);
      return [];
    case 'file': {
      replaceSync(p);
      await createFile(p, item.data);
      return applyMetadataSync(p, item.meta, false, owners);
    }
    case 'symlink':
      replaceSync(p);
      await fsp.symlink(Buffer.from(item.target), p);
      return applyMetadataSync(p, item.meta, true, owners);
    case 'fifo':
      replaceSync(p);
      execFileSync('mkfifo', ['-m', (item.meta.mode & 0o777).toString(8), '--', p.toString('utf8')]);
      return applyMetadataSync(p, item.meta, false, owners);
    case 'chardev':
    case 'blockdev': {
      replaceSync(p);
      const [major, minor] = devNumbers(item.rdev);
      execFileSync('mknod', ['--', p.toString('utf8'), item.type === 'chardev' ? 'c' : 'b', String(major), String(minor)]);
      return applyMetadataSync(p, item.meta, false, owners);
    }
  }
}

/** Restores a batch of small entries, several at a time; never throws for one entry's failure. */
export function restoreItems(items: RestoreItem[], owners: boolean): Promise<RestoreItemResult[]> {
  return mapLimited(items, CREATE_CONCURRENCY, async (item) => {
    try {
      const problems = await restoreOne(item, owners);
      return problems.length ? problems : undefined;
    } catch (e) {
      return [describeError(e)];
    }
  });
}

/** Creations in flight per batch (they wait on the disk, not the CPU). */
const CREATE_CONCURRENCY = 8;
