/**
 * Creating restored entries and applying their metadata, in a worker thread,
 * with blocking calls: they cost less than Node's async hand-off (see
 * lib/backup/inspect.ts), and the pool's workers run side by side. Entries
 * are created with O_EXCL (or link/symlink, which fail likewise) and only
 * if something is in the way is it looked at and removed. Order per entry:
 * content, owner (which clears set-id bits), xattrs, mode, then times.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
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


/**
 * Runs `create` (which fails with EEXIST if something is at `p`); if it does,
 * removes what is in the way (never a directory) and tries once more. A fresh
 * target costs no extra lookup per entry.
 */
export async function createReplacing<T>(p: Buffer, create: () => T | Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
    replaceSync(p);
    return await create();
  }
}

/** Creates the file `p` (which must not exist) with `data`. */
export function createFileSync(p: Buffer, data: Uint8Array): void {
  const fd = fs.openSync(p, CREATE, 0o600);
  try {
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
  } finally {
    fs.closeSync(fd);
  }
}



async function restoreOne(item: RestoreItem, owners: boolean): Promise<string[]> {
  const p = Buffer.from(item.path);
  switch (item.type) {
    case 'dirmeta':
      return applyMetadataSync(p, item.meta, false, owners);
    case 'hardlink':
      await createReplacing(p, () => fs.linkSync(Buffer.from(item.target), p));
      return [];
    case 'file':
      await createReplacing(p, () => createFileSync(p, item.data));
      return applyMetadataSync(p, item.meta, false, owners);
    case 'symlink':
      await createReplacing(p, () => fs.symlinkSync(Buffer.from(item.target), p));
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

/** Restores a batch of small entries; never throws for one entry's failure. */
export async function restoreItems(items: RestoreItem[], owners: boolean): Promise<RestoreItemResult[]> {
  const out: RestoreItemResult[] = [];
  for (const item of items) {
    try {
      const problems = await restoreOne(item, owners);
      out.push(problems.length ? problems : undefined);
    } catch (e) {
      out.push([describeError(e)]);
    }
  }
  return out;
}
