/**
 * The FUSE adapter's own logic, without mounting: errno mapping in one
 * place, logging of failures, EROFS for every write operation, and the
 * nanosecond times handed to the patched fuse-native.
 */
import assert from 'node:assert/strict';
import { constants as fsc } from 'node:fs';
import { constants } from 'node:os';
import { describe, it } from 'node:test';
import type Fuse from 'fuse-native';
import { ObnamError } from '../lib/errors.js';
import { FsError, FsErrorCode } from '../lib/fsview/errors.js';
import { FsView } from '../lib/fsview/view.js';
import { ErrorReporter, errnoOf } from '../mount/errno.js';
import { fuseOperations, toFuseStat, WRITE_OPERATIONS } from '../mount/ops.js';

const E = constants.errno;

async function emptyView(): Promise<FsView> {
  // A repository without snapshots: nothing is ever loaded.
  return FsView.open({
    listSnapshotIds: async function* () {},
    getObject: () => Promise.reject(new Error('no objects')),
    getTree: () => Promise.reject(new Error('no objects')),
    getSnapshot: () => Promise.reject(new Error('no objects')),
  });
}

describe('mount adapter', () => {
  it('maps every view error code to its errno, and anything else to EIO', () => {
    const want: Record<FsErrorCode, number> = {
      NO_ENTRY: E.ENOENT,
      NOT_DIR: E.ENOTDIR,
      IS_DIR: E.EISDIR,
      NOT_FILE: E.EINVAL,
      NOT_LINK: E.EINVAL,
      NO_ATTR: E.ENODATA,
      BAD_HANDLE: E.EBADF,
      READ_ONLY: E.EROFS,
      UNREADABLE: E.EIO,
    };
    for (const [code, errno] of Object.entries(want)) assert.equal(errnoOf(new FsError(code as FsErrorCode, 'x')), errno, code);
    assert.equal(errnoOf(new ObnamError('CORRUPT', 'x')), E.EIO);
    assert.equal(errnoOf(new TypeError('bug')), E.EIO);
  });

  it('logs EIO failures once per distinct message, and nothing else', () => {
    const lines: string[] = [];
    const r = new ErrorReporter((l) => lines.push(l));
    const bad = new FsError('UNREADABLE', 'chunk abc: content does not match its id');
    assert.equal(r.errno(bad, 'read', '/a'), -E.EIO);
    assert.equal(r.errno(bad, 'read', '/a'), -E.EIO);
    assert.equal(r.errno(new FsError('NO_ENTRY', 'no /b'), 'getattr', '/b'), -E.ENOENT);
    assert.equal(r.errno(new RangeError('oops'), 'readdir', '/c'), -E.EIO);
    assert.deepEqual(lines, ['read "/a": chunk abc: content does not match its id', 'readdir "/c": internal error: oops']);
  });

  it('answers EROFS to every operation that would change something', async () => {
    const ops = fuseOperations(await emptyView(), new ErrorReporter(() => undefined), { rawNames: true });
    for (const name of WRITE_OPERATIONS) {
      const op = ops[name] as unknown as (...args: unknown[]) => void;
      assert.equal(typeof op, 'function', name);
      const result = await new Promise<number>((resolve) => op('/x', 0, 0, 0, 0, 0, (err: number) => resolve(err)));
      assert.equal(result, -E.EROFS, name);
    }
    for (const flags of [fsc.O_WRONLY, fsc.O_RDWR, fsc.O_WRONLY | fsc.O_CREAT]) {
      const err = await new Promise<number>((resolve) => ops.open!('/x', flags, (e) => resolve(e)));
      assert.equal(err, -E.EROFS);
    }
  });

  it('lists the mount root with . and .. and answers ENOENT for unknown paths', async () => {
    const ops = fuseOperations(await emptyView(), new ErrorReporter(() => undefined), { rawNames: true });
    const names = await new Promise<string[] | undefined>((resolve) => ops.readdir!('/', (err, n) => resolve(err ? undefined : n)));
    assert.deepEqual(names, ['.', '..', 'snapshots', 'ids']);
    const err = await new Promise<number>((resolve) => ops.getattr!('/latest', (e) => resolve(e)));
    assert.equal(err, -E.ENOENT);
  });

  it('passes times as nanoseconds, and as milliseconds for an unpatched addon', () => {
    const st: Fuse.Stat = toFuseStat({
      ino: 7,
      mode: 0o100644,
      nlink: 1,
      uid: 1,
      gid: 2,
      size: 3,
      blocks: 1,
      rdev: 0,
      atime: { sec: 1600000000, nsec: 123456789 },
      mtime: { sec: 1600000000, nsec: 123456789 },
      ctime: { sec: -86401, nsec: 750000000 },
    });
    assert.equal(st.mtimeNs, 1600000000123456789n);
    assert.equal(st.mtime, 1600000000123);
    assert.equal(st.ctimeNs, -86400250000000n);
    assert.equal(st.ctime, -86400250);
  });
});
