/**
 * The server's request limiter on its own: per-client and global limits,
 * free slots handed to the waiting client with the fewest requests in
 * progress, queue limits (503, code NETWORK), and a waiting request whose
 * connection closes leaving the queue.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Release, RequestLimiter } from '../server/limiter.js';

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
