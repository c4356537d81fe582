/**
 * Unmounting an obnam mount from outside the process that serves it (obnam
 * umount DIR): the directory must be an obnam FUSE mount; fusermount does
 * the unmount, as for any FUSE file system mounted by a user. The serving
 * process notices and exits.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ObnamError } from '../lib/errors.js';
import { mountAt, OBNAM_FSTYPE } from './mountinfo.js';

/**
 * The absolute path of a would-be mount point, resolving symlinks in its
 * parent only: looking at the mount point itself would ask the (perhaps
 * hung) file system mounted there.
 */
async function mountpointPath(dir: string): Promise<string> {
  const abs = path.resolve(dir);
  if (abs === '/') return abs;
  let parent: string;
  try {
    parent = await fs.realpath(path.dirname(abs));
  } catch (e) {
    throw new ObnamError('USAGE', `${dir}: ${(e as Error).message}`);
  }
  return path.join(parent, path.basename(abs));
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string; missing: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e: NodeJS.ErrnoException) => resolve({ code: null, stderr: e.message, missing: e.code === 'ENOENT' }));
    child.on('close', (code) => resolve({ code, stderr, missing: false }));
  });
}

/** Unmounts the obnam mount at `dir`; USAGE if `dir` is not one. Returns the mount point. */
export async function unmountObnam(dir: string): Promise<string> {
  const mountpoint = await mountpointPath(dir);
  const m = await mountAt(mountpoint);
  if (!m) {
    const exists = await fs.lstat(mountpoint).then(
      () => true,
      () => false,
    );
    throw new ObnamError('USAGE', exists ? `${dir} is not a mount point` : `${dir} does not exist`);
  }
  if (m.fstype !== OBNAM_FSTYPE) throw new ObnamError('USAGE', `${dir} is not an obnam mount (it is a ${m.fstype} file system)`);
  let r = await run('fusermount', ['-u', mountpoint]);
  if (r.missing) r = await run('fusermount3', ['-u', mountpoint]);
  if (r.missing) throw new ObnamError('IO', 'cannot unmount: neither fusermount nor fusermount3 is installed (package fuse3 or libfuse2)');
  if (r.code !== 0) {
    const why = (r.stderr.trim().split('\n').pop() || `fusermount exited ${r.code}`).replace(/^fusermount3?: /, '');
    const hint = /busy/i.test(why) ? ' (something is using it: close what is open there, or unmount lazily with fusermount -u -z)' : '';
    throw new ObnamError('IO', `cannot unmount ${mountpoint}: ${why}${hint}`);
  }
  return mountpoint;
}
