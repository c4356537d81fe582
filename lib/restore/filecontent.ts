/**
 * Restores one file's content: fetch, authenticate and decompress its chunks
 * (a few ahead of the writer) and write them in order. Runs inside a worker
 * thread. The caller has already made sure `path` is inside the restore target.
 */
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import { ObnamError, throwIfAborted } from '../errors.js';
import type { Repository } from '../repo/repository.js';

const FETCH_AHEAD = 4;

export async function restoreFileContent(
  repo: Repository,
  path: Buffer,
  chunks: [string, number][],
  onProgress?: (bytes: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new ObnamError('IO', `cannot create ${path}: ${(e as Error).message}`);
  }
  const fetch = async (i: number): Promise<Uint8Array> => {
    const [id, length] = chunks[i]!;
    const data = await repo.getObject('chunk', id, { signal });
    if (data.length !== length) throw new ObnamError('CORRUPT', `chunk ${id}: ${data.length} bytes, the tree says ${length}`);
    return data;
  };
  const ahead: Promise<Uint8Array>[] = [];
  let written = 0;
  try {
    let next = 0;
    for (let i = 0; i < chunks.length; i++) {
      while (next < chunks.length && next < i + FETCH_AHEAD) {
        const p = fetch(next++);
        p.catch(() => undefined); // surfaced when awaited in order below
        ahead.push(p);
      }
      throwIfAborted(signal);
      const data = await ahead.shift()!;
      try {
        await fh.write(data, 0, data.length, written);
      } catch (e) {
        throw new ObnamError('IO', `cannot write ${path}: ${(e as Error).message}`);
      }
      written += data.length;
      onProgress?.(data.length);
    }
  } finally {
    await fh.close();
  }
  return written;
}
