/**
 * What the Debian package's build and npm run test:deb rely on to keep the
 * package honest, on this checkout: the copyright file made from the
 * production dependencies is in Debian's machine-readable format (every
 * bundled package named, every license with its text) and the format check
 * finds each kind of defect; the contents check finds a dev-only package in a
 * listing and passes the production dependencies.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bundledPackages, notProductionIn } from '../packaging/contents.js';
import { dep5Problems, makeCopyright } from '../packaging/copyright.js';
import { productionPackages } from '../packaging/stage.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A `dpkg-deb -c` line for a path of the package. */
const entry = (p: string) => `-rw-r--r-- root/root      1234 2026-12-01 18:00 ./${p}`;

describe('the package copyright file (DEP-5)', () => {
  const packages = productionPackages(ROOT);
  const text = makeCopyright({ appDir: ROOT, appRel: 'usr/lib/obnam', packages });

  it('made from the production dependencies, it is well formed and names every bundled package', () => {
    assert.deepEqual(dep5Problems(text), []);
    assert.ok(packages.length > 20, `${packages.length} production packages`);
    for (const p of packages) assert.ok(text.includes(`\nFiles: usr/lib/obnam/${p}/*\n`), `${p} has no Files paragraph`);
    assert.match(text, /^Files: \*\nCopyright: the obnam developers\nLicense: GPL-3\+$/m);
    assert.match(text, /^Files: usr\/lib\/obnam\/node$/m);
  });

  it('the format check finds a missing Format, Copyright, license text, an unused license and a bad line', () => {
    const cases: [string, RegExp][] = [
      [text.replace(/^Format: .*\n/, ''), /no Format/],
      [text.replace(/^Copyright: the obnam developers\n/m, ''), /Files \* has no Copyright/],
      [text.replace(/\n\nLicense: GPL-3\+\n(?: .*\n)+/, '\n\n'), /License GPL-3\+ has no text and no standalone License paragraph/],
      [`${text}\nLicense: Unused-1.0\n Some text.\n`, /License Unused-1\.0 is defined but no Files paragraph uses it/],
      [text.replace(/^Files: \*$/m, 'Files: *\nnot a field'), /not a field/],
      [text.replace(/^Files: \*\n/m, 'Files: *\nFiles: again\n'), /Files twice/],
    ];
    for (const [bad, problem] of cases) {
      assert.notEqual(bad, text, `${problem}: the defect was not made`);
      assert.ok(dep5Problems(bad).some((p) => problem.test(p)), `${problem}: ${dep5Problems(bad).join('; ')}`);
    }
  });
});

describe('the package contents check', () => {
  it('finds bundled packages at any depth, scoped or not', () => {
    const listing = [
      'drwxr-xr-x root/root         0 2026-12-01 18:00 ./usr/lib/obnam/node_modules/',
      entry('usr/lib/obnam/node_modules/yargs/index.mjs'),
      entry('usr/lib/obnam/node_modules/@noble/curves/ed25519.js'),
      entry('usr/lib/obnam/node_modules/a/node_modules/@s/b/x.js'),
      entry('usr/lib/obnam/node_modules/.bin/tsc'),
      entry('usr/lib/obnam/dist/cli/main.js'),
    ].join('\n');
    assert.deepEqual([...bundledPackages(listing)].sort(), ['node_modules/@noble/curves', 'node_modules/a/node_modules/@s/b', 'node_modules/yargs'].sort());
  });

  it('passes every production dependency and refuses dev-only and unknown packages', () => {
    const prod = productionPackages(ROOT).map((p) => entry(`usr/lib/obnam/${p}/package.json`));
    assert.deepEqual(notProductionIn(ROOT, prod.join('\n')), []);
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const dev = Object.keys(lock.packages).filter((p) => lock.packages[p]!.dev);
    assert.ok(dev.includes('node_modules/typescript') && dev.includes('node_modules/s3rver'));
    const bad = [...prod, ...dev.map((p) => entry(`usr/lib/obnam/${p}/package.json`)), entry('usr/lib/obnam/node_modules/not-in-the-lock/index.js')];
    assert.deepEqual(notProductionIn(ROOT, bad.join('\n')), [...dev, 'node_modules/not-in-the-lock'].sort());
  });
});
