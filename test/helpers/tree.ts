/**
 * Test data: a directory tree with every entry type obnam records (files of
 * all sizes, odd names, symlinks, hardlinks, fifos, sockets, devices when
 * root, empty directories, special modes, xattrs, nanosecond mtimes), and a
 * comparison of two trees by bytes and metadata.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsops } from '../../lib/util/fsops.js';

export const isRoot = process.getuid?.() === 0;

/** A name that is not valid UTF-8. */
export const BINARY_NAME = Buffer.from([0x62, 0x69, 0x6e, 0xff, 0xfe, 0x2e, 0x64, 0x61, 0x74]);

/** Sets atime and mtime of `p` itself (a symlink's own), to the nanosecond, as `touch -h -d @SEC.NSEC` does. */
export function setTimeNs(p: string | Buffer, sec: number, nsec: number): void {
  const ops = fsops();
  ops.utimensAt(ops.AT_FDCWD, Buffer.from(p), sec, nsec);
}

/** Sets an extended attribute on a path (any bytes), not following a final symlink. */
export function setXattr(p: string | Buffer, name: string | Buffer, value: string | Uint8Array): void {
  fsops().lsetxattr(Buffer.from(p), Buffer.from(name), typeof value === 'string' ? Buffer.from(value) : value);
}

/** A path's extended attributes (any bytes), names (latin1) to values (hex). */
export function xattrsOf(p: string | Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  const listed = fsops().readXattrs(Buffer.from(p)) ?? [];
  for (const [n, v] of listed.sort((a, b) => Buffer.compare(a[0], b[0]))) {
    out[n.toString('latin1')] = typeof v === 'string' ? `unreadable: ${v}` : v.toString('hex');
  }
  return out;
}

export interface RichTreeInfo {
  /** A unique string inside a file's content, to search the repository for. */
  contentMarker: string;
  /** A unique file name, to search the repository for. */
  nameMarker: string;
  bigFile: string;
}

/** Fills `dir` (which exists) with every kind of entry. */
export function makeRichTree(dir: string, bigSize = 6 * 1024 * 1024): RichTreeInfo {
  const contentMarker = `obnam-secret-content-${randomBytes(8).toString('hex')}`;
  const nameMarker = `obnam-secret-name-${randomBytes(8).toString('hex')}`;
  const p = (...parts: string[]) => path.join(dir, ...parts);
  fs.mkdirSync(p('docs', 'deep', 'deeper'), { recursive: true });
  fs.mkdirSync(p('empty-dir'));
  fs.writeFileSync(p('empty-file'), '');
  fs.writeFileSync(p('docs', 'small.txt'), `hello ${contentMarker}\n`.repeat(3));
  fs.writeFileSync(p('docs', nameMarker), 'a file whose name is a secret\n');
  fs.writeFileSync(p('docs', 'medium.bin'), randomBytes(300 * 1024));
  fs.writeFileSync(p('docs', 'compressible.txt'), 'the same line again and again\n'.repeat(20000));
  fs.writeFileSync(p('docs', 'deep', 'deeper', 'leaf.txt'), 'leaf\n');
  const bigFile = p('big.bin');
  fs.writeFileSync(bigFile, randomBytes(bigSize));
  fs.writeFileSync(p('name with spaces & symbols !$'), 'spaces\n');
  fs.writeFileSync(p('newline\nin name'), 'newline\n');
  fs.writeFileSync(p('ünïcødé-名前.txt'), 'unicode\n');
  fs.writeFileSync(Buffer.concat([Buffer.from(p('docs') + '/'), BINARY_NAME]), 'not utf-8 name\n');
  fs.symlinkSync('docs/small.txt', p('link-relative'));
  fs.symlinkSync('/nonexistent/target', p('link-dangling'));
  fs.symlinkSync('deep', p('docs', 'link-to-dir'));
  fs.writeFileSync(p('hard-a'), `hard linked ${contentMarker}\n`);
  fs.linkSync(p('hard-a'), p('docs', 'hard-b'));
  fs.linkSync(p('hard-a'), p('hard-c'));
  execFileSync('mkfifo', [p('fifo')]);
  execFileSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', p('socket')]);
  if (isRoot) execFileSync('mknod', [p('chardev'), 'c', '1', '3']);
  fs.writeFileSync(p('setuid-prog'), '#!/bin/sh\n');
  fs.chmodSync(p('setuid-prog'), 0o4755);
  fs.mkdirSync(p('sticky-dir'));
  fs.chmodSync(p('sticky-dir'), 0o1777);
  fs.writeFileSync(p('read-only'), 'ro\n');
  fs.chmodSync(p('read-only'), 0o444);
  fs.writeFileSync(p('with-xattrs'), 'xattrs\n');
  setXattr(p('with-xattrs'), 'user.comment', 'hello xattr');
  setXattr(p('with-xattrs'), 'user.binary', Buffer.from([0, 1, 2, 255]));
  setXattr(p('docs'), 'user.dir-attr', 'on a directory');
  // A name that is not UTF-8, with xattrs (one of them named in bytes that are not UTF-8 either).
  const binaryPath = Buffer.concat([Buffer.from(p('docs') + '/'), BINARY_NAME]);
  setXattr(binaryPath, 'user.on-binary-name', 'xattr of a non-UTF-8 path');
  setXattr(binaryPath, Buffer.from([0x75, 0x73, 0x65, 0x72, 0x2e, 0xff, 0xfe]), Buffer.from([0xff]));
  fs.writeFileSync(p('old-file'), 'from long ago\n');
  setTimeNs(p('old-file'), 123456789, 987654321);
  setTimeNs(p('docs', 'small.txt'), 1700000000, 123456789);
  setTimeNs(p('link-relative'), 1600000000, 5);
  setTimeNs(p('docs', 'deep'), 1650000000, 42);
  // Times that a double or a microsecond cannot carry, and times before 1970.
  fs.mkdirSync(p('times'));
  for (const [name, sec, nsec] of [
    ['nines', 1700000000, 999999999],
    ['in-1960', -315619200, 123456789],
    ['in-1969', -1, 999999999],
    ['epoch', 0, 1],
  ] as const) {
    fs.writeFileSync(p('times', `file-${name}`), `${name}\n`);
    setTimeNs(p('times', `file-${name}`), sec, nsec);
    fs.mkdirSync(p('times', `dir-${name}`));
    setTimeNs(p('times', `dir-${name}`), sec, nsec);
    fs.symlinkSync(`target-${name}`, p('times', `link-${name}`));
    setTimeNs(p('times', `link-${name}`), sec, nsec);
  }
  setTimeNs(p('times'), -86400 * 365 * 5, 999999999);
  return { contentMarker, nameMarker, bigFile };
}

