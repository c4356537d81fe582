/**
 * forget's policy against hand-computed expectations: each rule alone, their
 * union, restic's documented examples (--keep-daily over weekly backups, the
 * 100 years of daily backups under daily/weekly/monthly/yearly rules,
 * --keep-within 2y5m7d3h), the "oldest" rule, time zones, future snapshots,
 * filters, grouping and the refusals. Durations and time zones too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ObnamError } from '../lib/errors.js';
import { formatDuration, parseDuration } from '../lib/forget/duration.js';
import { applyPolicy, Clock, describePolicy, GroupBy, planForget, Policy, PolicySnapshot } from '../lib/forget/policy.js';
import { isoWeek, timeZone, UTC } from '../lib/forget/timezone.js';

interface Snap extends PolicySnapshot {
  label: string;
}

const at = (iso: string) => Math.floor(Date.parse(iso) / 1000);

function snap(label: string, iso: string, opts: { host?: string; paths?: string[]; tags?: string[] } = {}): Snap {
  return {
    label,
    id: Buffer.from(label.padEnd(32, '.')).toString('hex').slice(0, 64),
    time: { sec: at(iso), nsec: 0 },
    hostname: opts.host ?? 'h',
    paths: opts.paths ?? ['/data'],
    tags: opts.tags ?? [],
  };
}

const NOW = at('2026-12-01T00:00:00Z');
const clockUtc: Clock = { now: NOW, zone: UTC };

/** label -> reasons for the kept ones; the removed labels, newest first. */
function decide(snaps: Snap[], policy: Policy, clock: Clock = clockUtc): { keep: Record<string, string[]>; remove: string[] } {
  const r = applyPolicy(snaps, policy, clock);
  return {
    keep: Object.fromEntries(r.keep.map((k) => [k.snapshot.label, k.reasons])),
    remove: r.remove.map((s) => s.label),
  };
}

/** restic's example: one backup every Sunday at 11:00 for twelve weeks. */
const SUNDAYS = [
  ['0a1f9759', '2019-09-01'],
  ['46cfe4d5', '2019-09-08'],
  ['f6b1f037', '2019-09-15'],
  ['eb430a5d', '2019-09-22'],
  ['8cf1cb9a', '2019-09-29'],
  ['5d33b116', '2019-10-06'],
  ['b9553125', '2019-10-13'],
  ['e1a7b58b', '2019-10-20'],
  ['8f8018c0', '2019-10-27'],
  ['59403279', '2019-11-03'],
  ['dfee9fb4', '2019-11-10'],
  ['e1ae2f40', '2019-11-17'],
].map(([id, day]) => snap(id!, `${day}T11:00:00Z`));

interface Case {
  name: string;
  snaps: Snap[];
  policy: Policy;
  clock?: Clock;
  keep: Record<string, string[]>;
  remove: string[];
}

