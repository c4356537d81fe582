/**
 * Calendar durations for `forget --keep-within`, in restic's syntax: numbers
 * followed by a unit, y (years), m (months), d (days), h (hours), e.g.
 * "1y2m3d4h" or "36h". Stricter than restic: each unit at most once, no
 * negative numbers, and not all zero (a zero duration would keep nothing).
 */
import { ObnamError } from '../errors.js';
import type { TimeZone } from './timezone.js';

export interface Duration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

const UNITS = { y: 'years', m: 'months', d: 'days', h: 'hours' } as const;

export function parseDuration(text: string): Duration {
  const s = text.trim();
  const bad = (why: string) => new ObnamError('USAGE', `invalid duration ${JSON.stringify(text)}: ${why} (expected e.g. 1y2m3d4h)`);
  if (!s) throw bad('empty');
  const d: Duration = { years: 0, months: 0, days: 0, hours: 0 };
  const seen = new Set<string>();
  const re = /(\d+)([a-zA-Z]?)/y;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) throw bad(`a number expected at ${JSON.stringify(s.slice(pos))}`);
    const unit = m[2]!;
    if (!unit) throw bad(`no unit after ${m[1]}`);
    if (!(unit in UNITS)) throw bad(`unknown unit ${JSON.stringify(unit)}`);
    if (seen.has(unit)) throw bad(`unit ${unit} given twice`);
    seen.add(unit);
    const n = Number(m[1]);
    if (!Number.isSafeInteger(n)) throw bad('number too large');
    d[UNITS[unit as keyof typeof UNITS]] = n;
    pos = re.lastIndex;
  }
  if (!d.years && !d.months && !d.days && !d.hours) throw bad('zero');
  return d;
}

export function formatDuration(d: Duration): string {
  const s = (d.years ? `${d.years}y` : '') + (d.months ? `${d.months}m` : '') + (d.days ? `${d.days}d` : '') + (d.hours ? `${d.hours}h` : '');
  return s || '0h';
}

/**
 * The UTC second `d` before `epochSec`: years, months and days back on the
 * wall clock of `zone` (overflowing days roll over, so one month before
 * 31 March is 3 March), then hours back in elapsed time.
 */
export function subtractDuration(epochSec: number, d: Duration, zone: TimeZone): number {
  const c = zone.civil(epochSec);
  const back = zone.epoch({ ...c, year: c.year - d.years, month: c.month - d.months, day: c.day - d.days });
  return back - d.hours * 3600;
}
