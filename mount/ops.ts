/**
 * fuse-native operations over a file-system view: each request is answered
 * from the view (asynchronously: the view's heavy work runs on the worker
 * pool) and every failure is turned into an errno by the ErrorReporter.
 * Anything that would change the file system answers EROFS.
 *
 * Names are bytes. The patched fuse-native addon passes them as latin1
 * strings (one character per byte), which convert to and from bytes exactly;
 * unpatched, it passes UTF-8, and names that are not UTF-8 cannot be shown.
 */
import { constants } from 'node:fs';
import type Fuse from 'fuse-native';
import type { FsStat } from '../lib/fsview/stat.js';
import type { FsView } from '../lib/fsview/view.js';
import { ErrorReporter, EROFS } from './errno.js';


const NS_PER_SEC = 1_000_000_000n;

/** fuse-native's stat: milliseconds for the unpatched addon, nanoseconds (the *Ns fields) for the patched one. */
export function toFuseStat(st: FsStat): Fuse.Stat {
  const ms = (t: FsStat['mtime']) => t.sec * 1000 + Math.floor(t.nsec / 1e6);
  const ns = (t: FsStat['mtime']) => BigInt(t.sec) * NS_PER_SEC + BigInt(t.nsec);
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    nlink: st.nlink,
    ino: st.ino,
    rdev: st.rdev,
    blksize: 4096,
    blocks: st.blocks,
    atime: ms(st.atime),
    mtime: ms(st.mtime),
    ctime: ms(st.ctime),
    atimeNs: ns(st.atime),
    mtimeNs: ns(st.mtime),
    ctimeNs: ns(st.ctime),
  };
}

/** A directory entry's stat for readdir: only the inode and type bits matter to the kernel. */
function direntStat(ino: number, mode: number): Fuse.Stat {
  return { mode, uid: 0, gid: 0, size: 0, nlink: 1, ino, atime: 0, mtime: 0, ctime: 0 };
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

const ST_RDONLY = 1;
/** The access-mode bits of open flags (Linux). */
const O_ACCMODE = 3;

export interface OperationOptions {
  /** fuse-native passes names as latin1 strings (patched addon), not UTF-8. */
  rawNames: boolean;
}

export function fuseOperations(view: FsView, errors: ErrorReporter, opts: OperationOptions): Fuse.Operations {
  const encoding: BufferEncoding = opts.rawNames ? 'latin1' : 'utf8';
  const toBytes = (path: string): Buffer => Buffer.from(path, encoding);
  const toName = (name: Buffer): string => name.toString(encoding);

  /** Runs `work` and answers through `cb`: (0, value) or (negative errno). */
  function answer<T>(op: string, path: string, work: () => Promise<T>, cb: (err: number, v?: T) => void): void {
    work().then(
      (v) => cb(0, v),
      (e: unknown) => cb(errors.errno(e, op, path)),
    );
  }
  const readOnly = (...args: unknown[]) => (args[args.length - 1] as Fuse.Done)(EROFS);

  return {
    statfs(_path, cb) {
      cb(0, { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: ST_RDONLY, namemax: 255 });
    },
    getattr(path, cb) {
      answer('getattr', path, async () => toFuseStat(await view.getattr(toBytes(path))), cb);
    },
    readdir(path, cb) {
      answer(
        'readdir',
        path,
        async () => {
          const [entries, self, parent] = await Promise.all([
            view.readdir(toBytes(path)),
            view.getattr(toBytes(path)),
            view.getattr(toBytes(parentOf(path))),
          ]);
          const names = ['.', '..', ...entries.map((e) => toName(e.name))];
          const stats = [direntStat(self.ino, self.mode), direntStat(parent.ino, parent.mode)];
          for (const e of entries) stats.push(direntStat(e.ino, e.mode));
          return { names, stats };
        },
        (err, v) => cb(err, v?.names, v?.stats),
      );
    },
    readlink(path, cb) {
      answer('readlink', path, async () => toName(await view.readlink(toBytes(path))), cb);
    },
    open(path, flags, cb) {
      if ((flags & O_ACCMODE) !== constants.O_RDONLY) return cb(EROFS);
      answer('open', path, () => view.open(toBytes(path)), cb);
    },
    read(path, fd, buf, len, pos, cb) {
      // `buf` is only valid until cb is called: readInto fills it before that.
      view.readInto(fd, len === buf.length ? buf : buf.subarray(0, len), pos).then(
        (n) => cb(n),
        (e: unknown) => cb(errors.errno(e, 'read', path)),
      );
    },
    release(_path, fd, cb) {
      view.release(fd);
      cb(0);
    },
    getxattr(path, name, _position, cb) {
      answer('getxattr', path, () => view.getxattr(toBytes(path), toBytes(name)), cb);
    },
    listxattr(path, cb) {
      answer('listxattr', path, () => view.listxattr(toBytes(path)), cb);
    },
    // Nothing in a snapshot can change.
    write: readOnly,
    create: readOnly,
    truncate: readOnly,
    ftruncate: readOnly,
    utimens: readOnly,
    chown: readOnly,
    chmod: readOnly,
    mknod: readOnly,
    setxattr: readOnly,
    removexattr: readOnly,
    unlink: readOnly,
    rename: readOnly,
    link: readOnly,
    symlink: readOnly,
    mkdir: readOnly,
    rmdir: readOnly,
  };
}

/** The names of the operations that change something (all answer EROFS). */
export const WRITE_OPERATIONS = [
  'write',
  'create',
  'truncate',
  'ftruncate',
  'utimens',
  'chown',
  'chmod',
  'mknod',
  'setxattr',
  'removexattr',
  'unlink',
  'rename',
  'link',
  'symlink',
  'mkdir',
  'rmdir',
] as const;
