#!/usr/bin/env node
// @ts-check
/**
 * Applies patches/fuse-native+2.2.6.patch to node_modules/fuse-native and
 * rebuilds its native addon. Run by `npm install` / `npm ci` (postinstall),
 * before TypeScript is compiled, so this is plain JavaScript with no
 * dependencies. Idempotent: an already patched file is left alone, and the
 * addon is only rebuilt when the loaded one lacks the patch.
 *
 * What the patch does (obnam mount needs all of it):
 *  - index.js: passes times as nanoseconds (stat.mtimeNs etc., bigint),
 *    accepts any libfuse mount option (mountOptions: ro, use_ino, ...) and
 *    xattr names as Buffers, and releases the native handle after an unmount
 *    from outside so the process can exit. This part needs no compiler and
 *    is always applied.
 *  - fuse-native.c: reads those nanoseconds into struct stat (upstream
 *    fuse-native rounds every time to the millisecond), signed times before
 *    1970, and passes paths and names as latin1 strings (one character per
 *    byte) so names that are not UTF-8 survive. Needs a rebuild (node-gyp,
 *    python3, make, a C compiler); if that fails the mount still works, with
 *    times to the millisecond and UTF-8 names only, and this script says so.
 *
 * Usage: node patches/apply.mjs [--dir DIR] [--check] [--reverse] [--no-build]
 *   --dir DIR   the fuse-native package directory (default: resolved from here)
 *   --check     only report the state: "pristine" or "patched" (exit 0), else exit 1
 *   --reverse   undo the patch (the files go back to upstream's)
 *   --no-build  do not rebuild the native addon
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PATCH = path.join(HERE, 'fuse-native+2.2.6.patch');
const VERSION = '2.2.6';

/**
 * @typedef {{ oldStart: number, newStart: number, oldLines: string[], newLines: string[] }} Hunk
 * @typedef {{ file: string, hunks: Hunk[] }} FilePatch
 */