const CASES: Case[] = [
  {
    name: 'restic docs: --keep-daily 4 over twelve Sunday backups keeps the last four Sundays',
    snaps: SUNDAYS,
    policy: { daily: 4 },
    keep: { e1ae2f40: ['keep-daily'], dfee9fb4: ['keep-daily'], '59403279': ['keep-daily'], '8f8018c0': ['keep-daily'] },
    remove: ['e1a7b58b', 'b9553125', '5d33b116', '8cf1cb9a', 'eb430a5d', 'f6b1f037', '46cfe4d5', '0a1f9759'],
  },
  {
    name: '--keep-daily 4 --keep-weekly 2 over the same Sundays: the weeklies are among the dailies',
    snaps: SUNDAYS,
    policy: { daily: 4, weekly: 2 },
    keep: {
      e1ae2f40: ['keep-daily', 'keep-weekly'],
      dfee9fb4: ['keep-daily', 'keep-weekly'],
      '59403279': ['keep-daily'],
      '8f8018c0': ['keep-daily'],
    },
    remove: ['e1a7b58b', 'b9553125', '5d33b116', '8cf1cb9a', 'eb430a5d', 'f6b1f037', '46cfe4d5', '0a1f9759'],
  },
  {
    name: '--keep-weekly 6 over the Sundays: one per ISO week, the six newest weeks',
    snaps: SUNDAYS,
    policy: { weekly: 6 },
    keep: Object.fromEntries(['e1ae2f40', 'dfee9fb4', '59403279', '8f8018c0', 'e1a7b58b', 'b9553125'].map((l) => [l, ['keep-weekly']])),
    remove: ['5d33b116', '8cf1cb9a', 'eb430a5d', 'f6b1f037', '46cfe4d5', '0a1f9759'],
  },
  {
    name: '--keep-last 3 keeps the three newest',
    snaps: [snap('a', '2026-01-01T00:00:00Z'), snap('b', '2026-01-02T00:00:00Z'), snap('c', '2026-01-03T00:00:00Z'), snap('d', '2026-01-03T00:00:01Z'), snap('e', '2026-01-04T00:00:00Z')],
    policy: { last: 3 },
    keep: { e: ['keep-last'], d: ['keep-last'], c: ['keep-last'] },
    remove: ['b', 'a'],
  },
  {
    name: '--keep-last larger than the group keeps all, without an "oldest" mark',
    snaps: [snap('a', '2026-01-01T00:00:00Z'), snap('b', '2026-01-02T00:00:00Z')],
    policy: { last: 10 },
    keep: { b: ['keep-last'], a: ['keep-last'] },
    remove: [],
  },
  {
    name: '--keep-hourly 2: the newest of each of the two newest hours',
    snaps: [
      snap('10:05', '2026-05-05T10:05:00Z'),
      snap('10:40', '2026-05-05T10:40:00Z'),
      snap('11:10', '2026-05-05T11:10:00Z'),
      snap('11:50', '2026-05-05T11:50:00Z'),
      snap('12:20', '2026-05-05T12:20:00Z'),
    ],
    policy: { hourly: 2 },
    keep: { '12:20': ['keep-hourly'], '11:50': ['keep-hourly'] },
    remove: ['11:10', '10:40', '10:05'],
  },
  {
    name: 'a count left over at the oldest snapshot keeps it too ("oldest")',
    snaps: [
      snap('d1-early', '2026-05-01T08:00:00Z'),
      snap('d1-late', '2026-05-01T20:00:00Z'),
      snap('d2-early', '2026-05-02T08:00:00Z'),
      snap('d2-late', '2026-05-02T20:00:00Z'),
      snap('d3-early', '2026-05-03T08:00:00Z'),
      snap('d3-late', '2026-05-03T20:00:00Z'),
    ],
    policy: { daily: 5 },
    keep: { 'd3-late': ['keep-daily'], 'd2-late': ['keep-daily'], 'd1-late': ['keep-daily'], 'd1-early': ['keep-daily (oldest)'] },
    remove: ['d3-early', 'd2-early'],
  },
  {
    name: 'unlimited: one per month for every month, and the oldest',
    snaps: [snap('jan5', '2026-01-05T00:00:00Z'), snap('jan20', '2026-01-20T00:00:00Z'), snap('feb3', '2026-02-03T00:00:00Z'), snap('feb25', '2026-02-25T00:00:00Z')],
    policy: { monthly: Infinity },
    keep: { feb25: ['keep-monthly'], jan20: ['keep-monthly'], jan5: ['keep-monthly (oldest)'] },
    remove: ['feb3'],
  },
  {
    name: 'weeks run Monday to Sunday (ISO): Sunday late and Monday early are different weeks',
    snaps: [snap('sat', '2026-11-28T12:00:00Z'), snap('sun', '2026-11-29T23:00:00Z'), snap('mon', '2026-11-30T01:00:00Z')],
    policy: { weekly: 2 },
    keep: { mon: ['keep-weekly'], sun: ['keep-weekly'] },
    remove: ['sat'],
  },
  {
    name: 'rules are ORed, and each kept snapshot names every rule that kept it',
    snaps: [snap('d0', '2026-05-01T12:00:00Z'), snap('d1-18', '2026-05-02T18:00:00Z'), snap('d2-09', '2026-05-03T09:00:00Z'), snap('d2-18', '2026-05-03T18:00:00Z')],
    policy: { last: 2, daily: 2 },
    keep: { 'd2-18': ['keep-last', 'keep-daily'], 'd2-09': ['keep-last'], 'd1-18': ['keep-daily'] },
    remove: ['d0'],
  },
  {
    name: 'days are days of the given time zone: UTC',
    snaps: [snap('may30', '2026-05-30T12:00:00Z'), snap('2130z', '2026-06-01T21:30:00Z'), snap('2230z', '2026-06-01T22:30:00Z')],
    policy: { daily: 2 },
    keep: { '2230z': ['keep-daily'], may30: ['keep-daily'] },
    remove: ['2130z'],
  },
  {
    name: 'days are days of the given time zone: Europe/Berlin (22:30Z is already 2 June there)',
    snaps: [snap('may30', '2026-05-30T12:00:00Z'), snap('2130z', '2026-06-01T21:30:00Z'), snap('2230z', '2026-06-01T22:30:00Z')],
    policy: { daily: 2 },
    clock: { now: NOW, zone: timeZone('Europe/Berlin') },
    keep: { '2230z': ['keep-daily'], '2130z': ['keep-daily'] },
    remove: ['may30'],
  },
  {
    name: 'restic docs: --keep-within 2y5m7d3h keeps what is strictly newer than 2024-06-22 09:00 before a latest of 2026-11-29 12:00',
    snaps: [
      snap('old', '2024-01-01T00:00:00Z'),
      snap('edge', '2024-06-22T09:00:00Z'),
      snap('inside', '2024-06-22T09:00:01Z'),
      snap('latest', '2026-11-29T12:00:00Z'),
    ],
    policy: { within: parseDuration('2y5m7d3h') },
    keep: { latest: ['keep-within 2y5m7d3h'], inside: ['keep-within 2y5m7d3h'] },
    remove: ['edge', 'old'],
  },
  {
    name: '--keep-within 1m before 31 March reaches back to 3 March (31 February rolls over, as in restic)',
    snaps: [snap('mar2', '2026-03-02T13:00:00Z'), snap('mar3', '2026-03-03T12:00:01Z'), snap('mar31', '2026-03-31T12:00:00Z')],
    policy: { within: parseDuration('1m') },
    keep: { mar31: ['keep-within 1m'], mar3: ['keep-within 1m'] },
    remove: ['mar2'],
  },
  {
    name: '--keep-within counts from the newest snapshot, not from now: a group whose backups stopped keeps its last ones',
    snaps: [snap('jan1', '2020-01-01T00:00:00Z'), snap('jan5', '2020-01-05T00:00:00Z'), snap('jan10', '2020-01-10T00:00:00Z')],
    policy: { within: parseDuration('7d') },
    keep: { jan10: ['keep-within 7d'], jan5: ['keep-within 7d'] },
    remove: ['jan1'],
  },
  {
    name: '--keep-within ignores snapshots in the future as the anchor (and keeps them)',
    snaps: [snap('dec20', '2025-12-20T00:00:00Z'), snap('jan5', '2026-01-05T00:00:00Z'), snap('jan9', '2026-01-09T00:00:00Z'), snap('future', '2026-01-20T00:00:00Z')],
    policy: { within: parseDuration('7d') },
    clock: { now: at('2026-01-10T00:00:00Z'), zone: UTC },
    keep: { future: ['keep-within 7d'], jan9: ['keep-within 7d'], jan5: ['keep-within 7d'] },
    remove: ['dec20'],
  },
  {
    name: "--keep-tag keeps snapshots with all tags of a list; '' matches untagged snapshots",
    snaps: [
      snap('ab', '2026-01-01T00:00:00Z', { tags: ['a', 'b'] }),
      snap('none', '2026-01-02T00:00:00Z'),
      snap('b', '2026-01-03T00:00:00Z', { tags: ['b'] }),
      snap('a', '2026-01-04T00:00:00Z', { tags: ['a'] }),
    ],
    policy: { tags: [['a', 'b'], ['']] },
    keep: { none: ["keep-tag ''"], ab: ['keep-tag a,b'] },
    remove: ['a', 'b'],
  },
];

