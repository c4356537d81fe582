/**
 * The native file system helper (native/fsops.c through lib/util/fsops.ts)
 * on its own: it never follows a symlink in a path it walks or at a name it
 * creates or changes, takes names as bytes, refuses names that are not one
 * path component, sets times to the nanosecond, and a missing build is one
 * clear error that says how to build it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fsops } from '../lib/util/fsops.js';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { setXattr, xattrsOf } from './helpers/tree.js';

const ops = fsops();
const B = (s: string | Buffer) => Buffer.from(s);

function withDir(fn: (dir: string, fd: number) => void): () => Promise<void> {
  return async () => {
    const tmp = await tempDir();
    const fd = fs.openSync(tmp.path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      fn(tmp.path, fd);
    } finally {
      fs.closeSync(fd);
      await tmp.remove();
    }
  };
}

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
  return 'no error';
};

describe('native fs helper', () => {
  it('walks directories only through real directories, never a symlink', withDir((dir, fd) => {
    fs.mkdirSync(path.join(dir, 'real', 'sub'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'elsewhere', 'sub'), { recursive: true });
    fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'link'));
    fs.symlinkSync('../elsewhere/sub', path.join(dir, 'real', 'sublink'));
    const sub = ops.openDir(fd, B('real/sub'));
    ops.close(sub);
    assert.equal(code(() => ops.openDir(fd, B('link/sub'))), 'ENOTDIR');
    assert.equal(code(() => ops.openDir(fd, B('real/sublink'))), 'ENOTDIR');
    for (const bad of ['..', 'real/..', './real', '/real', 'real/', 'real//sub']) assert.equal(code(() => ops.openDir(fd, B(bad))), 'EINVAL', bad);
    assert.equal(code(() => ops.openDir(fd, Buffer.from([0x72, 0, 0x61]))), 'EINVAL');
  }));

  it('makeDir creates or verifies a directory, and refuses a symlink in its place', withDir((dir, fd) => {
    const a = ops.makeDir(fd, B('a'), 0o700);
    const again = ops.makeDir(fd, B('a'), 0o700);
    ops.close(a);
    ops.close(again);
    assert.ok(fs.lstatSync(path.join(dir, 'a')).isDirectory());
    fs.mkdirSync(path.join(dir, 'target'));
    fs.symlinkSync(path.join(dir, 'target'), path.join(dir, 'b'));
    assert.equal(code(() => ops.makeDir(fd, B('b'), 0o700)), 'ENOTDIR');
    fs.writeFileSync(path.join(dir, 'c'), '');
    assert.equal(code(() => ops.makeDir(fd, B('c'), 0o700)), 'ENOTDIR');
    assert.equal(code(() => ops.makeDir(fd, B('x/y'), 0o700)), 'EINVAL');
  }));

  it('creates entries by byte names and never through a symlink at the name', withDir((dir, fd) => {
    const name = Buffer.from([0x6d, 0xff]);
    const out = ops.createFile(fd, name, 0o600);
    fs.writeSync(out, 'bytes');
    ops.close(out);
    assert.equal(fs.readFileSync(Buffer.concat([B(dir + '/'), name]), 'utf8'), 'bytes');
    assert.equal(fs.existsSync(path.join(dir, 'm\uFFFD')), false);
    fs.symlinkSync(path.join(dir, 'victim'), path.join(dir, 'dangling'));
    assert.equal(code(() => ops.createFile(fd, B('dangling'), 0o600)), 'EEXIST');
    assert.equal(code(() => ops.mknodAt(fd, B('dangling'), 0o010600, 0)), 'EEXIST');
    assert.equal(fs.existsSync(path.join(dir, 'victim')), false, 'nothing was created through the symlink');
    ops.unlinkAt(fd, B('dangling'));
    assert.equal(fs.existsSync(path.join(dir, 'dangling')), false);
    fs.mkdirSync(path.join(dir, 'd'));
    assert.equal(code(() => ops.unlinkAt(fd, B('d'))), 'EISDIR');
    assert.equal(code(() => ops.createFile(fd, B('a/b'), 0o600)), 'EINVAL');
  }));

  it('changes a symlink itself, never what it points to', withDir((dir, fd) => {
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'x', { mode: 0o644 });
    setXattr(victim, 'user.keep', 'me');
    const before = fs.statSync(victim, { bigint: true });
    fs.symlinkSync(victim, path.join(dir, 'link'));
    ops.utimensAt(fd, B('link'), -1, 999_999_999);
    assert.equal(fs.lstatSync(path.join(dir, 'link'), { bigint: true }).mtimeNs, -1n);
    assert.notEqual(code(() => ops.fchmodAt(fd, B('link'), 0o777)), 'no error');
    assert.notEqual(code(() => ops.lsetxattrAt(fd, B('link'), B('user.evil'), B('x'))), 'no error');
    const after = fs.statSync(victim, { bigint: true });
    assert.equal(after.mode, before.mode);
    assert.equal(after.mtimeNs, before.mtimeNs);
    assert.equal(after.ctimeNs, before.ctimeNs);
    assert.deepEqual(xattrsOf(victim), { 'user.keep': Buffer.from('me').toString('hex') });
  }));

  it('binds sockets at names of any length, replacing (not following) a symlink in the way', withDir((dir, fd) => {
    const long = B(`${'s'.repeat(200)}.sock`);
    ops.bindSocketAt(fd, long);
    assert.ok(fs.lstatSync(Buffer.concat([B(dir + '/'), long])).isSocket());
    fs.mkdirSync(path.join(dir, 'outside'));
    fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'sock'));
    ops.bindSocketAt(fd, B('sock'));
    assert.ok(fs.lstatSync(path.join(dir, 'sock')).isSocket());
    assert.deepEqual(fs.readdirSync(path.join(dir, 'outside')), []);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['outside', 'sock', long.toString()].sort(), 'no temporary name is left');
  }));

  it('a missing build is one clear error naming the way to build it', async () => {
    const tmp = await tempDir();
    try {
      const lib = path.join(tmp.path, 'dist', 'lib');
      fs.mkdirSync(path.join(lib, 'util'), { recursive: true });
      fs.writeFileSync(path.join(tmp.path, 'package.json'), '{"type": "module"}');
      fs.copyFileSync(path.join(ROOT, 'dist', 'lib', 'util', 'fsops.js'), path.join(lib, 'util', 'fsops.js'));
      fs.copyFileSync(path.join(ROOT, 'dist', 'lib', 'errors.js'), path.join(lib, 'errors.js'));
      const script = `import { fsops } from ${JSON.stringify(path.join(lib, 'util', 'fsops.js'))};
        try { fsops(); } catch (e) { console.log(e.code + ': ' + e.message); }`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.match(r.stdout, /^INTERNAL: obnam's native helper is missing or does not load .*run: node native\/build\.mjs\n$/);
    } finally {
      await tmp.remove();
    }
  });
});
