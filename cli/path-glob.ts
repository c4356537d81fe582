/**
 * The patterns of a --files-from list, expanded as restic expands them (Go's
 * filepath.Glob): each component's pattern as lib/util/glob.ts reads it
 * (`*`, `?`, `[a-z]`, `[^a-z]`, backslash escapes; no `**`). A pattern
 * without these is the path itself, if something is there. Matches come in
 * name order, each directory level sorted.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { componentRegExp } from '../lib/util/glob.js';

const hasMeta = (p: string) => /[*?[\\]/.test(p);

const exists = (p: string) => fs.lstat(p).then(() => true, () => false);

async function isDirectory(p: string): Promise<boolean> {
  return (await fs.stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/** The names in `dir` that match one component's pattern, joined to `dir`. */
async function matchIn(dir: string, re: RegExp): Promise<string[]> {
  if (!(await isDirectory(dir))) return [];
  const names = await fs.readdir(dir, { encoding: 'buffer' }).catch(() => [] as Buffer[]);
  const out: string[] = [];
  for (const raw of names.sort(Buffer.compare)) {
    const name = raw.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(raw)) continue; // paths are given as text: a name that is not UTF-8 cannot be one
    if (re.test(name)) out.push(dir === '.' ? name : path.join(dir, name));
  }
  return out;
}

/** The paths a pattern names (none if nothing matches). */
export async function expandPathPattern(pattern: string): Promise<string[]> {
  if (!hasMeta(pattern)) return (await exists(pattern)) ? [pattern] : [];
  const slash = pattern.lastIndexOf('/');
  let dir = slash < 0 ? '.' : pattern.slice(0, slash + 1);
  const last = pattern.slice(slash + 1);
  if (dir.length > 1) dir = dir.slice(0, -1);
  const re = componentRegExp(last, pattern, '--files-from pattern'); // checked even where nothing is listed
  if (!hasMeta(dir)) return matchIn(dir, re);
  const out: string[] = [];
  for (const d of await expandPathPattern(dir)) out.push(...(await matchIn(d, re)));
  return out;
}