function sha(file: string | Buffer): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export interface CompareOptions {
  /** Compare uid/gid (only meaningful when restoring as root). */
  owners?: boolean;
  /** Compare directory mtimes (false when the tree was touched after backup). */
  dirTimes?: boolean;
  /** mtime tolerance in nanoseconds (default 0: restores set times to the nanosecond). */
  toleranceNs?: bigint;
  /** Leave sockets of `a` out (a tar archive cannot hold them). */
  skipSockets?: boolean;
}

/** Asserts that tree `b` equals tree `a`, entry by entry: type, bytes and metadata. */
export function assertSameTree(a: string, b: string, opts: CompareOptions = {}): number {
  const tolerance = opts.toleranceNs ?? 0n;
  const inodesA = new Map<bigint, string>();
  const inodesB = new Map<bigint, string>();
  let count = 0;
  const walk = (ra: Buffer, rb: Buffer, rel: string) => {
    const names = (fs.readdirSync(ra, { encoding: 'buffer' }) as Buffer[]).sort(Buffer.compare);
    const namesB = (fs.readdirSync(rb, { encoding: 'buffer' }) as Buffer[]).sort(Buffer.compare);
    const visible = opts.skipSockets
      ? names.filter((n) => !fs.lstatSync(Buffer.concat([ra, Buffer.from('/'), n])).isSocket())
      : names;
    assert.deepEqual(namesB.map(String), visible.map(String), `entries of ${rel || '/'}`);
    for (const n of visible) {
      count++;
      const pa = Buffer.concat([ra, Buffer.from('/'), n]);
      const pb = Buffer.concat([rb, Buffer.from('/'), n]);
      const what = `${rel}/${n.toString()}`;
      const sa = fs.lstatSync(pa, { bigint: true });
      const sb = fs.lstatSync(pb, { bigint: true });
      assert.equal(sb.mode & 0o170000n, sa.mode & 0o170000n, `${what}: type`);
      if (!sa.isSymbolicLink()) assert.equal((sb.mode & 0o7777n).toString(8), (sa.mode & 0o7777n).toString(8), `${what}: mode`);
      if (opts.owners) {
        assert.equal(sb.uid, sa.uid, `${what}: uid`);
        assert.equal(sb.gid, sa.gid, `${what}: gid`);
      }
      if (!sa.isDirectory() || opts.dirTimes !== false) {
        const diff = sb.mtimeNs - sa.mtimeNs;
        assert.ok(diff <= tolerance && diff >= -tolerance, `${what}: mtime ${sb.mtimeNs} vs ${sa.mtimeNs}`);
      }
      if (sa.isFile()) {
        assert.equal(sb.size, sa.size, `${what}: size`);
        assert.equal(sha(pb), sha(pa), `${what}: content`);
        if (sa.nlink > 1n) {
          const firstA = inodesA.get(sa.ino);
          const firstB = inodesB.get(sb.ino);
          assert.equal(firstB, firstA, `${what}: hardlink group`);
          if (!firstA) inodesA.set(sa.ino, what);
          if (!firstB) inodesB.set(sb.ino, what);
          assert.equal(sb.nlink, sa.nlink, `${what}: link count`);
        }
      }
      if (sa.isSymbolicLink()) assert.deepEqual(fs.readlinkSync(pb, { encoding: 'buffer' }), fs.readlinkSync(pa, { encoding: 'buffer' }), `${what}: target`);
      if (sa.isCharacterDevice() || sa.isBlockDevice()) assert.equal(sb.rdev, sa.rdev, `${what}: device`);
      if (sa.isFile() || sa.isDirectory()) assert.deepEqual(xattrsOf(pb), xattrsOf(pa), `${what}: xattrs`);
      if (sa.isDirectory()) walk(pa, pb, what);
    }
  };
  walk(Buffer.from(a), Buffer.from(b), '');
  return count;
}

/** Every regular file's bytes under `dir`, concatenated (for searching a repository). */
export function readAllFiles(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(fs.readFileSync(path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)));
  }
  return out;
}
