#!/usr/bin/env node
// @ts-check
/**
 * Builds obnam's native file system helper (native/fsops.c, an N-API addon)
 * into native/build/Release/obnam_fsops.node. Run by `npm install` / `npm ci`
 * (postinstall, after patches/apply.mjs), before TypeScript is compiled, so
 * this is plain JavaScript with no dependencies. It compiles with node-gyp
 * offline against the installed Node's headers, as the fuse-native patch does.
 *
 * Backup and restore cannot work without the helper (restore creates every
 * entry through it, relative to directories it has opened without following
 * symlinks; backup reads xattrs with it), so a failed build fails the install
 * with one clear message.
 *
 * Usage: node native/build.mjs [--check]
 *   --check   only load the built helper: exit 0 if it loads, else 1
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rebuild } from '../patches/apply.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ADDON = path.join(HERE, 'build', 'Release', 'obnam_fsops.node');

/** True if the addon loads in a fresh node process (and so in worker threads, which load it likewise). */
function loads() {
  const r = spawnSync(process.execPath, ['-e', `process.exit(require(${JSON.stringify(ADDON)}).VERSION >= 1 ? 0 : 1)`], {
    stdio: 'ignore',
  });
  return r.status === 0;
}

function main() {
  if (process.argv.includes('--check')) {
    const ok = loads();
    process.stdout.write(ok ? `${ADDON}: loads\n` : `${ADDON}: missing or does not load\n`);
    process.exitCode = ok ? 0 : 1;
    return;
  }
  const failure = rebuild(HERE);
  if (failure || !loads()) {
    process.stderr.write(
      `obnam: cannot build the native helper native/fsops.c (${failure ?? 'the built addon does not load'}).\n` +
        'obnam needs it to back up and restore. Install python3, make and a C compiler ' +
        '(Debian: apt-get install -y python3 make g++), then run: node native/build.mjs\n',
    );
    process.exitCode = 1;
    return;
  }
  process.stdout.write('obnam: native helper built (native/build/Release/obnam_fsops.node)\n');
}

main();