/** restic docs: a backup every day for 100 years (to Sunday 29 November 2026, at noon). */
function hundredYears(): Snap[] {
  const out: Snap[] = [];
  const first = at('1926-11-30T12:00:00Z');
  for (let t = first; t <= at('2026-11-29T12:00:00Z'); t += 86_400) {
    out.push(snap(new Date(t * 1000).toISOString().slice(0, 10), new Date(t * 1000).toISOString()));
  }
  return out;
}

describe('forget policy', () => {
  for (const c of CASES) {
    it(c.name, () => {
      assert.deepEqual(decide(c.snaps, c.policy, c.clock), { keep: c.keep, remove: c.remove });
    });
  }

  it('restic docs: 100 years of daily backups, --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 75', () => {
    const snaps = hundredYears();
    assert.equal(snaps.length, 36525);
    const got = decide(snaps, { daily: 7, weekly: 5, monthly: 12, yearly: 75 });
    // The seven days up to Sunday 29 November; that Sunday is also the newest
    // weekly, monthly and yearly snapshot.
    const keep: Record<string, string[]> = { '2026-11-29': ['keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly'] };
    for (const d of ['2026-11-28', '2026-11-27', '2026-11-26', '2026-11-25', '2026-11-24', '2026-11-23']) keep[d] = ['keep-daily'];
    // Four more Sundays (ISO weeks 47 to 44).
    for (const d of ['2026-11-22', '2026-11-15', '2026-11-08', '2026-11-01']) keep[d] = ['keep-weekly'];
    // Eleven more month ends; the last of them is also 2025's yearly snapshot.
    for (const d of ['2026-10-31', '2026-09-30', '2026-08-31', '2026-07-31', '2026-06-30', '2026-05-31', '2026-04-30', '2026-03-31', '2026-02-28', '2026-01-31']) {
      keep[d] = ['keep-monthly'];
    }
    keep['2025-12-31'] = ['keep-monthly', 'keep-yearly'];
    // 75 years are 2026 back to 1952: 31 December of 1952 to 2024 are new.
    for (let y = 2024; y >= 1952; y--) keep[`${y}-12-31`] = ['keep-yearly'];
    assert.equal(Object.keys(keep).length, 7 + 4 + 11 + 73);
    assert.deepEqual(got.keep, keep);
    assert.equal(got.remove.length, snaps.length - Object.keys(keep).length);
  });

  it('describes a policy as the options that give it', () => {
    assert.equal(
      describePolicy({ last: 3, weekly: Infinity, within: parseDuration('1y2d'), tags: [['a', 'b'], ['']] }),
      "--keep-last 3 --keep-weekly unlimited --keep-within 1y2d --keep-tag a,b --keep-tag ''",
    );
  });

  it('snapshot times beyond what a Date holds are decided, not a crash', () => {
    const far = (label: string, sec: number): Snap => ({ ...snap(label, '2026-01-01T00:00:00Z'), time: { sec, nsec: 0 } });
    for (const zone of [UTC, timeZone('Europe/Berlin')]) {
      const got = decide([far('past', -Number.MAX_SAFE_INTEGER), snap('now', '2026-01-01T00:00:00Z'), far('future', Number.MAX_SAFE_INTEGER)], {
        daily: 2,
        within: parseDuration('1y'),
      }, { now: NOW, zone });
      assert.deepEqual(got, { keep: { future: ['keep-within 1y', 'keep-daily'], now: ['keep-within 1y', 'keep-daily'] }, remove: ['past'] });
    }
  });

  describe('filters and groups', () => {
    const snaps = [
      snap('a1', '2026-01-01T00:00:00Z', { host: 'a' }),
      snap('a2', '2026-01-02T00:00:00Z', { host: 'a' }),
      snap('b1', '2026-01-01T01:00:00Z', { host: 'b' }),
      snap('b2', '2026-01-02T01:00:00Z', { host: 'b' }),
      snap('a-etc', '2026-01-03T00:00:00Z', { host: 'a', paths: ['/etc'] }),
    ];
    const plan = (groupBy?: GroupBy, extra: Parameters<typeof planForget>[1]['filter'] = {}, list: Snap[] = snaps) =>
      planForget(list, { policy: { last: 1 }, groupBy, filter: extra, clock: clockUtc }).map((g) => ({
        key: g.key,
        keep: g.keep.map((k) => k.snapshot.label),
        remove: g.remove.map((s) => s.label),
      }));

    it('groups by host and paths by default, ordered by key', () => {
      assert.deepEqual(plan(), [
        { key: { hostname: 'a', paths: ['/data'] }, keep: ['a2'], remove: ['a1'] },
        { key: { hostname: 'a', paths: ['/etc'] }, keep: ['a-etc'], remove: [] },
        { key: { hostname: 'b', paths: ['/data'] }, keep: ['b2'], remove: ['b1'] },
      ]);
    });
    it('--group-by host, paths, none', () => {
      assert.deepEqual(plan({ host: true, paths: false, tags: false }), [
        { key: { hostname: 'a' }, keep: ['a-etc'], remove: ['a2', 'a1'] },
        { key: { hostname: 'b' }, keep: ['b2'], remove: ['b1'] },
      ]);
      assert.deepEqual(plan({ host: false, paths: true, tags: false }), [
        { key: { paths: ['/data'] }, keep: ['b2'], remove: ['a2', 'b1', 'a1'] },
        { key: { paths: ['/etc'] }, keep: ['a-etc'], remove: [] },
      ]);
      assert.deepEqual(plan({ host: false, paths: false, tags: false }), [{ key: {}, keep: ['a-etc'], remove: ['b2', 'a2', 'b1', 'a1'] }]);
    });
    it('--host: only those hosts are considered (the others are neither kept nor removed)', () => {
      assert.deepEqual(plan(undefined, { hosts: ['b'] }), [{ key: { hostname: 'b', paths: ['/data'] }, keep: ['b2'], remove: ['b1'] }]);
    });
    it('--path: a snapshot must have every path given', () => {
      const list = [
        snap('both', '2026-01-01T00:00:00Z', { paths: ['/p1', '/p2'] }),
        snap('one', '2026-01-02T00:00:00Z', { paths: ['/p1'] }),
        snap('both-new', '2026-01-03T00:00:00Z', { paths: ['/p1', '/p2'] }),
      ];
      assert.deepEqual(plan({ host: false, paths: false, tags: false }, { paths: ['/p1', '/p2'] }, list), [
        { key: {}, keep: ['both-new'], remove: ['both'] },
      ]);
    });
    it('--tag: comma-separated lists are ANDed, repeated --tag ORed', () => {
      const list = [
        snap('xy', '2026-01-01T00:00:00Z', { tags: ['x', 'y'] }),
        snap('x', '2026-01-02T00:00:00Z', { tags: ['x'] }),
        snap('z', '2026-01-03T00:00:00Z', { tags: ['z'] }),
        snap('none', '2026-01-04T00:00:00Z'),
      ];
      const none: GroupBy = { host: false, paths: false, tags: false };
      assert.deepEqual(plan(none, { tags: [['x', 'y'], ['z']] }, list), [{ key: {}, keep: ['z'], remove: ['xy'] }]);
      assert.deepEqual(plan(none, { tags: [['']] }, list), [{ key: {}, keep: ['none'], remove: [] }]);
      assert.deepEqual(plan({ host: false, paths: false, tags: true }, {}, list).map((g) => g.key), [
        { tags: [] },
        { tags: ['x'] },
        { tags: ['x', 'y'] },
        { tags: ['z'] },
      ]);
    });
    it('refuses an empty policy', () => {
      assert.throws(
        () => planForget(snaps, { policy: {}, clock: clockUtc }),
        (e: unknown) => e instanceof ObnamError && e.code === 'REFUSED' && /no policy/.test(e.message),
      );
      assert.throws(() => planForget(snaps, { policy: { last: 0, tags: [] }, clock: clockUtc }), /no policy/);
    });
    it('refuses a policy that would remove every snapshot of a group, naming the group', () => {
      assert.throws(
        () => planForget(snaps, { policy: { tags: [['nope']] }, clock: clockUtc }),
        (e: unknown) => e instanceof ObnamError && e.code === 'REFUSED' && /all 2 snapshots of host a, paths \/data/.test(e.message),
      );
    });
  });
});