/** Parses a unified diff (as written by `diff -u`, paths a/FILE b/FILE). @returns {FilePatch[]} */
export function parsePatch(text) {
  /** @type {FilePatch[]} */
  const files = [];
  /** @type {FilePatch | undefined} */
  let file;
  /** @type {Hunk | undefined} */
  let hunk;
  for (const line of text.split('\n')) {
    if (line.startsWith('--- ')) continue;
    if (line.startsWith('+++ ')) {
      file = { file: line.slice(4).replace(/^b\//, '').split('\t')[0] ?? '', hunks: [] };
      files.push(file);
      hunk = undefined;
      continue;
    }
    const h = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (h) {
      if (!file) throw new Error('patch: hunk before file header');
      hunk = { oldStart: Number(h[1]), newStart: Number(h[2]), oldLines: [], newLines: [] };
      file.hunks.push(hunk);
      continue;
    }
    if (!hunk) continue;
    const tag = line[0];
    const body = line.slice(1);
    if (tag === ' ') {
      hunk.oldLines.push(body);
      hunk.newLines.push(body);
    } else if (tag === '-') hunk.oldLines.push(body);
    else if (tag === '+') hunk.newLines.push(body);
  }
  return files;
}

/**
 * Applies (or with reverse, undoes) one file's hunks to its text, strictly:
 * every hunk must match exactly at the line the patch gives (in the upstream
 * file, or in the patched one when reversing), shifted by what earlier hunks
 * added or removed. Returns the new text, or undefined if the text is not in
 * the expected starting state.
 * @param {string} text @param {Hunk[]} hunks @param {boolean} reverse
 * @returns {string | undefined}
 */
export function applyHunks(text, hunks, reverse) {
  const lines = text.split('\n');
  let shift = 0;
  for (const h of hunks) {
    const from = reverse ? h.newLines : h.oldLines;
    const to = reverse ? h.oldLines : h.newLines;
    const at = (reverse ? h.newStart : h.oldStart) - 1 + shift;
    if (!from.every((l, i) => lines[at + i] === l)) return undefined;
    lines.splice(at, from.length, ...to);
    shift += to.length - from.length;
  }
  return lines.join('\n');
}

/**
 * The state of a fuse-native directory: "pristine", "patched" or "unknown".
 * @param {string} dir @param {FilePatch[]} patch
 */
export function patchState(dir, patch) {
  let pristine = true;
  let patched = true;
  for (const f of patch) {
    const text = fs.readFileSync(path.join(dir, f.file), 'utf8');
    if (applyHunks(text, f.hunks, false) === undefined) pristine = false;
    if (applyHunks(text, f.hunks, true) === undefined) patched = false;
  }
  return patched ? 'patched' : pristine ? 'pristine' : 'unknown';
}

/**
 * Patches (or restores) the files in `dir`; returns what it did.
 * @param {string} dir @param {FilePatch[]} patch @param {boolean} reverse
 * @returns {'applied' | 'already' | 'reversed'}
 */
export function patchFiles(dir, patch, reverse) {
  const state = patchState(dir, patch);
  if (state === 'unknown') {
    throw new Error(`${dir}: neither upstream fuse-native ${VERSION} nor patched; reinstall it (rm -rf node_modules/fuse-native && npm ci)`);
  }
  if (reverse && state === 'pristine') return 'already';
  if (!reverse && state === 'patched') return 'already';
  for (const f of patch) {
    const file = path.join(dir, f.file);
    const text = fs.readFileSync(file, 'utf8');
    const out = reverse ? applyHunks(text, f.hunks, true) : applyHunks(text, f.hunks, false);
    if (out === undefined) throw new Error(`${file}: patch does not apply`);
    fs.writeFileSync(file, out);
  }
  return reverse ? 'reversed' : 'applied';
}

/** True if the addon that fuse-native loads has the native part of the patch. @param {string} dir */
function nativePatched(dir) {
  const r = spawnSync(process.execPath, ['-e', `process.exit(require(${JSON.stringify(dir)}).NATIVE_PATCHED === true ? 0 : 1)`], {
    stdio: 'ignore',
  });
  return r.status === 0;
}

/**
 * Rebuilds the addon in `dir` with node-gyp (npm's own, when run from npm),
 * offline against this node's headers; returns why it failed, or undefined.
 * Also used by native/build.mjs. @param {string} dir
 */
export function rebuild(dir) {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter((p) => typeof p === 'string' && fs.existsSync(p));
  const args = ['rebuild'];
  // Use the headers that ship with this node binary when they are there (no download).
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
  const cmd = candidates[0] ? process.execPath : 'node-gyp';
  const argv = candidates[0] ? [candidates[0], ...args] : args;
  const r = spawnSync(cmd, argv, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').slice(-5).join('\n');
    return `node-gyp rebuild failed: ${why}`;
  }
  return undefined;
}

function main() {
  const argv = process.argv.slice(2);
  const flag = (f) => argv.includes(f);
  const dirArg = argv.indexOf('--dir');
  const dir =
    dirArg >= 0 && argv[dirArg + 1]
      ? path.resolve(argv[dirArg + 1])
      : path.dirname(createRequire(path.join(HERE, '..', 'package.json')).resolve('fuse-native/package.json'));
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (pkg.version !== VERSION) {
    throw new Error(`fuse-native ${pkg.version} is installed, but the patch is for ${VERSION}; update patches/`);
  }
  const patch = parsePatch(fs.readFileSync(PATCH, 'utf8'));
  if (flag('--check')) {
    const state = patchState(dir, patch);
    process.stdout.write(`${state}\n`);
    process.exitCode = state === 'unknown' ? 1 : 0;
    return;
  }
  const done = patchFiles(dir, patch, flag('--reverse'));
  process.stdout.write(`fuse-native: ${done === 'already' ? 'already ' + (flag('--reverse') ? 'upstream' : 'patched') : done}\n`);
  if (flag('--no-build') || flag('--reverse')) return;
  if (nativePatched(dir)) return;
  const failure = rebuild(dir);
  if (failure || !nativePatched(dir)) {
    process.stderr.write(
      `obnam: warning: could not rebuild fuse-native (${failure ?? 'the rebuilt addon lacks the patch'}).\n` +
        'obnam mount will work, but round file times to the millisecond and cannot show names that are not UTF-8.\n' +
        'Install python3, make and a C compiler, ' +
        'then run: node patches/apply.mjs\n',
    );
    return;
  }
  process.stdout.write('fuse-native: native addon rebuilt (nanosecond times, byte-exact names)\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (e) {
    process.stderr.write(`obnam: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
