/**
 * Restores one large file in a worker thread: fetch, authenticate and
 * decompress its chunks (a few ahead of the writer), write them in order
 * with blocking writes, then apply the file's metadata through its fd. The
 * file is created in its parent directory as opened by TargetDirs (never
 * through a symlink); `path` is relative to the restore root.
 */
import { describeError, ObnamError } from '../errors.js';
import { chunkContent } from '../format/tree.js';
import type { ObjectReader } from '../repo/views.js';
import { fsops } from '../util/fsops.js';
import { acquireDirs, applyFdMetadata, createReplacing, releaseDirs, removeQuietly, RestoreMeta, RestoreRoot, writeAllSync } from './apply.js';

const FETCH_AHEAD = 4;

export interface RestoreFileResult {
  bytes: number;
  /** Metadata that could not be applied (the content is complete). */
  problems: string[];
}

export async function restoreFileContent(
  repo: ObjectReader,
  root: RestoreRoot,
  path: Uint8Array,
  /** [id, length] per chunk, and its content key in format version 3. */
  chunks: [string, number, Uint8Array?][],
  meta: RestoreMeta,
  owners: boolean,
  onProgress?: (bytes: number) => void,
): Promise<RestoreFileResult> {
  const dirs = acquireDirs(root);
  try {
    const { dir, name } = dirs.parent(path);
    let fd: number;
    try {
      fd = createReplacing(dir, name, () => fsops().createFile(dir, name, 0o600));
    } catch (e) {
      if (e instanceof ObnamError) throw e;
      throw new ObnamError('IO', `cannot create: ${describeError(e)}`);
    }
    const fetch = async (i: number): Promise<Uint8Array> => {
      const [id, length, key] = chunks[i]!;
      return chunkContent({ id, length }, await repo.getObject('chunk', id, { key }));
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
          writeAllSync(fd, data, written);
        } catch (e) {
          throw new ObnamError('IO', `cannot write: ${describeError(e)}`);
        }
        written += data.length;
        progress += data.length;
        if (progress >= 16 << 20) {
          onProgress?.(progress);
          progress = 0;
        }
      }
    } catch (e) {
      fsops().close(fd);
      try {
        const again = dirs.parent(path); // `dir` may have been closed while this task awaited chunks
        removeQuietly(again.dir, again.name);
      } catch {
        // the parent cannot be opened again: the failure below is reported anyway
      }
      throw e;
    }
    if (progress) onProgress?.(progress);
    try {
      return { bytes: written, problems: applyFdMetadata(fd, meta, owners) };
    } finally {
      fsops().close(fd);
    }
  } finally {
    releaseDirs(dirs);
  }
}
