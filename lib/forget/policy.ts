/**
 * forget's retention policy, with restic's (0.17) semantics. Pure: no I/O;
 * the current time and the time zone are passed in.
 *
 * - Filters (--host, --tag, --path) choose which snapshots are considered at
 *   all; the others are neither kept nor removed. A snapshot passes --host if
 *   its host is any of those given, --tag if it has every tag of any one
 *   comma-separated list given ('' stands for "no tags"), and --path if it
 *   has every path given.
 * - The considered snapshots are grouped (by default by host and paths), and
 *   the policy is applied to each group on its own, newest snapshot first.
 * - --keep-last N keeps the N newest. --keep-hourly/daily/weekly/monthly/yearly
 *   N keep the newest snapshot of each of the N newest hours/days/ISO weeks
 *   (Monday to Sunday)/months/years that have a snapshot, on the wall clock of
 *   the given time zone. If a count is left over when the oldest snapshot of
 *   the group is reached, that oldest snapshot is kept as well ("oldest").
 *   N may be Infinity ("unlimited"); 0 means the rule is off.
 * - --keep-within D keeps every snapshot newer than D before the group's
 *   newest snapshot that is not in the future (so a group whose backups
 *   stopped keeps its last ones), by calendar arithmetic in the time zone.
 * - --keep-tag LIST keeps every snapshot with all tags of the list.
 * - A snapshot kept by any rule stays; each kept one lists every rule that
 *   kept it.
 * - Refusals (ObnamError REFUSED): a policy without any rule, and a policy
 *   that would remove every snapshot of a group. Removing everything needs
 *   the snapshots named explicitly.
 */
import { ObnamError } from '../errors.js';
import type { Timestamp } from '../format/tree.js';
import { Duration, formatDuration, subtractDuration } from './duration.js';
import { CivilTime, isoWeek, TimeZone } from './timezone.js';

/** What the policy looks at in a snapshot. */
export interface PolicySnapshot {
  id: string;
  time: Timestamp;
  hostname: string;
  paths: readonly string[];
  tags: readonly string[];
}

export interface Policy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: Duration;
  /** Keep snapshots having every tag of any of these lists. */
  tags?: readonly (readonly string[])[];
}

export interface Filter {
  hosts?: readonly string[];
  tags?: readonly (readonly string[])[];
  paths?: readonly string[];
}

export interface GroupBy {
  host: boolean;
  paths: boolean;
  tags: boolean;
}

export const DEFAULT_GROUP_BY: GroupBy = { host: true, paths: true, tags: false };

/** The values a group's snapshots share (only the grouped fields are present). */
export interface GroupKey {
  hostname?: string;
  paths?: string[];
  tags?: string[];
}

export interface Kept<S> {
  snapshot: S;
  /** The rules that keep it, e.g. "keep-last", "keep-daily (oldest)", "keep-within 1y", "keep-tag a,b". */
  reasons: string[];
}

export interface GroupDecision<S> {
  key: GroupKey;
  /** Newest first. */
  keep: Kept<S>[];
  /** Newest first. */
  remove: S[];
}

export interface Clock {
  /** The current time, UTC seconds. */
  now: number;
  zone: TimeZone;
}

export function isEmptyPolicy(p: Policy): boolean {
  return !p.last && !p.hourly && !p.daily && !p.weekly && !p.monthly && !p.yearly && !p.within && !p.tags?.length;
}

/** The policy as the options that give it, e.g. "--keep-last 3 --keep-daily unlimited --keep-within 1y". */
export function describePolicy(p: Policy): string {
  const parts: string[] = [];
  for (const b of BUCKETS) {
    const n = p[b.rule] as number | undefined;
    if (n) parts.push(`--${b.name} ${n === Infinity ? 'unlimited' : n}`);
  }
  if (p.within) parts.push(`--keep-within ${formatDuration(p.within)}`);
  for (const l of p.tags ?? []) parts.push(`--keep-tag ${l.map((t) => t || "''").join(',')}`);
  return parts.join(' ');
}

/** A tag list (restic's `tag[,tag...]`): comma-separated, blanks around each trimmed; '' stands for "no tags". */
export function parseTagList(s: string): string[] {
  return s.split(',').map((t) => t.trim());
}

/** Whether a snapshot has every tag of the list (an empty tag matches a snapshot without tags). */
export function hasTags(s: PolicySnapshot, list: readonly string[]): boolean {
  return list.every((t) => (t === '' ? s.tags.length === 0 : s.tags.includes(t)));
}

export function matchesFilter(s: PolicySnapshot, f: Filter): boolean {
  if (f.hosts?.length && !f.hosts.includes(s.hostname)) return false;
  if (f.tags?.length && !f.tags.some((l) => hasTags(s, l))) return false;
  if (f.paths?.length && !f.paths.every((p) => s.paths.includes(p))) return false;
  return true;
}

const newestFirst = (a: PolicySnapshot, b: PolicySnapshot) =>
  b.time.sec - a.time.sec || b.time.nsec - a.time.nsec || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

function groupKey(s: PolicySnapshot, by: GroupBy): GroupKey {
  const k: GroupKey = {};
  if (by.host) k.hostname = s.hostname;
  if (by.paths) k.paths = [...s.paths].sort();
  if (by.tags) k.tags = [...s.tags].sort();
  return k;
}

