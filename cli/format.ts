/** Text and JSON renderings of snapshots and tree entries, shared by list, ls and fsck. */
import type { SnapshotInfo } from '../lib/repo/repository.js';
import type { Timestamp, TreeEntry } from '../lib/format/tree.js';

/**
 * The Date of seconds since the epoch, or undefined beyond what a Date can
 * hold (±8.64e15 ms): a damaged or hostile object may record any integer.
 */
function dateOf(sec: number): Date | undefined {
  const d = new Date(sec * 1000);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** UTC to the nanosecond, e.g. 2026-11-29T10:14:32.123456789Z (@SECONDS.NANOSECONDS beyond a Date's range). */
export function isoTime(t: Timestamp): string {
  const nsec = String(t.nsec).padStart(9, '0');
  const d = dateOf(t.sec);
  return d ? d.toISOString().replace(/\.\d{3}Z$/, `.${nsec}Z`) : `@${t.sec}.${nsec}`;
}

/** UTC to the second, e.g. 2026-11-29T10:14:32.000Z (@SECONDS beyond a Date's range). */
export function isoSeconds(sec: number): string {
  return dateOf(sec)?.toISOString() ?? `@${sec}`;
}

/** Local time to the second, e.g. 2026-11-29 11:14:32 (@SECONDS beyond a Date's range). */
export function localTime(t: Timestamp): string {
  const d = dateOf(t.sec);
  if (!d) return `@${t.sec}`;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function snapshotJson(s: SnapshotInfo): Record<string, unknown> {
  return {
    id: s.id,
    short_id: s.id.slice(0, 8),
    time: isoTime(s.time),
    end: isoTime(s.end),
    hostname: s.hostname,
    username: s.username,
    paths: s.paths,
    tags: s.tags,
    parent: s.parent ?? null,
    tree: s.tree,
    program: s.program,
    summary: s.summary,
  };
}

const TYPE_CHAR: Record<TreeEntry['type'], string> = {
  file: '-',
  dir: 'd',
  symlink: 'l',
  hardlink: 'h',
  fifo: 'p',
  chardev: 'c',
  blockdev: 'b',
  socket: 's',
};

export function modeString(e: TreeEntry): string {
  const m = e.mode;
  const rwx = (bits: number, special: boolean, ch: string) =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return (
    TYPE_CHAR[e.type] +
    rwx((m >> 6) & 7, !!(m & 0o4000), 's') +
    rwx((m >> 3) & 7, !!(m & 0o2000), 's') +
    rwx(m & 7, !!(m & 0o1000), 't')
  );
}

export function entryJson(path: Buffer, e: TreeEntry): Record<string, unknown> {
  return {
    path: path.toString('utf8'),
    name: e.name.toString('utf8'),
    type: e.type,
    mode: e.mode,
    permissions: modeString(e),
    uid: e.uid,
    gid: e.gid,
    user: e.user ?? null,
    group: e.group ?? null,
    size: e.size,
    mtime: isoTime(e.mtime),
    ctime: isoTime(e.ctime),
    inode: e.inode ?? null,
    nlink: e.nlink ?? null,
    target: e.target?.toString('utf8'),
    link: e.link ? '/' + e.link.toString('utf8') : undefined,
    xattrs: e.xattrs?.map(([n]) => n.toString('utf8')),
  };
}
