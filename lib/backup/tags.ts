/**
 * Directories excluded by a tag file inside them (restic's and borg's
 * --exclude-if-present and --exclude-caches): a directory holding a file of a
 * given name, beginning with a given header if one is set, is backed up as
 * the directory itself and the tag file alone; the rest of its contents is
 * left out. Cache directories are tagged by the Cache Directory Tagging
 * Specification: a file CACHEDIR.TAG that begins with CACHEDIR_SIGNATURE.
 */
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import { ObnamError } from '../errors.js';
import { childPath } from './inspect.js';

export interface TagRule {
  /** The tag file's name (no "/"). */
  name: string;
  /** If set, the tag file must be a regular file beginning with these bytes. */
  header?: Buffer;
}

export const CACHEDIR_TAG = 'CACHEDIR.TAG';
export const CACHEDIR_SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';

/** The rule for cache directories (CACHEDIR.TAG with its signature). */
export function cacheDirRule(): TagRule {
  return { name: CACHEDIR_TAG, header: Buffer.from(CACHEDIR_SIGNATURE) };
}

/** Parses restic's spelling NAME[:HEADER]. */
export function parseTagRule(spec: string): TagRule {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const header = colon < 0 ? undefined : spec.slice(colon + 1);
  if (!name || name === '.' || name === '..' || name.includes('/')) {
    throw new ObnamError('USAGE', `--exclude-if-present ${JSON.stringify(spec)}: expected a file name, optionally followed by :HEADER`);
  }
  return header ? { name, header: Buffer.from(header) } : { name };
}

/**
 * The tag files among a directory's names that exclude its contents, or
 * undefined if none does. A tag file that cannot be read does not count
 * (reading it as a file then reports the problem).
 */
export async function findTags(dir: Buffer, names: readonly Buffer[], rules: readonly TagRule[]): Promise<Buffer[] | undefined> {
  let found: Buffer[] | undefined;
  for (const rule of rules) {
    const want = Buffer.from(rule.name);
    const name = names.find((n) => n.equals(want));
    if (!name || found?.some((f) => f.equals(name))) continue;
    if (rule.header && !(await beginsWith(childPath(dir, name), rule.header))) continue;
    (found ??= []).push(name);
  }
  return found;
}

async function beginsWith(file: Buffer, header: Buffer): Promise<boolean> {
  let fh: fs.FileHandle | undefined;
  try {
    // Not through symlinks, and without blocking on a fifo of that name.
    fh = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    if (!(await fh.stat()).isFile()) return false;
    const buf = Buffer.alloc(header.length);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === header.length && buf.equals(header);
  } catch {
    return false;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
