/**
 * Failed token attempts are rate-limited per source address: after a burst
 * of them, every request from that address gets 429 with Retry-After, the
 * same answer whether its token is valid, invalid or missing (so a guess
 * learns nothing), while other addresses are served as usual; the burst is
 * logged once with its counts, not once per attempt.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addressKey } from '../server/auth-limiter.js';
import { rawRequest, RawResponse, startTestServer, TestServer } from './helpers/server.js';

// A burst of 5 failures, refilled at one a second, on a clock the test moves.
const LIMITS = { failedAuthBurst: 5, failedAuthPerMinute: 60 };
let now = 0;

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ limits: LIMITS, logLevel: 'info', clock: () => now });
});
after(async () => {
  await ts.stop();
});

/** Everything that identifies an answer but its Date header. */
function answer(r: RawResponse): string {
  const headers = Object.entries(r.headers)
    .filter(([k]) => k !== 'date')
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify({ status: r.status, headers, body: r.body.toString('latin1') });
}

interface LogLine {
  level: number;
  msg: string;
  status?: number;
  ip?: string;
  failures?: number;
  refused?: number;
}

describe('failed token attempts', () => {
  it('are limited per address: beyond the burst, 429 for valid and invalid tokens alike; logged once per burst', { timeout: 30_000 }, async () => {
    const token = await ts.addClient('real');
    const list = (tok?: string, localAddress?: string) => rawRequest(ts.url, { path: '/v1/objects/chunk', token: tok, localAddress });
    assert.equal((await list(token)).status, 200);
    const logsBefore = ts.logs.length;

    for (let i = 0; i < 5; i++) assert.equal((await list(`guess-${i}`)).status, 401, `attempt ${i + 1} is answered`);
    const guess = await list('guess-6');
    const valid = await list(token);
    const none = await list();
    assert.equal(guess.status, 429);
    assert.equal(guess.headers['retry-after'], '1');
    assert.equal(answer(valid), answer(guess), 'a valid token gets the very same answer as a guess');
    assert.equal(answer(none), answer(guess), 'and so does no token');
    assert.match(JSON.parse(guess.body.toString()).error.message, /too many failed token attempts/);
    for (let i = 0; i < 20; i++) assert.equal((await list(`more-${i}`)).status, 429);

    // Another address is not affected.
    assert.equal((await list(token, '127.0.0.2')).status, 200);

    // After Retry-After, the address may try again.
    now += 1000;
    assert.equal((await list(token)).status, 200);
    // Once the bucket is full again (5 s on), the burst is over.
    now += 5000;

    // Once the bucket is full again, the burst is over: one line with its counts.
    const isBurst = (l: LogLine) => /failed token attempts from/.test(l.msg);
    const over = () => ts.logs.slice(logsBefore).map((l) => JSON.parse(l) as LogLine).filter((l) => isBurst(l) && /burst over/.test(l.msg));
    for (let i = 0; i < 40 && !over().length; i++) await new Promise((r) => setTimeout(r, 100));
    const logged = ts.logs.slice(logsBefore).map((l) => JSON.parse(l) as LogLine);
    const bursts = logged.filter(isBurst);
    assert.equal(bursts.length, 2, `one line when the address is blocked, one when the burst is over:\n${bursts.map((b) => b.msg).join('\n')}`);
    assert.match(bursts[0]!.msg, /5 failed token attempts from 127\.0\.0\.1: its requests get 429/);
    assert.equal(bursts[1]!.failures, 5);
    assert.equal(bursts[1]!.refused, 23);
    assert.ok(bursts.every((b) => b.level === 40 && b.ip === '127.0.0.1'));
    assert.ok(!logged.some((l) => l.level >= 40 && (l.status === 401 || l.status === 429)), 'no line per attempt');
  });

  it('count an IPv6 /64 as one address, and an IPv4-mapped address as IPv4', () => {
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
  });
});
