/**
 * The application tree of the Debian package, /usr/lib/obnam: the compiled
 * JavaScript (dist/lib, cli, server, mount; no tests, benchmarks or source
 * maps), the launchers, the production dependencies only (the packages
 * package-lock.json does not mark dev, copied from the checkout's
 * node_modules, where `npm ci` built their native parts: the patched
 * fuse-native among them), the native/ helpers if the checkout has them, and
 * the Node.js runtime that built those native parts.
 *
 * Copies leave out what runs nowhere: C sources and build intermediates,
 * TypeScript sources and declarations, prebuilt binaries for other systems
 * (and fuse-native's unpatched prebuilds, so its patched build is loaded),
 * fuse-shared-library's bundled libfuse (the system's libfuse2 is used).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from './run.js';

/** The application's directory once installed. */
export const APP_DIR = '/usr/lib/obnam';

interface LockEntry {
  dev?: boolean;
  optional?: boolean;
  version?: string;
  license?: string;
}

/** Type declarations only (zstd-napi depends on @types/node), and fuse-shared-library's builds for other systems. */
const NOT_RUN = ['@types/node', 'undici-types', 'fuse-shared-library-darwin', 'fuse-shared-library-linux-arm'];

/** node_modules/... directories of the production dependencies, from package-lock.json. */
export function productionPackages(root: string): string[] {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const out: string[] = [];
  for (const [p, e] of Object.entries(lock.packages)) {
    if (!p.startsWith('node_modules/') || e.dev) continue;
    if (NOT_RUN.some((t) => p.endsWith(`node_modules/${t}`))) continue;
    if (!fs.existsSync(path.join(root, p))) {
      if (e.optional) continue; // another platform's optional binary package
      throw new Error(`${p} is a production dependency but is not installed: run npm ci`);
    }
    out.push(p);
  }
  return out.sort();
}

const SKIP_DIRS = new Set(['.github', 'test', 'tests', '__tests__', 'example', 'examples', 'benchmark', 'benchmarks']);
/** In a package with a native addon (binding.gyp), the C sources and bundled libraries it was built from. */
const NATIVE_SOURCE_DIRS = new Set(['src', 'deps']);
const SKIP_FILE = /(\.sh|\.html|\.git\w*|\.d\.[cm]?ts|\.[cm]?ts|\.map|\.c|\.cc|\.cpp|\.h|\.hpp|\.gyp|\.gypi|\.o|\.a|\.mk|\.musl\.node|\.tsbuildinfo)$|^(Makefile|config\.gypi|\.npmignore|\.eslintrc.*|\.travis\.yml|\.editorconfig)$|^electron\./;

/** Whether a path below a package directory (relative, with /) is left out of the package. */
export function skipped(pkg: string, rel: string): boolean {
  const parts = rel.split('/');
  const name = parts[parts.length - 1]!;
  // A native package's build directory: only the addons themselves.
  const native = fs.existsSync(path.join(pkg, 'binding.gyp'));
  if (native && parts[0] === 'build') return !(parts.length === 1 || (parts[1] === 'Release' && (parts.length === 2 || (parts.length === 3 && name.endsWith('.node')))));
  if (parts[0] === 'prebuilds') {
    if (pkg.endsWith('node_modules/fuse-native')) return true;
    if (parts.length >= 2 && parts[1] !== 'linux-x64') return true;
  }
  if (pkg.endsWith('node_modules/fuse-shared-library-linux') && parts[0] === 'libfuse' && parts.length > 1) return true;
  if (pkg.endsWith('node_modules/fuse-native') && name === 'libfuse.so') return true;
  if (parts.slice(0, -1).some((d) => SKIP_DIRS.has(d))) return true;
  if (parts[0] === 'docs' || (parts.length === 1 && /\.(md|markdown)$/i.test(name) && !/^(licen[cs]e|copying)/i.test(name))) return true;
  if (parts.length > 1 && NATIVE_SOURCE_DIRS.has(parts[0]!) && native) return true;
  if (SKIP_DIRS.has(name) && fs.statSync(path.join(pkg, rel)).isDirectory()) return true;
  if (SKIP_FILE.test(name) && !name.endsWith('.node')) return true;
  if (/\.node$/.test(name) && /\.musl\./.test(name)) return true;
  // A prebuilt addon for another Node ABI than the bundled runtime's.
  const abi = /\.abi(\d+)\./.exec(name);
  if (abi && name.endsWith('.node') && abi[1] !== process.versions.modules) return true;
  return false;
}

/** The files a package's package.json names as its command-line programs (obnam runs none of them). */
function binFiles(pkg: string): Set<string> {
  const meta = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { bin?: string | Record<string, string> };
  const bins = typeof meta.bin === 'string' ? [meta.bin] : Object.values(meta.bin ?? {});
  return new Set(bins.map((b) => path.posix.normalize(b)));
}

/**
 * A dependency's files as the package holds them: all plain files (0644;
 * Node reads them, nothing executes them), so a `#!` line, left over from
 * upstream's command-line use, becomes a comment (same line numbers).
 */