/** Groups snapshots by the chosen fields; groups ordered by key, snapshots newest first. */
export function groupSnapshots<S extends PolicySnapshot>(snaps: readonly S[], by: GroupBy): { key: GroupKey; snapshots: S[] }[] {
  const groups = new Map<string, { key: GroupKey; snapshots: S[] }>();
  for (const s of snaps) {
    const key = groupKey(s, by);
    const k = JSON.stringify([key.hostname ?? null, key.paths ?? null, key.tags ?? null]);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { key, snapshots: [] }));
    g.snapshots.push(s);
  }
  const sorted = [...groups.values()].sort((a, b) => compareKeys(a.key, b.key));
  for (const g of sorted) g.snapshots.sort(newestFirst);
  return sorted;
}

const compareStrings = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function compareLists(a: readonly string[] = [], b: readonly string[] = []): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareStrings(a[i]!, b[i]!);
    if (c) return c;
  }
  return a.length - b.length;
}

function compareKeys(a: GroupKey, b: GroupKey): number {
  return compareStrings(a.hostname ?? '', b.hostname ?? '') || compareLists(a.paths, b.paths) || compareLists(a.tags, b.tags);
}

export function describeGroup(key: GroupKey): string {
  const parts: string[] = [];
  if (key.hostname !== undefined) parts.push(`host ${key.hostname}`);
  if (key.paths !== undefined) parts.push(`paths ${key.paths.join(' ') || '(none)'}`);
  if (key.tags !== undefined) parts.push(`tags ${key.tags.join(',') || '(none)'}`);
  return parts.length ? parts.join(', ') : 'all snapshots';
}

type Bucket = (c: CivilTime, index: number) => number;

const BUCKETS: { rule: keyof Policy; name: string; bucket: Bucket }[] = [
  { rule: 'last', name: 'keep-last', bucket: (_c, i) => i },
  { rule: 'hourly', name: 'keep-hourly', bucket: (c) => ((c.year * 100 + c.month) * 100 + c.day) * 100 + c.hour },
  { rule: 'daily', name: 'keep-daily', bucket: (c) => (c.year * 100 + c.month) * 100 + c.day },
  { rule: 'weekly', name: 'keep-weekly', bucket: (c) => isoWeek(c) },
  { rule: 'monthly', name: 'keep-monthly', bucket: (c) => c.year * 100 + c.month },
  { rule: 'yearly', name: 'keep-yearly', bucket: (c) => c.year },
];

const after = (a: Timestamp, b: Timestamp) => a.sec > b.sec || (a.sec === b.sec && a.nsec > b.nsec);

/**
 * Applies the policy to one group (any order in; newest first out). An empty
 * policy keeps nothing here: callers refuse it first (planForget does).
 */
export function applyPolicy<S extends PolicySnapshot>(group: readonly S[], p: Policy, clock: Clock): { keep: Kept<S>[]; remove: S[] } {
  const list = [...group].sort(newestFirst);
  const keep: Kept<S>[] = [];
  const remove: S[] = [];
  // The newest snapshot that is not in the future anchors --keep-within.
  let cutoff: Timestamp | undefined;
  if (p.within) {
    const latest = list.find((s) => s.time.sec <= clock.now);
    if (latest) cutoff = { sec: subtractDuration(latest.time.sec, p.within, clock.zone), nsec: latest.time.nsec };
  }
  const counters = BUCKETS.map((b) => ({ ...b, left: (p[b.rule] as number | undefined) ?? 0, last: NaN }));
  list.forEach((s, index) => {
    const reasons: string[] = [];
    for (const l of p.tags ?? []) if (hasTags(s, l)) reasons.push(`keep-tag ${l.map((t) => t || "''").join(',')}`);
    if (p.within && (!cutoff || after(s.time, cutoff))) reasons.push(`keep-within ${formatDuration(p.within)}`);
    const civil = clock.zone.civil(s.time.sec);
    const oldest = index === list.length - 1;
    for (const c of counters) {
      if (c.left <= 0) continue;
      const value = c.bucket(civil, index);
      if (value !== c.last || oldest) {
        reasons.push(value === c.last ? `${c.name} (oldest)` : c.name);
        c.last = value;
        c.left--;
      }
    }
    if (reasons.length) keep.push({ snapshot: s, reasons });
    else remove.push(s);
  });
  return { keep, remove };
}

export interface ForgetPolicyOptions {
  policy: Policy;
  filter?: Filter;
  groupBy?: GroupBy;
  clock: Clock;
}

/**
 * Filters, groups and applies the policy. REFUSED if the policy is empty or
 * would remove every snapshot of some group (nothing is decided then).
 */
export function planForget<S extends PolicySnapshot>(snaps: readonly S[], opts: ForgetPolicyOptions): GroupDecision<S>[] {
  if (isEmptyPolicy(opts.policy)) {
    throw new ObnamError('REFUSED', 'no policy given, so nothing would be kept: give --keep-* options, or name the snapshots to remove');
  }
  const considered = snaps.filter((s) => matchesFilter(s, opts.filter ?? {}));
  const out: GroupDecision<S>[] = [];
  for (const g of groupSnapshots(considered, opts.groupBy ?? DEFAULT_GROUP_BY)) {
    const { keep, remove } = applyPolicy(g.snapshots, opts.policy, opts.clock);
    if (keep.length === 0) {
      throw new ObnamError(
        'REFUSED',
        `refusing to remove all ${remove.length} snapshots of ${describeGroup(g.key)}: the policy keeps none of them ` +
          '(name them explicitly to remove them all)',
      );
    }
    out.push({ key: g.key, keep, remove });
  }
  return out;
}
