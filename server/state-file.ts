/**
 * Writing the server's small state files (clients.json, namespaces.json):
 * atomically (a private temporary file, fsync, rename) and under a lock file
 * beside them, so that two admin commands never lose each other's change.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { errnoCode, ObnamError } from '../lib/errors.js';

/** Replaces `file` with `value` as indented JSON, mode 0600, durably. */
export async function writeJsonFile(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await fs.open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(JSON.stringify(value, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
}

/** Runs `fn` holding FILE.lock; `holder` names who else would hold it, for the message when it stays taken. */
export async function withFileLock<T>(file: string, holder: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  for (let i = 0; ; i++) {
    try {
      await (await fs.open(lock, 'wx', 0o600)).close();
      break;
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw new ObnamError('IO', `cannot create ${lock}: ${(e as Error).message}`);
      if (i >= 250) throw new ObnamError('IO', `${lock} exists: ${holder} is running (remove the file if none is)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { force: true });
  }
}
