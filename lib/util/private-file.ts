/**
 * Small private files (mode 0600, in a directory made 0700 if it is created)
 * written atomically: a new temporary file in the same directory, fsynced,
 * then linked to its name (refusing an existing one) or renamed over it after
 * the old file was linked to a backup name. A crash leaves the old file or
 * the new one under the name, never a partial file.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errnoCode, ObnamError } from '../errors.js';

export interface WritePrivateFileOptions {
  /** If the file exists: keep it under this name (in the same directory) and replace it; otherwise refuse. */
  backupName?: string;
  /** The error thrown when the file exists and no backupName is given. */
  existsError?: () => ObnamError;
}

function ioError(what: string, e: unknown): ObnamError {
  return new ObnamError('IO', `${what}: ${(e as Error).message}`, { cause: e });
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `bytes` to `file`; returns the backup path if an existing file was kept under it. */
export async function writePrivateFile(file: string, bytes: Uint8Array, opts: WritePrivateFileOptions = {}): Promise<{ backup?: string }> {
  const dir = path.dirname(file);
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError(`cannot create ${dir}`, e);
  }
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${randomBytes(8).toString('hex')}`);
  try {
    const fh = await fs.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw ioError(`cannot write ${tmp}`, e);
  }
  let backup: string | undefined;
  try {
    try {
      await fs.link(tmp, file);
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw ioError(`cannot create ${file}`, e);
      if (!opts.backupName) throw opts.existsError?.() ?? new ObnamError('IO', `${file} already exists`);
      backup = path.join(dir, opts.backupName);
      try {
        await fs.link(file, backup);
      } catch (e2) {
        throw ioError(`cannot keep the existing ${file} as ${backup}`, e2);
      }
      try {
        await fs.rename(tmp, file);
      } catch (e2) {
        throw ioError(`cannot replace ${file}`, e2);
      }
    }
  } finally {
    await fs.rm(tmp, { force: true });
  }
  await fsyncDir(dir).catch((e) => {
    throw ioError(`cannot sync ${dir}`, e);
  });
  return backup ? { backup } : {};
}

/** The bytes of a file of at most `max` bytes; undefined if it does not exist. */
export async function readSmallFile(file: string, max: number, what: string): Promise<Uint8Array | undefined> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw ioError(`cannot read ${what} ${file}`, e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ObnamError('USAGE', `${what} ${file} is not a regular file`);
    if (st.size > max) throw new ObnamError('CORRUPT', `${what} ${file} is ${st.size} bytes, larger than any ${what} (${max} bytes)`);
    return new Uint8Array(await fh.readFile());
  } catch (e) {
    if (e instanceof ObnamError) throw e;
    throw ioError(`cannot read ${what} ${file}`, e);
  } finally {
    await fh.close();
  }
}
