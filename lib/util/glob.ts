/**
 * Exclude patterns, as restic and rsync users write them: `*` and `?` match
 * within one path component, `**` matches across components. A pattern with a
 * "/" is matched against the whole absolute path, one without against the
 * file's name alone.
 */

function toRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*';
        i++;
        if (pattern[i + 1] === '/') i++; // "**/" also matches no directory at all
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

export class ExcludeMatcher {
  private readonly byName: RegExp[] = [];
  private readonly byPath: RegExp[] = [];

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      const trimmed = p.length > 1 ? p.replace(/\/+$/, '') : p;
      if (trimmed.includes('/')) this.byPath.push(toRegExp(trimmed));
      else this.byName.push(toRegExp(trimmed));
    }
  }

  get empty(): boolean {
    return this.byName.length === 0 && this.byPath.length === 0;
  }

  matches(absPath: string, name: string): boolean {
    return this.byName.some((r) => r.test(name)) || this.byPath.some((r) => r.test(absPath));
  }
}
