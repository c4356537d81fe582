/**
 * The snapshots a mount shows, and their directory names: the snapshot's
 * time in UTC, ISO-8601 to the second ("2026-11-29T10:14:32Z"). Snapshots
 * that would share a name (taken in the same second) each get their short id
 * appended ("2026-11-29T10:14:32Z-1a2b3c4d"), so a name never depends on
 * which of them is listed first.
 */
import { ObnamError } from '../errors.js';
import { shortId } from '../format/ids.js';
import type { SnapshotInfo } from '../repo/repository.js';
import type { RepoObjects } from './objects.js';

export interface SnapshotDir {
  /** Name under snapshots/. */
  name: string;
  info: SnapshotInfo;
  /** Position, oldest first. */
  index: number;
  /**
   * A number for this snapshot that stays the same for as long as the mount
   * shows it (positions shift as snapshots come and go); part of every inode
   * key of this snapshot.
   */
  serial: number;
}

export function timeName(info: SnapshotInfo): string {
  const d = new Date(info.time.sec * 1000);
  return Number.isNaN(d.getTime()) ? `t${info.time.sec}` : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const byTime = (a: SnapshotInfo, b: SnapshotInfo) =>
  a.time.sec - b.time.sec || a.time.nsec - b.time.nsec || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Names snapshots (oldest first in the result); `serialOf` gives each its serial (default: its position). */
export function nameSnapshots(infos: readonly SnapshotInfo[], serialOf?: (id: string) => number): SnapshotDir[] {
  const sorted = [...infos].sort(byTime);
  const counts = new Map<string, number>();
  for (const s of sorted) counts.set(timeName(s), (counts.get(timeName(s)) ?? 0) + 1);
  const used = new Set<string>();
  return sorted.map((info, index) => {
    const base = timeName(info);
    let name = counts.get(base)! > 1 ? `${base}-${shortId(info.id)}` : base;
    if (used.has(name)) name = `${base}-${info.id}`; // two ids with the same 8-digit prefix
    used.add(name);
    return { name, info, index, serial: serialOf ? serialOf(info.id) : index };
  });
}

/** Whether a read failed because the snapshot is another member's, not shared with this identity (format version 3). */
export function isNotShared(e: unknown): boolean {
  const cause = e instanceof Error && e.cause instanceof ObnamError ? e.cause : e;
  return cause instanceof ObnamError && cause.code === 'NOT_SHARED';
}

/**
 * Loads these snapshot objects (eight at a time). One that cannot be read is
 * reported through `onError` and left out; the others are still shown. One
 * not shared with this identity (a shared repository) is not this view's:
 * it goes to `onNotShared`, not reported.
 */
export async function loadSnapshots(
  all: readonly string[],
  objects: RepoObjects,
  onError: (id: string, error: unknown) => void,
  onNotShared: (id: string) => void = () => undefined,
): Promise<SnapshotInfo[]> {
  const out: SnapshotInfo[] = [];
  const limit = 8;
  for (let i = 0; i < all.length; i += limit) {
    const batch = await Promise.all(
      all.slice(i, i + limit).map((id) =>
        objects.snapshot(id).catch((e: unknown) => {
          if (isNotShared(e)) onNotShared(id);
          else onError(id, e);
          return undefined;
        }),
      ),
    );
    for (const s of batch) if (s) out.push(s);
  }
  return out;
}
