/**
 * Calendar time in a time zone, for forget's policy: which hour, day, ISO week,
 * month and year a snapshot falls in, and calendar arithmetic ("one month
 * before"). Snapshots record UTC seconds only, so the zone is the one forget
 * runs in (the system's, like restic's view of a snapshot's local time), and
 * tests inject a fixed one. No I/O: the zone rules come from Intl.
 */
import { ObnamError } from '../errors.js';

/** Wall-clock fields; month 1-12. Out-of-range fields are normalised by `epoch` (31 February is 3 March). */
export interface CivilTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export interface TimeZone {
  readonly name: string;
  /** The wall clock at a UTC second. */
  civil(epochSec: number): CivilTime;
  /** The UTC second of a wall-clock time (in a DST gap or overlap, one of the candidates). */
  epoch(c: CivilTime): number;
}

/** Seconds since the epoch of the fields read as UTC (normalising overflowing fields). */
function asUtc(c: CivilTime): number {
  const d = new Date(0);
  d.setUTCFullYear(c.year, c.month - 1, c.day);
  d.setUTCHours(c.hour, c.minute, c.second, 0);
  return Math.floor(d.getTime() / 1000);
}

/** The seconds a JavaScript Date can hold (±100 million days): snapshot times beyond are read as the nearest end. */
const MAX_DATE_SEC = 8.64e12;
const clampSec = (epochSec: number) => Math.min(MAX_DATE_SEC, Math.max(-MAX_DATE_SEC, epochSec));

function utcCivil(epochSec: number): CivilTime {
  const d = new Date(clampSec(epochSec) * 1000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

export const UTC: TimeZone = { name: 'UTC', civil: utcCivil, epoch: asUtc };

/** An IANA time zone ("Europe/Berlin"); USAGE if Intl does not know it. */
export function timeZone(name: string): TimeZone {
  if (name === 'UTC') return UTC;
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    throw new ObnamError('USAGE', `unknown time zone ${JSON.stringify(name)}`);
  }
  const civil = (epochSec: number): CivilTime => {
    const f: Record<string, string> = {};
    for (const p of fmt.formatToParts(new Date(clampSec(epochSec) * 1000))) f[p.type] = p.value;
    const y = Number(f.year);
    return {
      year: f.era === 'BC' || f.era === 'B' ? 1 - y : y,
      month: Number(f.month),
      day: Number(f.day),
      hour: Number(f.hour),
      minute: Number(f.minute),
      second: Number(f.second),
    };
  };
  /** The zone's offset from UTC at a UTC second, in seconds. */
  const offset = (epochSec: number) => asUtc(civil(epochSec)) - epochSec;
  return {
    name,
    civil,
    epoch: (c) => {
      const local = asUtc(c);
      const guess = local - offset(local);
      return local - offset(guess);
    },
  };
}

/** The zone this process runs in (TZ, else the system's). */
export function systemTimeZone(): TimeZone {
  return timeZone(Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
}

/** The ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday) as year*100 + week. */
export function isoWeek(c: CivilTime): number {
  const dayNumber = (year: number, month: number, day: number) => asUtc({ year, month, day, hour: 0, minute: 0, second: 0 }) / 86_400;
  const day = dayNumber(c.year, c.month, c.day);
  const weekday = (new Date(day * 86_400_000).getUTCDay() + 6) % 7; // Monday 0
  const thursday = day + 3 - weekday;
  const year = new Date(thursday * 86_400_000).getUTCFullYear();
  return year * 100 + 1 + Math.floor((thursday - dayNumber(year, 1, 1)) / 7);
}
