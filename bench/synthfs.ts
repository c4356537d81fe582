/**
 * A synthetic read-only FUSE file system serving the scale benchmark's data
 * set (bench/scale-data.ts) without any of it on disk: every directory
 * listing, stat and byte is computed from the path, so 10 million files cost
 * no more memory than 100. Run as its own process by bench/scale.ts, so the
 * benchmark's tools read it through the kernel like any other directory:
 *
 *   node dist/bench/synthfs.js MOUNTPOINT FILES [realistic|small]
 *
 * It prints "mounted" once the file system is there; a line "epoch 1" (or
 * "epoch 0") on stdin switches the data set to that epoch (the 1% mutation)
 * and is answered with the same line once done. It unmounts on SIGINT,
 * SIGTERM or when stdin closes (the benchmark went away), and libfuse's
 * auto_unmount takes it down if this process is killed.
 */
import type Fuse from 'fuse-native';
import { contentAt, dirIno, Epoch, FileAttrs, fileAttrs, Layout, layout, mutationOf, Node, resolve, subEntries, subName, subRange, subsOf, topName } from './scale-data.js';
import { serveReadOnly } from './serve-fuse.js';

const ENOENT = -2;
const ENOTDIR = -20;
const EISDIR = -21;
const EROFS = -30;
const O_ACCMODE = 3;
const T0 = 1_700_000_000_000;

function dirStat(ino: number, mtimeMs: number): Fuse.Stat {
  return { mode: 0o40755, uid: 0, gid: 0, size: 4096, nlink: 2, ino, atime: mtimeMs, mtime: mtimeMs, ctime: mtimeMs, blksize: 4096, blocks: 8 };
}

function fileStat(a: FileAttrs): Fuse.Stat {
  const ms = a.mtime * 1000;
  return { mode: a.mode, uid: 0, gid: 0, size: a.size, nlink: 1, ino: a.ino, atime: ms, mtime: ms, ctime: ms, blksize: 4096, blocks: Math.ceil(a.size / 512) };
}

/** Whether any file of subdirectory (t, s) is touched by the mutation (its mtime then moves in epoch 1). */
function subMutated(l: Layout, t: number, s: number): boolean {
  const [first, end] = subRange(l, t, s);
  for (let i = first; i < end; i++) if (mutationOf(i) && mutationOf(i) !== 'changed') return true;
  return false;
}

export function synthOperations(l: Layout, epochOf: () => Epoch): Fuse.Operations {
  const open = new Map<number, FileAttrs>();
  let nextFd = 1;
  const find = (p: string): Node | undefined => resolve(l, p, epochOf());
  const attrsOf = (n: Extract<Node, { kind: 'file' }>) => fileAttrs(l, n.i, epochOf(), n.added);
  return {
    statfs(_p, cb) {
      cb(0, { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 255 });
    },
    getattr(p, cb) {
      const n = find(p);
      if (!n) return cb(ENOENT);
      if (n.kind === 'root') return cb(0, dirStat(1, T0));
      if (n.kind === 'top') return cb(0, dirStat(dirIno(l, n.t), T0));
      if (n.kind === 'sub') {
        const moved = epochOf() === 1 && subMutated(l, n.t, n.s);
        return cb(0, dirStat(dirIno(l, n.t, n.s), T0 + (moved ? 86_400_000 : 0)));
      }
      cb(0, fileStat(attrsOf(n)));
    },
    readdir(p, cb) {
      const n = find(p);
      if (!n) return cb(ENOENT);
      const names: string[] = [];
      if (n.kind === 'root') for (let t = 0; t < l.tops; t++) names.push(topName(t));
      else if (n.kind === 'top') for (let s = 0; s < subsOf(l, n.t); s++) names.push(subName(s));
      else if (n.kind === 'sub') for (const e of subEntries(l, n.t, n.s, epochOf())) names.push(e.name);
      else return cb(ENOTDIR);
      cb(0, names);
    },
    open(p, flags, cb) {
      const n = find(p);
      if (!n) return cb(ENOENT);
      if (n.kind !== 'file') return cb(EISDIR);
      if ((flags & O_ACCMODE) !== 0) return cb(EROFS);
      const fd = nextFd++;
      open.set(fd, attrsOf(n));
      cb(0, fd);
    },
    read(_p, fd, buf, len, pos, cb) {
      const a = open.get(fd);
      if (!a) return cb(-9); // EBADF
      const bytes = contentAt(a, pos, len);
      bytes.copy(buf);
      cb(bytes.length);
    },
    release(_p, fd, cb) {
      open.delete(fd);
      cb(0);
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const [mountpoint, filesArg, mixArg = 'realistic'] = argv;
  const files = Number(filesArg);
  if (!mountpoint || !Number.isSafeInteger(files) || files < 1 || (mixArg !== 'realistic' && mixArg !== 'small')) {
    process.stderr.write('usage: synthfs.js MOUNTPOINT FILES [realistic|small]\n');
    process.exit(2);
  }
  let epoch: Epoch = 0;
  await serveReadOnly(mountpoint, synthOperations(layout(files, mixArg), () => epoch), {
    fsname: 'obnam-bench-synth',
    onLine: (line) => {
      const m = /^epoch ([01])$/.exec(line.trim());
      if (!m) return void process.stdout.write(`unknown command: ${line}\n`);
      epoch = Number(m[1]) as Epoch;
      process.stdout.write(`epoch ${epoch}\n`);
    },
  });
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`synthfs: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
