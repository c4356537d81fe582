/**
 * obnam mount MOUNTPOINT: every snapshot as a read-only file system, in the
 * foreground until it is unmounted (fusermount -u MOUNTPOINT, Ctrl-C or
 * SIGTERM; all of them leave nothing mounted).
 */
import { ObnamError } from '../../lib/errors.js';
import { poolLoader } from '../../lib/fsview/objects.js';
import { DEFAULT_CACHE_BYTES, FsView } from '../../lib/fsview/view.js';
import { startRepoPool } from '../../lib/workers/repopool.js';
import type { Mounted } from '../../mount/mount.js';
import { describeLocation, GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { formatBytes } from '../progress.js';
import { cancelSignal } from '../signals.js';

export interface MountArgs extends GlobalArgs {
  mountpoint: string;
  'cache-size'?: string;
  debug?: boolean;
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** "512M", "2G", "1048576", "64MiB" to bytes. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(s);
  if (!m) throw new ObnamError('USAGE', `bad size ${JSON.stringify(s)}: expected a number with an optional K, M, G or T`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

export async function mountCommand(args: MountArgs): Promise<number> {
  const cacheBytes = args['cache-size'] === undefined ? DEFAULT_CACHE_BYTES : parseSize(args['cache-size']);
  const signal = cancelSignal();
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  const pool = startRepoPool(repo);
  const log = (line: string) => process.stderr.write(`obnam mount: ${line}\n`);
  let mounted: Mounted | undefined;
  try {
    const view = await FsView.open({ snapshotIds: repo.store.list('snapshot'), load: poolLoader(pool) }, { cacheBytes, onWarning: log });
    if (signal.aborted) return EXIT_OK;
    // Loaded here, not at startup: the other commands must work where libfuse is missing.
    const { mountView } = await import('../../mount/mount.js');
    mounted = await mountView({ view, mountpoint: args.mountpoint, log, debug: args.debug });
    const m = mounted;
    signal.addEventListener('abort', () => m.unmount().catch((e: unknown) => log((e as Error).message)), { once: true });
    if (signal.aborted) await m.unmount();
    log(
      `${view.snapshots.length} snapshots of ${describeLocation(ctx.spec)} mounted read-only at ${m.mountpoint} ` +
        `(cache ${formatBytes(cacheBytes)}${m.nativePatched ? '' : '; unpatched fuse-native: times in milliseconds, UTF-8 names only'}); ` +
        `unmount with: fusermount -u ${m.mountpoint}`,
    );
    await m.closed;
    return EXIT_OK;
  } finally {
    await mounted?.unmount();
    await pool.close();
    await repo.close();
  }
}
