/**
 * A mount made through the library (FsView + mountView), in a process of its
 * own, as `obnam mount` makes it, but with what the library lets a test
 * inject: the refresh interval, a clock the test moves (over the IPC
 * channel), the cache size and the inode table's capacity. Started by
 * startLibraryMount (mount.ts); the test talks to it with messages:
 *
 *   {type: 'advance', ms}  moves the clock on; answers {type: 'advanced'}
 *   {type: 'stats'}        answers {type: 'stats', view, memory} (FsView.stats(), process.memoryUsage())
 *
 * SIGTERM or SIGINT unmounts and ends the process; so does an unmount from
 * outside. Messages go to stderr.
 *
 *   node library-mount.js '{"repo": DIR, "mountpoint": DIR, "passphrase": P, ...LibraryMountSettings}'
 */
import { poolReader } from '../../lib/fsview/objects.js';
import { FsView } from '../../lib/fsview/view.js';
import { Repository } from '../../lib/repo/repository.js';
import { openStore } from '../../lib/store/open.js';
import { startRepoPool } from '../../lib/engine-workers/start.js';
import { mountView } from '../../mount/mount.js';

export interface LibraryMountSettings {
  /** FsViewOptions.refreshMs (default: the library's). */
  refreshMs?: number;
  /** Use a clock that only the test moves (starting at 0). */
  manualClock?: boolean;
  cacheBytes?: number;
  /** InodeTableOptions.capacity; null: unbounded (Infinity does not survive JSON). */
  inodeCapacity?: number | null;
}

export type LibraryMountRequest = { type: 'advance'; ms: number } | { type: 'stats' };
export type LibraryMountReply =
  | { type: 'advanced' }
  | { type: 'stats'; view: ReturnType<FsView['stats']>; memory: NodeJS.MemoryUsage };

const log = (line: string) => process.stderr.write(`library mount: ${line}\n`);

async function main(): Promise<void> {
  const settings = JSON.parse(process.argv[2]!) as LibraryMountSettings & { repo: string; mountpoint: string; passphrase: string };
  const spec = { type: 'local' as const, dir: settings.repo };
  const repo = await Repository.open(await openStore(spec), settings.passphrase);
  const pool = startRepoPool(repo);
  let clock = 0;
  try {
    const view = await FsView.open(
      { ...poolReader(pool), listSnapshotIds: () => repo.listSnapshotIds(), refresh: () => repo.refresh() },
      {
        onWarning: log,
        refreshMs: settings.refreshMs,
        now: settings.manualClock ? () => clock : undefined,
        cacheBytes: settings.cacheBytes,
        inodes: settings.inodeCapacity === undefined ? undefined : { capacity: settings.inodeCapacity ?? Infinity },
      },
    );
    const m = await mountView({ view, mountpoint: settings.mountpoint, log });
    const stop = () => void m.unmount().catch((e: unknown) => log((e as Error).message));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('message', (msg: LibraryMountRequest) => {
      const reply = (r: LibraryMountReply) => process.send!(r);
      if (msg.type === 'advance') {
        clock += msg.ms;
        reply({ type: 'advanced' });
      } else if (msg.type === 'stats') {
        reply({ type: 'stats', view: view.stats(), memory: process.memoryUsage() });
      }
    });
    await m.closed;
  } finally {
    process.removeAllListeners('message');
    process.disconnect?.();
    await pool.close();
    await repo.close();
  }
}

await main();
