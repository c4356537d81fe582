/**
 * A restore gives back what was backed up (real CLI backup and restore):
 * times to the nanosecond, before 1970 too, for files, directories and
 * symlinks; xattrs of paths that are not UTF-8 (and with names that are not
 * either); xattrs that cannot be read are a warning naming the path and exit
 * 3; Unix sockets are recreated, whatever the length of their name.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { resolvePath } from '../lib/repo/treewalk.js';
import { openTestRepo } from './helpers/repo.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { isRoot, setTimeNs, setXattr, xattrsOf } from './helpers/tree.js';

const PASS = 'fidelity test passphrase';

const TIMES: [string, number, number][] = [
  ['nines', 1_700_000_000, 999_999_999],
  ['odd-ns', 1_234_567_890, 123_456_789],
  ['in-1960', -315_619_200, 987_654_321],
  ['in-1969', -1, 999_999_999],
  ['epoch-plus-1ns', 0, 1],
];

const at = (...parts: (string | Buffer)[]) => Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from('/'), Buffer.from(p)] : [Buffer.from(p)])));

async function backupAndRestore(src: string, tmp: string): Promise<string> {
  const env = { OBNAM_REPO: path.join(tmp, 'repo'), OBNAM_PASSPHRASE: PASS, HOME: tmp };
  await obnamOk(['init'], { env });
  await obnamOk(['backup', src], { env });
  const out = path.join(tmp, 'out');
  await obnamOk(['restore', 'latest', out], { env });
  return path.join(out, src);
}

describe('restore fidelity', () => {
  it('restores mtime (and atime, set to it) to the nanosecond for files, directories and symlinks, before 1970 too', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(src);
      for (const [name] of TIMES) {
        fs.writeFileSync(path.join(src, `file-${name}`), `${name}\n`);
        fs.mkdirSync(path.join(src, `dir-${name}`));
        fs.symlinkSync(`nowhere-${name}`, path.join(src, `link-${name}`));
      }
      for (const [name, sec, nsec] of TIMES) for (const kind of ['file', 'dir', 'link']) setTimeNs(path.join(src, `${kind}-${name}`), sec, nsec);
      const restored = await backupAndRestore(src, tmp.path);
      for (const [name, sec, nsec] of TIMES) {
        const want = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
        for (const kind of ['file', 'dir', 'link']) {
          const a = fs.lstatSync(path.join(src, `${kind}-${name}`), { bigint: true });
          const b = fs.lstatSync(path.join(restored, `${kind}-${name}`), { bigint: true });
          assert.equal(a.mtimeNs, want, `${kind}-${name}: source mtime`);
          assert.equal(b.mtimeNs, want, `${kind}-${name}: restored mtime`);
          assert.equal(b.atimeNs, want, `${kind}-${name}: restored atime (the format keeps mtime; atime is set to it)`);
        }
      }
    } finally {
      await tmp.remove();
    }
  });

  it('records and restores xattrs of paths that are not UTF-8', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      const dirName = Buffer.from([0x64, 0xe9, 0x6a, 0xe0]); // Latin-1 "déjà"
      const fileName = Buffer.from([0x66, 0xff, 0xfe]);
      const oddXattr = Buffer.from([0x75, 0x73, 0x65, 0x72, 0x2e, 0xc3, 0x28]); // "user." + an invalid UTF-8 pair
      fs.mkdirSync(at(src, dirName), { recursive: true });
      fs.writeFileSync(at(src, dirName, fileName), 'content\n');
      setXattr(at(src, dirName), 'user.on-dir', 'directory');
      setXattr(at(src, dirName, fileName), 'user.on-file', Buffer.from([0, 1, 0xff]));
      setXattr(at(src, dirName, fileName), oddXattr, 'odd name');
      const restored = await backupAndRestore(src, tmp.path);
      const repo = await openTestRepo(path.join(tmp.path, 'repo'), PASS);
      try {
        const snap = (await repo.listSnapshots()).at(-1)!;
        const parts = [...src.split('/').filter(Boolean).map((c) => Buffer.from(c)), dirName, fileName];
        const { entry: e } = await resolvePath((id) => repo.getTree(id), snap.tree, parts);
        assert.deepEqual(
          e?.xattrs?.map(([n, v]) => [n.toString('latin1'), v.toString('hex')]),
          [
            ['user.on-file', '0001ff'],
            [oddXattr.toString('latin1'), Buffer.from('odd name').toString('hex')],
          ],
        );
      } finally {
        await repo.close();
      }
      assert.deepEqual(xattrsOf(at(restored, dirName)), xattrsOf(at(src, dirName)));
      assert.deepEqual(xattrsOf(at(restored, dirName, fileName)), xattrsOf(at(src, dirName, fileName)));
      assert.equal(Object.keys(xattrsOf(at(restored, dirName, fileName))).length, 2);
    } finally {
      await tmp.remove();
    }
  });

  it('xattrs that cannot be read are a warning naming the path, and the backup exits 3', { skip: !isRoot && 'needs root' }, async () => {
    const tmp = await tempDir();
    const src = path.join(tmp.path, 'src');
    const locked = at(src, Buffer.from([0x6c, 0x6f, 0x63, 0x6b, 0xff])); // "lock\xff"
    try {
      fs.chmodSync(tmp.path, 0o755);
      fs.mkdirSync(locked, { recursive: true });
      setXattr(locked, 'user.note', 'only for its owner');
      fs.chmodSync(locked, 0o000);
      const repo = path.join(tmp.path, 'repo');
      fs.mkdirSync(repo);
      fs.chownSync(repo, 65534, 65534);
      // As "nobody", the directory's xattrs are listed but cannot be read (nor can the directory).
      const as = { uid: 65534, gid: 65534 };
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env, ...as });
      const r = await obnam(['backup', '--json', src], { env, ...as });
      assert.equal(r.code, 3, r.stderr);
      const warnings = JSON.parse(r.stdout).warnings as { path: string; message: string }[];
      const xattrWarning = warnings.find((w) => /xattr/.test(w.message));
      assert.ok(xattrWarning, JSON.stringify(warnings));
      assert.equal(xattrWarning.path, locked.toString('utf8'));
      assert.match(xattrWarning.message, /cannot read xattrs user\.note \(EACCES\)/);
      const text = await obnam(['backup', src], { env, ...as });
      assert.equal(text.code, 3);
      assert.match(text.stderr, /warning: .*lock\uFFFD: cannot read xattrs user\.note/);
    } finally {
      fs.chmodSync(locked, 0o755);
      await tmp.remove();
    }
  });

  it('an xattr the restoring user may not set is named, the others are restored, and the restore exits 1', { skip: !isRoot && 'needs root' }, async () => {
    const tmp = await tempDir();
    try {
      fs.chmodSync(tmp.path, 0o755);
      const src = path.join(tmp.path, 'src');
      const name = at(src, Buffer.from([0x78, 0xff])); // "x\xff"
      fs.mkdirSync(src);
      fs.writeFileSync(name, 'content\n');
      setXattr(name, 'trusted.obnam-test', 'only root sets trusted.*');
      setXattr(name, 'user.kept', 'anyone');
      const repo = path.join(tmp.path, 'repo');
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      await obnamOk(['backup', src], { env });
      execFileSync('chmod', ['-R', 'a+rX', repo]);
      const out = path.join(tmp.path, 'out');
      fs.mkdirSync(out);
      fs.chownSync(out, 65534, 65534);
      const r = await obnam(['restore', 'latest', out], { env: { ...env, HOME: out }, uid: 65534, gid: 65534 });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /x\uFFFD: cannot set xattr trusted\.obnam-test: EPERM/);
      assert.match(r.stderr, /1 files could not be restored completely/);
      const restored = at(out, src, Buffer.from([0x78, 0xff]));
      assert.equal(fs.readFileSync(restored, 'utf8'), 'content\n');
      assert.deepEqual(xattrsOf(restored), { 'user.kept': Buffer.from('anyone').toString('hex') });
    } finally {
      await tmp.remove();
    }
  });

  it('recreates Unix sockets, with their mode and time, also with names too long for sun_path', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(path.join(src, 'deep', 'er'), { recursive: true });
      const names = [path.join('deep', 'er', 'short.sock'), path.join('deep', 'er', `${'long-'.repeat(40)}.sock`)];
      for (const n of names) {
        // bind takes at most 107 bytes: bind a short name, then rename it.
        const py = 'import os,socket,sys; os.chdir(os.path.dirname(sys.argv[1])); s=socket.socket(socket.AF_UNIX); s.bind("s"); os.rename("s", sys.argv[1])';
        execFileSync('python3', ['-c', py, path.join(src, n)]);
        fs.chmodSync(path.join(src, n), 0o640);
        setTimeNs(path.join(src, n), 1_600_000_000, 123_456_789);
      }
      const restored = await backupAndRestore(src, tmp.path);
      for (const n of names) {
        const st = fs.lstatSync(path.join(restored, n), { bigint: true });
        assert.ok(st.isSocket(), `${n} is a socket`);
        assert.equal(st.mode & 0o7777n, 0o640n);
        assert.equal(st.mtimeNs, 1_600_000_000_123_456_789n);
      }
      assert.deepEqual(fs.readdirSync(path.join(restored, 'deep', 'er')).sort(), names.map((n) => path.basename(n)).sort(), 'no temporary names left');
    } finally {
      await tmp.remove();
    }
  });
});
