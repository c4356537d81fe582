/**
 * The patterns of a --files-from list, expanded as restic expands them (Go's
 * filepath.Glob): `*` is any run of characters within one path component,
 * `?` one character, `[abc]`, `[a-z]` and `[^a-z]` a character class, and a
 * backslash makes the next character literal. Leading dots are not special.
 * A pattern without these is the path itself, if something is there. Matches
 * come in name order, each directory level sorted.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ObnamError } from '../lib/errors.js';

const hasMeta = (p: string) => /[*?[\\]/.test(p);

/** A regular expression for one path component's pattern; a malformed one (`[a`, `a\`) is a usage error. */
function componentRegExp(pattern: string, whole: string): RegExp {
  const bad = () => new ObnamError('USAGE', `--files-from pattern ${JSON.stringify(whole)}: malformed`);
  const lit = (c: string) => `\\u{${c.codePointAt(0)!.toString(16)}}`;
  const chars = [...pattern];
  let re = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (i + 1 >= chars.length) throw bad();
      re += lit(chars[++i]!);
    } else if (c === '[') {
      let cls = '';
      i++;
      if (chars[i] === '^') {
        cls += '^';
        i++;
      }
      let items = 0;
      for (;;) {
        if (i >= chars.length) throw bad();
        if (chars[i] === ']' && items > 0) break;
        const one = () => {
          let ch = chars[i++];
          if (ch === '\\') ch = chars[i++];
          if (ch === undefined || ch === ']' || ch === '-') throw bad();
          return ch;
        };
        const lo = one();
        if (chars[i] === '-') {
          i++;
          const hi = one();
          if (hi.codePointAt(0)! < lo.codePointAt(0)!) throw bad();
          cls += `${lit(lo)}-${lit(hi)}`;
        } else cls += lit(lo);
        items++;
      }
      re += `[${cls}]`;
    } else re += lit(c);
  }
  return new RegExp(`^${re}$`, 'su');
}

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
  const re = componentRegExp(last, pattern); // checked even where nothing is listed
  if (!hasMeta(dir)) return matchIn(dir, re);
  const out: string[] = [];
  for (const d of await expandPathPattern(dir)) out.push(...(await matchIn(d, re)));
  return out;
}
