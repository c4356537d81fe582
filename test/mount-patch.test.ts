/**
 * The fuse-native patch (patches/): the installed copy is patched and its
 * rebuilt addon passes nanoseconds; the applier is strict and idempotent,
 * and undoes the patch exactly.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fuse from 'fuse-native';
import { ROOT, RunResult, runCommand } from './helpers/cli.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const APPLY = path.join(ROOT, 'patches', 'apply.mjs');
const INSTALLED = path.dirname(createRequire(path.join(ROOT, 'package.json')).resolve('fuse-native/package.json'));
const FILES = ['package.json', 'index.js', 'fuse-native.c'];

function apply(args: string[]): Promise<RunResult> {
  return runCommand(process.execPath, [APPLY, ...args]);
}

const read = (dir: string, f: string) => fs.readFile(path.join(dir, f), 'utf8');

describe('fuse-native patch', () => {
  let tmp: TempDir;
  before(async () => {
    tmp = await tempDir();
    for (const f of FILES) await fs.copyFile(path.join(INSTALLED, f), path.join(tmp.path, f));
  });
  after(async () => {
    await tmp?.remove();
  });

  it('is applied to the installed fuse-native, native part included', async () => {
    assert.equal(Fuse.OBNAM_PATCH, 2);
    assert.equal(Fuse.NATIVE_PATCHED, true, 'the addon was not rebuilt with the patch: run node patches/apply.mjs');
    assert.equal((await apply(['--dir', INSTALLED, '--check'])).stdout, 'patched\n');
  });

  it('reverses exactly, applies exactly, and applying twice changes nothing', async () => {
    const patched = await Promise.all(FILES.map((f) => read(tmp.path, f)));
    let r = await apply(['--dir', tmp.path, '--reverse']);
    assert.equal(r.code, 0, r.stderr);
    for (const f of FILES) assert.doesNotMatch(await read(tmp.path, f), /obnam patch/, f);
    assert.equal((await apply(['--dir', tmp.path, '--check'])).stdout, 'pristine\n');
    r = await apply(['--dir', tmp.path, '--no-build']);
    assert.equal(r.stdout, 'fuse-native: applied\n', r.stderr);
    assert.deepEqual(await Promise.all(FILES.map((f) => read(tmp.path, f))), patched);
    r = await apply(['--dir', tmp.path, '--no-build']);
    assert.equal(r.stdout, 'fuse-native: already patched\n', r.stderr);
    assert.deepEqual(await Promise.all(FILES.map((f) => read(tmp.path, f))), patched);
  });

  it('refuses a fuse-native it does not recognise, changing nothing', async () => {
    const file = path.join(tmp.path, 'fuse-native.c');
    const text = (await read(tmp.path, 'fuse-native.c')).replace('static const uint32_t op_rmdir = 33;', 'static const uint32_t op_rmdir = 34;');
    await fs.writeFile(file, text);
    assert.equal((await apply(['--dir', tmp.path, '--check'])).stdout, 'unknown\n');
    const r = await apply(['--dir', tmp.path, '--no-build']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /neither upstream fuse-native 2\.2\.6 nor patched/);
    assert.equal(await read(tmp.path, 'fuse-native.c'), text);
  });
});
