/**
 * The few file operations LocalStore needs for durable, atomic writes:
 * create-and-fsync, link without replacing, fsync a directory. LocalStore
 * runs on event loops that must not block (the CLI's main thread, the
 * server), so all of them are asynchronous.
 */
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import { errnoCode, ObnamError } from '../errors.js';

const CREATE = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL;

function linkFallback(code: string | undefined): boolean {
  // File systems without hard links: rename, which replaces an object that
  // appeared meanwhile with an equally valid copy of itself.
  return code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP';
}

/**
 * Writes every byte of `parts` at `position`. A short write (a disk filling
 * up) is continued from where it stopped, so that the next write reports
 * the error; it never passes for a whole one.
 */
export async function writeAll(fh: fs.FileHandle, parts: readonly Uint8Array[], position: number): Promise<void> {
  const total = parts.reduce((n, p) => n + p.length, 0);
  let done = (await fh.writev(parts as Uint8Array[], position)).bytesWritten;
  if (done >= total) return;
  const all = Buffer.concat(parts);
  while (done < total) {
    const { bytesWritten } = await fh.write(all, done, total - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error('no space left on the device (short write)'), { code: 'ENOSPC' });
    done += bytesWritten;
  }
}

/** Creates `file` (which must not exist) with these bytes and fsyncs it. */
export async function writeDurable(file: string, parts: Uint8Array[]): Promise<void> {
  const fh = await fs.open(file, CREATE, 0o600);
  try {
    await writeAll(fh, parts, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Gives `tmp` the name `final` unless `final` exists; returns whether it did. */
export async function linkNoReplace(tmp: string, final: string): Promise<boolean> {
  try {
    await fs.link(tmp, final);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') return false;
    if (!linkFallback(errnoCode(e))) throw e;
    await fs.rename(tmp, final);
    return true;
  }
}

export const readFile = (file: string): Promise<Buffer> => fs.readFile(file);

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}

export async function unlink(file: string, ignoreMissing = false): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (e) {
    if (!(ignoreMissing && errnoCode(e) === 'ENOENT')) throw e;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A file system failure as an ObnamError: NO_SPACE for a full disk or quota, IO otherwise. */
export function ioError(e: unknown, what: string): ObnamError {
  if (e instanceof ObnamError) return e;
  const code = errnoCode(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') return new ObnamError('NO_SPACE', `${what}: no space left on the device`);
  return new ObnamError('IO', `${what}: ${(e as Error).message}`);
}
