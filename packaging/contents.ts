/**
 * What the package's listing (`dpkg-deb -c`) says about its npm packages:
 * which node_modules packages it bundles, and which of them are not
 * production dependencies in package-lock.json (dev-only, or not in the lock
 * at all). npm run test:deb fails on any: the dev toolchain (TypeScript,
 * s3rver and its web framework, fast-check, type declarations) must stay out.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The app directory's node_modules in a `dpkg-deb -c` listing. */
const MODULES = './usr/lib/obnam/node_modules/';

/**
 * The package directories (`node_modules/a`, `node_modules/@s/b/node_modules/c`)
 * that hold the listed paths below /usr/lib/obnam/node_modules.
 */
export function bundledPackages(listing: string): Set<string> {
  const out = new Set<string>();
  for (const line of listing.split('\n')) {
    const at = line.indexOf(MODULES);
    if (at < 0) continue;
    const rel = 'node_modules/' + line.slice(at + MODULES.length).split(' -> ')[0]!;
    // The deepest node_modules/NAME or node_modules/@SCOPE/NAME the path is in.
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/@.][^/]*)(?:\/|$)/.exec(rel);
    if (m) out.add(m[1]!);
  }
  return out;
}

interface LockEntry {
  dev?: boolean;
}

/** The bundled packages package-lock.json marks dev, or does not know. */
export function notProduction(bundled: Iterable<string>, lockFile: string): string[] {
  const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as { packages: Record<string, LockEntry> };
  return [...bundled].filter((p) => !lock.packages[p] || lock.packages[p]!.dev === true).sort();
}

/** notProduction for the lock of the checkout at `root`. */
export function notProductionIn(root: string, listing: string): string[] {
  return notProduction(bundledPackages(listing), path.join(root, 'package-lock.json'));
}
