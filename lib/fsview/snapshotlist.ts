/**
 * The snapshots a file-system view shows, kept current while the view is in
 * use: a caller that needs the list (a listing or lookup of snapshots/, ids/
 * or latest) gets it read again from the repository when the last read is
 * older than the refresh interval, so backups made since appear and
 * snapshots deleted since disappear, without a remount. The list is read at
 * most once per interval, and callers that arrive while a read is under way
 * share it.
 *
 * A read renews the store's view (refreshStore: deletions by garbage
 * collection in other processes become visible), lists the snapshot ids and
 * fetches only the snapshot objects not seen before (they never change). One that cannot be read is named through
 * onWarning (once, until it reads again or goes away) and left out; a listing
 * that fails keeps the snapshots as last read, and is named too. Nothing
 * here blocks the event loop: listing is the store's, fetching the loader's.
 */
import { describeError, ObnamError } from '../errors.js';
import type { SnapshotInfo } from '../repo/repository.js';
import type { RepoObjects } from './objects.js';
import { loadSnapshots, nameSnapshots, SnapshotDir } from './snapshots.js';

/** Milliseconds the snapshot list stays fresh by default. */
export const DEFAULT_REFRESH_MS = 5000;

export interface SnapshotListOptions {
  /** Lists every snapshot id in the repository, afresh at each call. */
  listIds: () => AsyncIterable<string>;
  /** Called before each listing: the store's view of other processes' puts and deletes is renewed. */
  refreshStore?: () => Promise<void>;
  objects: RepoObjects;
  /** Milliseconds a read stays fresh (0: read at every use; Infinity: only once). */
  refreshMs: number;
  /** A monotonic clock in milliseconds. */
  now: () => number;
  onWarning?: (message: string) => void;
}

/** One reading of the list: what a view shows until the next one. */
export interface ShownSnapshots {
  /** Oldest first. */
  readonly all: readonly SnapshotDir[];
  readonly byName: ReadonlyMap<string, SnapshotDir>;
  readonly byId: ReadonlyMap<string, SnapshotDir>;
  /** The newest, if any. */
  readonly latest: SnapshotDir | undefined;
}

function shown(all: SnapshotDir[]): ShownSnapshots {
  return {
    all,
    byName: new Map(all.map((s) => [s.name, s])),
    byId: new Map(all.map((s) => [s.info.id, s])),
    latest: all[all.length - 1],
  };
}

export class SnapshotList {
  private current: ShownSnapshots = shown([]);
  /** Every snapshot shown now, by id (snapshot objects are immutable: never fetched twice). */
  private readonly known = new Map<string, SnapshotInfo>();
  private readonly serials = new Map<string, number>();
  private nextSerial = 0;
  /** Unreadable snapshots already named, with the message they were named with. */
  private readonly warned = new Map<string, string>();
  /** Other members' snapshots not shared with this identity (format version 3): not shown, not read again. */
  private readonly notShared = new Set<string>();
  private readAt = -Infinity;
  private reading?: Promise<void>;

  private constructor(private readonly opts: SnapshotListOptions) {}

  /**
   * Reads the list for the first time. Fails if it cannot be listed, or if
   * there are snapshots and none of them can be read.
   */
  static async open(opts: SnapshotListOptions): Promise<SnapshotList> {
    const list = new SnapshotList(opts);
    list.readAt = opts.now();
    const failures = await list.read();
    if (failures.length && list.known.size === 0) {
      const first = failures[0];
      const cause = first instanceof Error ? first.cause : undefined;
      throw new ObnamError(cause instanceof ObnamError ? cause.code : 'CORRUPT', `no snapshot could be read: ${describeError(first)}`, {
        cause: first,
      });
    }
    return list;
  }

  /** The snapshots as last read (no refresh). */
  get snapshots(): ShownSnapshots {
    return this.current;
  }

  /** The snapshots, read again first if the last read is older than the refresh interval. Never rejects. */
  fresh(): Promise<ShownSnapshots> {
    if (!this.reading && this.opts.now() - this.readAt >= this.opts.refreshMs) {
      this.readAt = this.opts.now();
      this.reading = this.read().then(
        () => undefined,
        (e: unknown) => this.opts.onWarning?.(`cannot refresh the snapshot list (showing it as before): ${describeError(e)}`),
      );
      void this.reading.finally(() => (this.reading = undefined));
    }
    return this.reading ? this.reading.then(() => this.current) : Promise.resolve(this.current);
  }

  /** Lists, fetches the snapshots not known yet, and replaces the list; the errors of those left out. */
  private async read(): Promise<unknown[]> {
    await this.opts.refreshStore?.();
    const ids = new Set<string>();
    for await (const id of this.opts.listIds()) ids.add(id);
    const failures: unknown[] = [];
    const added = await loadSnapshots(
      [...ids].filter((id) => !this.known.has(id) && !this.notShared.has(id)),
      this.opts.objects,
      (id, e) => {
        failures.push(e);
        const message = `snapshot ${id} left out: ${describeError(e)}`;
        if (this.warned.get(id) !== message) this.opts.onWarning?.(message);
        this.warned.set(id, message);
      },
      (id) => this.notShared.add(id),
    );
    for (const info of added) {
      this.known.set(info.id, info);
      this.warned.delete(info.id);
      if (!this.serials.has(info.id)) this.serials.set(info.id, this.nextSerial++);
    }
    for (const id of [...this.notShared]) if (!ids.has(id)) this.notShared.delete(id);
    for (const id of [...this.known.keys()]) {
      if (ids.has(id)) continue;
      this.known.delete(id);
      this.serials.delete(id); // never reused: a snapshot that comes back gets a new serial
    }
    for (const id of [...this.warned.keys()]) if (!ids.has(id)) this.warned.delete(id);
    this.current = shown(nameSnapshots([...this.known.values()], (id) => this.serials.get(id)!));
    return failures;
  }
}
