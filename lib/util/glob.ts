/**
 * Glob patterns as restic reads them. Within one path component (Go's
 * filepath.Match): `*` is any run of characters, `?` one character, `[abc]`,
 * `[a-z]` and `[^a-z]` a character class, and a backslash makes the next
 * character literal; leading dots are not special. Exclude patterns add:
 * a component `**` is any number of components (none too); a pattern
 * starting with "/" is matched against the whole absolute path, and any
 * other pattern against the path's last components (a name, or `a/b` at any
 * depth). A trailing "/" is ignored.
 */
import { ObnamError } from '../errors.js';

const literal = (c: string) => `\\u{${c.codePointAt(0)!.toString(16)}}`;

/**
 * One component's pattern as a regular expression source (no anchors).
 * A malformed pattern (`[a`, `[]`, `[z-a]`, a trailing backslash) is a
 * usage error naming `whole`.
 */
export function componentRegExpSource(pattern: string, whole: string, what: string): string {
  const bad = () => new ObnamError('USAGE', `${what} ${JSON.stringify(whole)}: malformed`);
  const chars = [...pattern];
  let re = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (i + 1 >= chars.length) throw bad();
      re += literal(chars[++i]!);
    } else if (c === '[') {
      let cls = '';
      i++;
      if (chars[i] === '^') {
        cls += '^/';
        i++;
      }
      const one = () => {
        let ch = chars[i++];
        if (ch === undefined || ch === ']' || ch === '-') throw bad();
        if (ch === '\\') ch = chars[i++];
        if (ch === undefined) throw bad();
        return ch;
      };
      for (let items = 0; ; items++) {
        if (i >= chars.length) throw bad();
        if (chars[i] === ']' && items > 0) break;
        const lo = one();
        if (chars[i] === '-') {
          i++;
          const hi = one();
          if (hi.codePointAt(0)! < lo.codePointAt(0)!) throw bad();
          cls += `${literal(lo)}-${literal(hi)}`;
        } else cls += literal(lo);
      }
      re += `[${cls}]`;
    } else re += literal(c);
  }
  return re;
}

/** A RegExp that matches one path component (a name) against its pattern. */
export function componentRegExp(pattern: string, whole: string, what: string): RegExp {
  return new RegExp(`^${componentRegExpSource(pattern, whole, what)}$`, 'su');
}

/** A whole exclude pattern as a RegExp on absolute paths. */
function excludeRegExp(pattern: string): RegExp {
  const trimmed = pattern.length > 1 ? pattern.replace(/\/+$/, '') : pattern;
  const absolute = trimmed.startsWith('/');
  const parts = (absolute ? trimmed.slice(1) : trimmed).split('/');
  // A relative pattern matches at any depth: as if it began with "/**/".
  let re = absolute ? '/' : '/(?:[^/]*/)*';
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    if (part === '**') re += last ? '.*' : '(?:[^/]*/)*';
    else re += componentRegExpSource(part, pattern, 'exclude pattern') + (last ? '' : '/');
  });
  return new RegExp(`^${re}$`, 'su');
}

export class ExcludeMatcher {
  private readonly patterns: RegExp[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.filter((p) => p !== '').map(excludeRegExp);
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** Whether an absolute path is excluded. */
  matches(absPath: string): boolean {
    return this.patterns.some((r) => r.test(absPath));
  }
}