describe('forget policy, properties', () => {
  const count = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 6 }), fc.constant(Infinity));
  const policyArb: fc.Arbitrary<Policy> = fc.record({
    last: count,
    hourly: count,
    daily: count,
    weekly: count,
    monthly: count,
    yearly: count,
    within: fc.option(fc.record({ years: fc.nat(1), months: fc.nat(3), days: fc.nat(10), hours: fc.integer({ min: 1, max: 30 }) }), { nil: undefined }),
    tags: fc.array(fc.array(fc.constantFrom('a', 'b', ''), { minLength: 1, maxLength: 2 }), { maxLength: 2 }),
  });
  // Snapshot times within about two years of NOW, some in the future.
  const snapsArb = fc.uniqueArray(fc.integer({ min: NOW - 2 * 365 * 86_400, max: NOW + 3 * 86_400 }), { minLength: 1, maxLength: 40 }).chain((times) =>
    fc.tuple(...times.map((t, i) => fc.subarray(['a', 'b']).map((tags) => ({ ...snap(`s${i}`, '2026-01-01T00:00:00Z', { tags }), time: { sec: t, nsec: 0 } })))),
  );
  const zones = [UTC, timeZone('Europe/Berlin'), timeZone('Asia/Kolkata')];

  it('every snapshot is either kept or removed, once; and something is kept unless only tags are asked for', () => {
    fc.assert(
      fc.property(snapsArb, policyArb, fc.constantFrom(...zones), (snaps, policy, zone) => {
        const r = applyPolicy(snaps, policy, { now: NOW, zone });
        const all = [...r.keep.map((k) => k.snapshot.label), ...r.remove.map((s) => s.label)].sort();
        assert.deepEqual(all, snaps.map((s) => s.label).sort());
        const onlyTags = !policy.last && !policy.hourly && !policy.daily && !policy.weekly && !policy.monthly && !policy.yearly && !policy.within;
        if (!onlyTags) assert.ok(r.keep.length > 0);
      }),
      { numRuns: 300 },
    );
  });

  it('a snapshot left out (damaged) never makes the policy remove one it would keep', () => {
    fc.assert(
      fc.property(snapsArb, policyArb, fc.constantFrom(...zones), fc.nat(), (snaps, policy, zone, pick) => {
        const clock = { now: NOW, zone };
        const full = new Set(applyPolicy(snaps, policy, clock).keep.map((k) => k.snapshot.label));
        const without = snaps.filter((_s, i) => i !== pick % snaps.length);
        const kept = new Set(applyPolicy(without, policy, clock).keep.map((k) => k.snapshot.label));
        for (const s of without) if (full.has(s.label)) assert.ok(kept.has(s.label), `${s.label} kept with all snapshots, removed without one`);
      }),
      { numRuns: 300 },
    );
  });
});

