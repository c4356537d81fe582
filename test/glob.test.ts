/**
 * Exclude patterns (lib/util/glob.ts) mean what they mean to restic: each
 * expectation below is what restic 0.14 left out of a backup of the same
 * tree with the same --exclude (a path is left out when it or a directory
 * above it matches, since a backup does not enter an excluded directory).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObnamError } from '../lib/errors.js';
import { ExcludeMatcher } from '../lib/util/glob.js';

const TREE = [
  'a', 'a/b', 'a/b/c', 'a/b/c/z', 'a/b/keep', 'a/z', 'f.c', 'f.h', 'f.o', 'k', 'k/ab', 'k/axxb',
  'lit*', 'litx', 'xb', 'xb/z', 'xz', 'z',
].map((p) => `/src/${p}`);

/** The paths of TREE a backup of /src leaves out with these patterns. */
function leftOut(patterns: string[]): string[] {
  const m = new ExcludeMatcher(patterns);
  const excluded = (p: string): boolean => {
    for (let i = p.indexOf('/', 1); i !== -1; i = p.indexOf('/', i + 1)) if (m.matches(p.slice(0, i))) return true;
    return m.matches(p);
  };
  return TREE.filter(excluded).map((p) => p.slice('/src/'.length));
}

describe('exclude patterns, as restic reads them', () => {
  const cases: [string, string[]][] = [
    ['*.[ch]', ['f.c', 'f.h']],
    ['[^f]*.o', []],
    ['a/b', ['a/b', 'a/b/c', 'a/b/c/z', 'a/b/keep']],
    ['src/a/b/c', ['a/b/c', 'a/b/c/z']],
    ['a/*/c', ['a/b/c', 'a/b/c/z']],
    ['/src/**/z', ['a/b/c/z', 'a/z', 'xb/z', 'z']],
    ['**/z', ['a/b/c/z', 'a/z', 'xb/z', 'z']],
    ['lit\\*', ['lit*']],
    ['k/a**b', ['k/ab', 'k/axxb']],
    ['z', ['a/b/c/z', 'a/z', 'xb/z', 'z']],
    ['x?', ['xb', 'xb/z', 'xz']],
    ['/src/a/', ['a', 'a/b', 'a/b/c', 'a/b/c/z', 'a/b/keep', 'a/z']],
    ['/a', []],
  ];
  for (const [pattern, expected] of cases) {
    it(`${pattern} leaves out ${expected.join(', ') || 'nothing'}`, () => {
      assert.deepEqual(leftOut([pattern]), expected);
    });
  }

  it('** is whole components only, and within a component is *', () => {
    const m = new ExcludeMatcher(['/src/**/z', '/top/**']);
    assert.equal(m.matches('/src/xz'), false);
    assert.equal(m.matches('/src/x/yz'), false);
    assert.equal(m.matches('/src/x/y/z'), true);
    assert.equal(m.matches('/top/any/thing'), true);
    assert.equal(new ExcludeMatcher(['/src/a**']).matches('/src/a/b'), false);
    // In a class, a backslash makes "]" and "-" members (Go's filepath.Match).
    const cls = new ExcludeMatcher(['/src/[\\]\\-]']);
    assert.deepEqual(['/src/]', '/src/-', '/src/a'].map((p) => cls.matches(p)), [true, true, false]);
  });

  it('a malformed pattern is a usage error, as restic refuses it', () => {
    for (const bad of ['[]', 'a[', '[z-a]', 'x\\', '[a-]']) {
      assert.throws(
        () => new ExcludeMatcher([bad]),
        (e: unknown) => e instanceof ObnamError && e.code === 'USAGE' && e.message === `exclude pattern ${JSON.stringify(bad)}: malformed`,
        bad,
      );
    }
  });
});
