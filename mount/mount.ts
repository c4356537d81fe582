/**
 * Mounting a file-system view with fuse-native, and the mount's lifetime.
 *
 * The mount is read-only (the `ro` option, and EROFS from every write
 * operation), caches attributes, names and pages in the kernel for a long
 * time (snapshots never change), but names that are not there only for as
 * long as the view shows one reading of the snapshot list (so a snapshot
 * made since appears), never times requests out (a slow remote
 * fetch must not fail a read), and reports stable inode numbers (use_ino) so
 * hardlinks survive `cp -a`. With auto_unmount, libfuse's helper unmounts if
 * the process dies without doing so itself (helper-socket.ts makes that
 * reliable).
 *
 * `closed` resolves when the file system is gone, whether through unmount()
 * or from outside (`fusermount -u`), which is noticed by watching
 * /proc/self/mountinfo.
 */
import * as fs from 'node:fs/promises';
import Fuse from 'fuse-native';
import { ObnamError } from '../lib/errors.js';
import type { FsView } from '../lib/fsview/view.js';
import { ErrorReporter } from './errno.js';
import { mountWithHelperSocketBelow } from './helper-socket.js';
import { mountAt, OBNAM_FSTYPE, watchUnmount } from './mountinfo.js';
import { fuseOperations } from './ops.js';

/** Seconds the kernel may keep attributes and names: snapshots never change. */
const CACHE_SECONDS = 24 * 3600;
const FSTYPE = OBNAM_FSTYPE;
/** The version of patches/fuse-native+2.2.6.patch this code needs. */
const PATCH_VERSION = 2;
/** How often to check whether the file system was unmounted from outside. */
const WATCH_MS = 500;

export interface MountOptions {
  view: FsView;
  mountpoint: string;
  /** Where failures (EIO) are reported, one line each. */
  log?: (line: string) => void;
  /** libfuse debug output on stderr. */
  debug?: boolean;
}

export interface Mounted {
  /** The resolved mount point. */
  mountpoint: string;
  /**
   * Whether the fuse-native addon was rebuilt with the patch: file times then
   * carry nanoseconds (else milliseconds), and names need not be UTF-8.
   */
  nativePatched: boolean;
  /** Resolves once the file system is no longer mounted. */
  closed: Promise<void>;
  /** Unmounts (if still mounted) and resolves when done; safe to call more than once. */
  unmount(): Promise<void>;
}

/** Seconds the kernel may remember that a name is not there: no longer than a reading of the snapshot list is shown. */
function negativeSeconds(refreshMs: number): number {
  return Number.isFinite(refreshMs) ? Math.min(CACHE_SECONDS, Math.max(0, refreshMs) / 1000) : CACHE_SECONDS;
}

function fuseCall(fn: (cb: (err: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

export async function mountView(opts: MountOptions): Promise<Mounted> {
  if (Fuse.OBNAM_PATCH !== PATCH_VERSION) {
    throw new ObnamError(
      'INTERNAL',
      'fuse-native is not patched for this obnam (was it installed with --ignore-scripts?); run: node patches/apply.mjs in the obnam directory',
    );
  }
  const nativePatched = Fuse.NATIVE_PATCHED === true;
  let mountpoint: string;
  try {
    mountpoint = await fs.realpath(opts.mountpoint);
    if (!(await fs.stat(mountpoint)).isDirectory()) throw new ObnamError('USAGE', `${opts.mountpoint} is not a directory`);
  } catch (e) {
    if (e instanceof ObnamError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOTCONN') {
      throw new ObnamError(
        'IO',
        `${opts.mountpoint} is a dead mount (the process that served it is gone); free it with: fusermount -u ${opts.mountpoint}`,
      );
    }
    throw new ObnamError('USAGE', `cannot mount on ${opts.mountpoint}: ${(e as Error).message}`);
  }
  const existing = await mountAt(mountpoint);
  if (existing?.fstype === FSTYPE) throw new ObnamError('USAGE', `an obnam repository is already mounted at ${mountpoint}`);
  // libfuse refuses a non-empty mount point with an unhelpful "fuse failed": say why first.
  if ((await fs.readdir(mountpoint)).length) throw new ObnamError('USAGE', `${mountpoint} is not empty; mount on an empty directory`);

  const log = opts.log ?? ((line: string) => process.stderr.write(`obnam mount: ${line}\n`));
  const fuse = new Fuse(mountpoint, fuseOperations(opts.view, new ErrorReporter(log), { rawNames: nativePatched }), {
    timeout: false,
    fsname: 'obnam',
    subtype: 'obnam',
    kernelCache: true,
    attrTimeout: CACHE_SECONDS,
    entryTimeout: CACHE_SECONDS,
    autoUnmount: true,
    debug: !!opts.debug,
    mountOptions: ['ro', 'use_ino', `negative_timeout=${negativeSeconds(opts.view.refreshMs)}`],
  });
  try {
    // So that libfuse's auto_unmount helper unmounts a killed mount (see helper-socket.ts).
    await mountWithHelperSocketBelow(() => fuseCall((cb) => fuse.mount(cb)));
  } catch (e) {
    throw new ObnamError('IO', `cannot mount on ${mountpoint}: ${(e as Error).message}`, { cause: e });
  }
  const ours = await mountAt(mountpoint);
  if (!ours || ours.fstype !== FSTYPE) {
    await fuseCall((cb) => fuse.unmount(cb)).catch(() => undefined);
    throw new ObnamError('INTERNAL', `mounted, but ${mountpoint} does not show up in /proc/self/mountinfo`);
  }
  /** Still mounted (our mount, not something mounted there since)? */
  const stillMounted = async () => (await mountAt(mountpoint))?.id === ours.id;

  let done: () => void;
  const closed = new Promise<void>((resolve) => (done = resolve));
  let unmounting: Promise<void> | undefined;
  let stopWatching: () => void;
  const watch = () => {
    stopWatching = watchUnmount(mountpoint, ours.id, () => void unmount().catch(() => undefined), WATCH_MS);
  };

  const unmount = (): Promise<void> => {
    unmounting ??= (async () => {
      stopWatching();
      try {
        await fuseCall((cb) => fuse.unmount(cb));
      } catch (e) {
        // fusermount fails if the file system is already gone (unmounted from outside): that is fine.
        if (await stillMounted()) {
          unmounting = undefined; // let a later call try again
          watch();
          throw new ObnamError('IO', `cannot unmount ${mountpoint}: ${(e as Error).message}`, { cause: e });
        }
      }
      done();
    })();
    return unmounting;
  };
  watch();

  return { mountpoint, nativePatched, closed, unmount };
}
