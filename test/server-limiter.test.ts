/**
 * The server's request limiter on its own: per-client and global limits,
 * free slots handed to the waiting client with the fewest requests in
 * progress, queue limits (503, code NETWORK), and a waiting request whose
 * connection closes leaving the queue. And the fairness limits in the
 * server's config file: written by init with their defaults, read back,
 * and checked.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS, loadServerConfig } from '../server/config.js';
import { initServerDir } from '../server/init.js';
import { Release, RequestLimiter } from '../server/limiter.js';
import { tempDir } from './helpers/tmp.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('RequestLimiter', () => {
  it('gives one client at most its share, and a freed slot to the client with the fewest in progress', async () => {
    const l = new RequestLimiter({ total: 4, perClient: 3, queued: 100, queuedPerClient: 100 });
    const order: string[] = [];
    const held: Release[] = [];
    const enter = (c: string) =>
      l.enter(c).then((r) => {
        order.push(c);
        held.push(r);
        return r;
      });
    const a = [enter('a'), enter('a'), enter('a'), enter('a'), enter('a')];
    await tick();
    assert.deepEqual(order, ['a', 'a', 'a'], 'a client gets no more than perClient slots');
    const b = [enter('b'), enter('b'), enter('b')];
    await tick();
    assert.deepEqual(order, ['a', 'a', 'a', 'b'], 'the fourth and last global slot goes to b');
    held[0]!();
    await tick();
    assert.equal(order[4], 'b', 'a freed slot of a goes to b, which has fewer in progress');
    held[1]!();
    await tick();
    assert.equal(order[5], 'a', 'now a has fewer in progress (1 against 2): back to a');
    assert.equal(l.peak, 4);
    assert.equal(l.peakPerClient, 3);
    for (const r of held) r();
    await Promise.all([...a, ...b]);
    assert.equal(l.waitingRequests, 0);
  });

  it('refuses beyond the queue limits of a client and of all clients', async () => {
    const l = new RequestLimiter({ total: 1, perClient: 1, queued: 3, queuedPerClient: 2 });
    const first = await l.enter('a');
    const waiting = [l.enter('a'), l.enter('a')];
    await assert.rejects(l.enter('a'), { code: 'NETWORK' });
    waiting.push(l.enter('b'));
    await assert.rejects(l.enter('c'), { code: 'NETWORK' });
    first();
    for (const w of waiting) (await w)();
  });

  it('drops a waiting request whose connection closed', async () => {
    const l = new RequestLimiter({ total: 1, perClient: 1, queued: 10, queuedPerClient: 10 });
    const first = await l.enter('a');
    const gone = new AbortController();
    const abandoned = l.enter('b', gone.signal);
    const next = l.enter('c');
    gone.abort();
    await assert.rejects(abandoned, { code: 'ABORTED' });
    assert.equal(l.waitingRequests, 1);
    first();
    (await next)();
    assert.equal(l.waitingRequests, 0);
  });
});

describe('fairness limits in the server config', () => {
  it('init writes them with their defaults; they are read back and checked', async () => {
    const tmp = await tempDir('obnam-server-config-');
    try {
      const { dir } = await initServerDir(path.join(tmp.path, 'server'));
      const text = await fs.readFile(dir.configFile, 'utf8');
      for (const key of [
        'max_concurrent_requests_per_client: 16',
        'max_queued_requests_per_client: 256',
        'headers_timeout_seconds: 20',
        'min_body_bytes_per_second: 512',
        'body_rate_window_seconds: 20',
        'failed_auth_burst: 20',
        'failed_auth_per_minute: 30',
      ]) {
        assert.ok(text.includes(`  ${key}\n`), key);
      }
      assert.deepEqual((await loadServerConfig(dir)).limits, DEFAULT_LIMITS);

      await fs.writeFile(dir.configFile, text.replace('max_concurrent_requests_per_client: 16', 'max_concurrent_requests_per_client: 4'));
      assert.equal((await loadServerConfig(dir)).limits.maxConcurrentRequestsPerClient, 4);
      await fs.writeFile(dir.configFile, text.replace('headers_timeout_seconds: 20', 'headers_timeout_seconds: 500'));
      await assert.rejects(loadServerConfig(dir), {
        code: 'USAGE',
        message: /headers_timeout_seconds cannot be longer than limits\.request_timeout_seconds/,
      });
      await fs.writeFile(dir.configFile, text.replace('min_body_bytes_per_second: 512', 'min_body_bytes_per_second: -1'));
      await assert.rejects(loadServerConfig(dir), { code: 'USAGE', message: /limits\.min_body_bytes_per_second must be a positive number/ });
    } finally {
      await tmp.remove();
    }
  });
});
