/**
 * Restores one large file in a worker thread: fetch, authenticate and
 * decompress its chunks (a few ahead of the writer), write them in order
 * with blocking writes, then apply the file's metadata. The caller has made
 * sure `path` is inside the restore target.
 */
import * as fs from 'node:fs';
import { describeError, ObnamError } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import { applyMetadataSync, createReplacing, RestoreMeta } from './apply.js';

const FETCH_AHEAD = 4;

export interface RestoreFileResult {
  bytes: number;
  /** Metadata that could not be applied (the content is complete). */
  problems: string[];
}

export async function restoreFileContent(
  repo: Repository,
  path: Buffer,
  chunks: [string, number][],
  meta: RestoreMeta,
  owners: boolean,
  onProgress?: (bytes: number) => void,
): Promise<RestoreFileResult> {
  let fd: number;
  try {
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
    fd = await createReplacing(path, () => fs.openSync(path, flags, 0o600));
  } catch (e) {
    throw new ObnamError('IO', `cannot create ${path}: ${describeError(e)}`);
  }
  const fetch = async (i: number): Promise<Uint8Array> => {
    const [id, length] = chunks[i]!;
    const data = await repo.getObject('chunk', id);
    if (data.length !== length) throw new ObnamError('CORRUPT', `chunk ${id}: ${data.length} bytes, the tree says ${length}`);
    return data;
  };
  const ahead: Promise<Uint8Array>[] = [];
  let written = 0;
  let progress = 0;
  try {
    let next = 0;
    for (let i = 0; i < chunks.length; i++) {
      while (next < chunks.length && next < i + FETCH_AHEAD) {
        const p = fetch(next++);
        p.catch(() => undefined); // surfaced when awaited, in order, below
        ahead.push(p);
      }
      const data = await ahead.shift()!;
      try {
        let off = 0;
        while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, written + off);
      } catch (e) {
        throw new ObnamError('IO', `cannot write ${path}: ${describeError(e)}`);
      }
      written += data.length;
      progress += data.length;
      if (progress >= 16 << 20) {
        onProgress?.(progress);
        progress = 0;
      }
    }
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(path, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  if (progress) onProgress?.(progress);
  return { bytes: written, problems: applyMetadataSync(path, meta, false, owners) };
}
