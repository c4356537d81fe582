/**
 * Serving a synthetic read-only FUSE file system from a child process of a
 * benchmark (bench/synthfs.ts, bench/bigfs.ts): mount, print "mounted",
 * take commands line by line from stdin, and unmount on SIGINT, SIGTERM or
 * when stdin closes (the benchmark went away); libfuse's auto_unmount takes
 * the mount down if the process is killed.
 */
import * as readline from 'node:readline';
import Fuse from 'fuse-native';

export async function serveReadOnly(
  mountpoint: string,
  ops: Fuse.Operations,
  opts: { fsname: string; maxRead?: number; onLine?: (line: string) => void },
): Promise<void> {
  const fuse = new Fuse(mountpoint, ops, {
    timeout: false,
    fsname: opts.fsname,
    autoUnmount: true,
    ...(opts.maxRead ? { maxRead: opts.maxRead } : {}),
    mountOptions: ['ro', 'use_ino'],
  });
  await new Promise<void>((res, rej) => fuse.mount((err) => (err ? rej(err) : res())));
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    fuse.unmount(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const rl = readline.createInterface({ input: process.stdin });
  if (opts.onLine) rl.on('line', opts.onLine);
  rl.on('close', stop);
  process.stdout.write('mounted\n');
}