describe('durations', () => {
  it('parses restic-style durations', () => {
    assert.deepEqual(parseDuration('1y2m3d4h'), { years: 1, months: 2, days: 3, hours: 4 });
    assert.deepEqual(parseDuration('36h'), { years: 0, months: 0, days: 0, hours: 36 });
    assert.deepEqual(parseDuration(' 4h7d '), { years: 0, months: 0, days: 7, hours: 4 });
    assert.equal(formatDuration(parseDuration('4h7d2y')), '2y7d4h');
  });
  for (const bad of ['', '1w', '5', 'd', '1d1d', '-1d', '0d', '1y 2m', '1.5d']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseDuration(bad), (e: unknown) => e instanceof ObnamError && e.code === 'USAGE');
    });
  }
});

describe('time zones', () => {
  it('ISO weeks', () => {
    const w = (y: number, m: number, d: number) => isoWeek({ year: y, month: m, day: d, hour: 12, minute: 0, second: 0 });
    assert.equal(w(2026, 1, 1), 202601);
    assert.equal(w(2027, 1, 1), 202653);
    assert.equal(w(2024, 12, 30), 202501);
    assert.equal(w(2021, 1, 3), 202053);
    assert.equal(w(2026, 11, 29), 202648);
    assert.equal(w(2026, 11, 30), 202649);
  });
  it('wall clock and back, across daylight saving time', () => {
    const berlin = timeZone('Europe/Berlin');
    assert.deepEqual(berlin.civil(at('2026-06-01T22:30:00Z')), { year: 2026, month: 6, day: 2, hour: 0, minute: 30, second: 0 });
    assert.deepEqual(berlin.civil(at('2026-01-01T22:30:00Z')), { year: 2026, month: 1, day: 1, hour: 23, minute: 30, second: 0 });
    assert.equal(berlin.epoch({ year: 2026, month: 6, day: 2, hour: 0, minute: 30, second: 0 }), at('2026-06-01T22:30:00Z'));
    assert.equal(berlin.epoch({ year: 2026, month: 1, day: 1, hour: 23, minute: 30, second: 0 }), at('2026-01-01T22:30:00Z'));
    // One day before 12:00 on the day after the spring change is 12:00 the day before, 23 hours earlier.
    assert.equal(
      berlin.epoch({ year: 2026, month: 3, day: 29, hour: 12, minute: 0, second: 0 }) - berlin.epoch({ year: 2026, month: 3, day: 28, hour: 12, minute: 0, second: 0 }),
      23 * 3600,
    );
    assert.throws(() => timeZone('Not/AZone'), (e: unknown) => e instanceof ObnamError && e.code === 'USAGE');
  });
});