function normaliseModuleFiles(dir: string): void {
  for (const d of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!d.isFile()) continue;
    const f = path.join(d.parentPath, d.name);
    fs.chmodSync(f, 0o644);
    if (/\.node$/.test(d.name)) continue;
    const fd = fs.openSync(f, 'r+');
    try {
      const head = Buffer.alloc(2);
      if (fs.readSync(fd, head, 0, 2, 0) === 2 && head.toString() === '#!') fs.writeSync(fd, '//', 0);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Copies a tree, leaving out what `skip` names; symlinks are copied as links. */
function copyTree(from: string, to: string, skip: (rel: string) => boolean, rel = ''): void {
  fs.mkdirSync(to, { recursive: true });
  for (const d of fs.readdirSync(from, { withFileTypes: true })) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (d.name === 'node_modules' || skip(r)) continue;
    const src = path.join(from, d.name);
    const dst = path.join(to, d.name);
    if (d.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
    else if (d.isDirectory()) copyTree(src, dst, skip, r);
    else if (d.isFile()) fs.copyFileSync(src, dst);
  }
}

/** Removes directories left empty by the filters. */
function pruneEmpty(dir: string): boolean {
  let empty = true;
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    if (d.isDirectory() && !d.isSymbolicLink() && pruneEmpty(path.join(dir, d.name))) fs.rmdirSync(path.join(dir, d.name));
    else empty = false;
  }
  return empty;
}

/** Every regular file below dir whose name matches. */
export function findFiles(dir: string, match: RegExp): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile() && match.test(d.name)) out.push(path.join(d.parentPath, d.name));
  }
  return out.sort();
}

/** /usr/bin/PROG: runs the launcher with the bundled runtime (exec: signals reach Node directly). */
export function launcherScript(prog: string): string {
  return `#!/bin/sh\n# ${prog}: the obnam launcher with obnam's own Node.js runtime.\nexec ${APP_DIR}/node ${APP_DIR}/bin/${prog}.js "$@"\n`;
}

/** Builds the application tree at `app` (the package's usr/lib/obnam) from the checkout at `root`. */
export function stageApp(root: string, app: string, version: string): { packages: string[] } {
  const pkgJson = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  fs.mkdirSync(app, { recursive: true });
  // The app's package.json: what Node needs (ESM) and where the version comes from (lib/version.ts).
  const appPkg = { name: pkgJson.name, version, description: pkgJson.description, license: pkgJson.license, type: pkgJson.type, private: true };
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify(appPkg, null, 2) + '\n');
  for (const sub of ['lib', 'cli', 'server', 'mount']) {
    const from = path.join(root, 'dist', sub);
    if (!fs.existsSync(from)) throw new Error(`${from} is missing: run npx tsc -p . first`);
    copyTree(from, path.join(app, 'dist', sub), (rel) => rel.endsWith('.map'));
  }
  // The launchers, run by /usr/bin/obnam and /usr/bin/obnam-server with the bundled runtime (launcherScript).
  fs.mkdirSync(path.join(app, 'bin'));
  for (const prog of ['obnam', 'obnam-server']) {
    const text = fs.readFileSync(path.join(root, 'bin', prog), 'utf8').replace(/^#!.*\n/, '');
    fs.writeFileSync(path.join(app, 'bin', `${prog}.js`), text, { mode: 0o644 });
  }
  const packages = productionPackages(root);
  for (const p of packages) {
    const from = path.join(root, p);
    const bins = binFiles(from);
    copyTree(from, path.join(app, p), (rel) => bins.has(rel) || skipped(from, rel));
  }
  normaliseModuleFiles(path.join(app, 'node_modules'));
  if (fs.existsSync(path.join(root, 'native'))) {
    // obnam's own addons (native/build.mjs builds them at install time): the built files only.
    copyTree(path.join(root, 'native'), path.join(app, 'native'), (rel) => !/^build(\/Release(\/[^/]+\.node)?)?$/.test(rel));
    normaliseModuleFiles(path.join(app, 'native'));
  }
  pruneEmpty(app);
  // The runtime the native parts were built against and tested with.
  fs.copyFileSync(process.execPath, path.join(app, 'node'));
  fs.chmodSync(path.join(app, 'node'), 0o755);
  const binaries = [path.join(app, 'node'), ...findFiles(app, /\.node$/)];
  run('strip', ['--strip-unneeded', '--remove-section=.comment', '--remove-section=.note', ...binaries]);
  // Every addon must load in the bundled runtime (wrong ABI, missing library: fail the build, not the user).
  const load = binaries.slice(1).map((f) => `require(${JSON.stringify(f)});`).join('');
  run(path.join(app, 'node'), ['-e', load]);
  // ... and fuse-native must be obnam's patched build (nanosecond times, byte-exact names).
  const fuse = JSON.stringify(path.join(app, 'node_modules', 'fuse-native'));
  try {
    run(path.join(app, 'node'), ['-e', `process.exit(require(${fuse}).NATIVE_PATCHED === true ? 0 : 1)`]);
  } catch {
    throw new Error('node_modules/fuse-native is not the patched build: install python3, make and a C compiler, then run node patches/apply.mjs');
  }
  return { packages };
}
