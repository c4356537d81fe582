/**
 * Types for the parts of fuse-native 2.2.6 that obnam uses, including what
 * patches/fuse-native+2.2.6.patch adds (mountOptions, *Ns times, Buffer
 * xattr names, the OBNAM_PATCH and NATIVE_PATCHED markers). Every callback
 * takes a number: 0 or a byte count for success, a negative errno for
 * failure. With the native patch, path and name strings are latin1 (one
 * character per byte of the name).
 */
declare module 'fuse-native' {
  namespace Fuse {
    /** Times: a Date or milliseconds; with the patch, *Ns (bigint nanoseconds since the epoch) win. */
    interface Stat {
      mode: number;
      uid: number;
      gid: number;
      size: number;
      dev?: number;
      nlink: number;
      ino: number;
      rdev?: number;
      blksize?: number;
      blocks?: number;
      atime: Date | number;
      mtime: Date | number;
      ctime: Date | number;
      atimeNs?: bigint;
      mtimeNs?: bigint;
      ctimeNs?: bigint;
    }

    interface Statfs {
      bsize: number;
      frsize: number;
      blocks: number;
      bfree: number;
      bavail: number;
      files: number;
      ffree: number;
      favail: number;
      fsid: number;
      flag: number;
      namemax: number;
    }

    type Done = (result: number) => void;

    interface Operations {
      init?(cb: Done): void;
      statfs?(path: string, cb: (err: number, st?: Statfs) => void): void;
      getattr?(path: string, cb: (err: number, st?: Stat) => void): void;
      readdir?(path: string, cb: (err: number, names?: string[], stats?: Stat[]) => void): void;
      readlink?(path: string, cb: (err: number, target?: string) => void): void;
      open?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
      read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Done): void;
      release?(path: string, fd: number, cb: Done): void;
      getxattr?(path: string, name: string, position: number, cb: (err: number, value?: Buffer | null) => void): void;
      listxattr?(path: string, cb: (err: number, names?: (string | Buffer)[]) => void): void;
      write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Done): void;
      create?(path: string, mode: number, cb: (err: number, fd?: number) => void): void;
      truncate?(path: string, size: number, cb: Done): void;
      ftruncate?(path: string, fd: number, size: number, cb: Done): void;
      utimens?(path: string, atime: number, mtime: number, cb: Done): void;
      chown?(path: string, uid: number, gid: number, cb: Done): void;
      chmod?(path: string, mode: number, cb: Done): void;
      mknod?(path: string, mode: number, dev: number, cb: Done): void;
      setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
      removexattr?(path: string, name: string, cb: Done): void;
      unlink?(path: string, cb: Done): void;
      rename?(src: string, dest: string, cb: Done): void;
      link?(src: string, dest: string, cb: Done): void;
      symlink?(src: string, dest: string, cb: Done): void;
      mkdir?(path: string, mode: number, cb: Done): void;
      rmdir?(path: string, cb: Done): void;
    }

    interface Options {
      /** Milliseconds before an unanswered request fails; false: never. */
      timeout?: number | false;
      force?: boolean;
      mkdir?: boolean;
      debug?: boolean;
      allowOther?: boolean;
      autoUnmount?: boolean;
      defaultPermissions?: boolean;
      fsname?: string;
      subtype?: string;
      kernelCache?: boolean;
      autoCache?: boolean;
      entryTimeout?: number;
      attrTimeout?: number;
      maxRead?: number;
      /** Patch: any further libfuse mount options, e.g. ["ro", "use_ino"]. */
      mountOptions?: string[];
    }
  }

  class Fuse {
    constructor(mnt: string, ops: Fuse.Operations, opts?: Fuse.Options);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    /** Patch marker: the version of the obnam patch's JavaScript part (undefined: not patched). */
    static readonly OBNAM_PATCH?: number;
    /** Patch marker: the native addon has the same patch: nanosecond times, latin1 names. */
    static readonly NATIVE_PATCHED?: boolean;
    static readonly ENOENT: number;
    static readonly EIO: number;
  }

  export = Fuse;
}
