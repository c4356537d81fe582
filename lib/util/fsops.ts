/**
 * The one door to obnam's native file system helper (native/fsops.c, built
 * at install time by native/build.mjs): typed wrappers of the Linux calls
 * Node's fs lacks, every name and path as raw bytes. Restore creates and
 * changes entries only through these, relative to directory fds opened
 * without following symlinks; backup reads xattrs with readXattrs.
 *
 * All calls block (use them in worker threads) except makeDirAsync. They
 * throw errors shaped like Node's (`code` is the errno name). The addon is
 * loaded on first use; if it is missing, the error says how to build it.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ObnamError } from '../errors.js';

type Bytes = Uint8Array;

export interface FsOps {
  /** An O_PATH fd of directory `rel` ("a/b", "" for dirFd itself) below dirFd; ENOTDIR if a symlink or non-directory is on the way. */
  openDir(dirFd: number, rel: Bytes): number;
  /** The directory `name` in dirFd opened for reading (fchmod, futimens, fsetxattr on it); ENOTDIR if it is not one. */
  openDirRead(dirFd: number, name: Bytes): number;
  /** An O_PATH fd of directory `name` in dirFd, created if nothing was there; ENOTDIR if a symlink or non-directory is. */
  makeDir(dirFd: number, name: Bytes, mode: number): number;
  /** makeDir on libuv's thread pool. */
  makeDirAsync(dirFd: number, name: Bytes, mode: number): Promise<number>;
  /** Closes an fd opened here (Node's fs.closeSync warns about fds a worker did not open through fs). */
  close(fd: number): void;
  /** An fd (of /dev/null) holding the lowest free fd number until moveFd or close. */
  reserveFd(): number;
  /** The file of fd `from` takes number `onto` (close-on-exec); `from` is closed. */
  moveFd(from: number, onto: number): void;
  /** A new regular file opened for writing: openat(O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW). */
  createFile(dirFd: number, name: Bytes, mode: number): number;
  /** A fifo or device node; mode includes the file type bits. */
  mknodAt(dirFd: number, name: Bytes, mode: number, rdev: number): void;
  symlinkAt(target: Bytes, dirFd: number, name: Bytes): void;
  linkAt(oldDirFd: number, oldName: Bytes, newDirFd: number, newName: Bytes): void;
  /** Removes a non-directory (EISDIR for a directory). */
  unlinkAt(dirFd: number, name: Bytes): void;
  /** A Unix socket file at name (bound, then the socket closed). */
  bindSocketAt(dirFd: number, name: Bytes): void;
  fchownAt(dirFd: number, name: Bytes, uid: number, gid: number): void;
  fchmodAt(dirFd: number, name: Bytes, mode: number): void;
  /** atime and mtime of name itself (a symlink's own), to the nanosecond; dirFd AT_FDCWD takes a whole path. */
  utimensAt(dirFd: number, name: Bytes, sec: number, nsec: number): void;
  futimens(fd: number, sec: number, nsec: number): void;
  fsetxattr(fd: number, name: Bytes, value: Bytes): void;
  /** An xattr of name in dirFd itself (not following a symlink there), through /proc/self/fd. */
  lsetxattrAt(dirFd: number, name: Bytes, xname: Bytes, value: Bytes): void;
  /** An xattr on a whole path, not following a final symlink. */
  lsetxattr(path: Bytes, xname: Bytes, value: Bytes): void;
  /** [name, value or errno name] as listed; null if the file system has no xattrs. */
  readXattrs(path: Bytes): [Buffer, Buffer | string][] | null;
  readonly AT_FDCWD: number;
  readonly VERSION: number;
}

/** Where native/build.mjs puts the addon, from dist/lib/util/. */
const ADDON = fileURLToPath(new URL('../../../native/build/Release/obnam_fsops.node', import.meta.url));

/** The VERSION of native/fsops.c this code needs. */
const NEEDED_VERSION = 2;

let loaded: FsOps | undefined;

export function fsops(): FsOps {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)(ADDON) as FsOps;
  } catch (e) {
    throw new ObnamError(
      'INTERNAL',
      `obnam's native helper is missing or does not load (${ADDON}: ${(e as Error).message.split('\n')[0]}); ` +
        'install python3, make and a C compiler, then run: node native/build.mjs',
    );
  }
  if (loaded.VERSION !== NEEDED_VERSION) {
    const found = loaded.VERSION;
    loaded = undefined;
    throw new ObnamError(
      'INTERNAL',
      `obnam's native helper (${ADDON}) is version ${found}, this obnam needs ${NEEDED_VERSION}; rebuild it: node native/build.mjs`,
    );
  }
  return loaded;
}
