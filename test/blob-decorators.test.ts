/**
 * Decorators (lib/blob/decorators.ts, lib/store/guard.ts): the decorated local
 * backend still passes the blob conformance suite; retry cures passing
 * NETWORK failures and nothing else; read-only and append-only refuse; limits
 * bound concurrency and blob size.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { BlobBackend } from '../lib/blob/backend.js';
import { readOnly as readOnlyBlobs, withLimits, withRetry } from '../lib/blob/decorators.js';
import { LocalBlobBackend } from '../lib/blob/local.js';
import { ObnamError } from '../lib/errors.js';
import { appendOnly, readOnly } from '../lib/store/guard.js';
import { PackedStore } from '../lib/store/packed.js';
import { blobConformance } from './helpers/blob-conformance.js';
import { tempDir } from './helpers/tmp.js';

const noSleep = async () => undefined;
const code = (c: string) => (e: unknown) => e instanceof ObnamError && e.code === c;

blobConformance('LocalBlobBackend with retry and limits', async () => {
  const dir = await tempDir();
  const wrap = (b: BlobBackend) => withLimits(withRetry(b, { sleep: noSleep }), { maxConcurrent: 3 });
  return { backend: wrap(await LocalBlobBackend.create(dir.path)), other: async () => wrap(new LocalBlobBackend(dir.path)), cleanup: dir.remove };
});

/** A backend over a directory that fails the first `failures` calls with `error`, counting calls in flight. */
async function flaky(failures: number, error: () => Error) {
  const dir = await tempDir();
  const inner = await LocalBlobBackend.create(dir.path);
  const stats = { calls: 0, active: 0, peak: 0, left: failures };
  const wrap =
    <A extends unknown[], T>(fn: (...a: A) => Promise<T>) =>
    async (...a: A): Promise<T> => {
      stats.calls++;
      stats.active++;
      stats.peak = Math.max(stats.peak, stats.active);
      try {
        await new Promise((r) => setTimeout(r, 2));
        if (stats.left > 0) {
          stats.left--;
          throw error();
        }
        return await fn(...a);
      } finally {
        stats.active--;
      }
    };
  const b: BlobBackend = {
    location: inner.location,
    atomicCreate: true,
    put: wrap((n: string, d: Uint8Array | readonly Uint8Array[]) => inner.put(n, d)),
    get: wrap((n: string, r?: { offset: number; length?: number }) => inner.get(n, r)),
    stat: wrap((n: string) => inner.stat(n)),
    list: (p) => inner.list(p),
    delete: wrap((n: string) => inner.delete(n)),
    close: () => inner.close(),
  };
  return { b, stats, cleanup: dir.remove };
}

describe('blob decorators', () => {
  it('withRetry cures passing NETWORK failures', async () => {
    const { b, stats, cleanup } = await flaky(3, () => new ObnamError('NETWORK', 'HTTP 503'));
    try {
      const r = withRetry(b, { sleep: noSleep });
      assert.equal(await r.put('x', Buffer.from('1')), true);
      assert.equal(stats.calls, 4);
      assert.equal((await r.get('x')).toString(), '1');
    } finally {
      await cleanup();
    }
  });

  it('withRetry backs off: each wait about twice the one before (with jitter), up to maxDelayMs', async () => {
    const { b, cleanup } = await flaky(6, () => new ObnamError('NETWORK', 'HTTP 503'));
    try {
      const waits: number[] = [];
      const r = withRetry(b, { retries: 6, baseDelayMs: 100, maxDelayMs: 1000, sleep: async (ms) => void waits.push(ms) });
      assert.equal(await r.put('x', Buffer.from('1')), true);
      // Attempt i waits min(1000, 100 * 2^i), times a jitter in [0.5, 1].
      const caps = [100, 200, 400, 800, 1000, 1000];
      assert.equal(waits.length, caps.length);
      for (const [i, w] of waits.entries()) assert.ok(w >= caps[i]! / 2 && w <= caps[i]!, `wait ${i}: ${w} ms, expected ${caps[i]! / 2}..${caps[i]}`);
    } finally {
      await cleanup();
    }
  });

  it('withRetry gives up after its retries, and never retries other errors', async () => {
    const a = await flaky(10, () => new ObnamError('NETWORK', 'down'));
    const c = await flaky(1, () => new ObnamError('PERMISSION', 'denied'));
    try {
      await assert.rejects(withRetry(a.b, { retries: 2, sleep: noSleep }).put('x', Buffer.from('1')), code('NETWORK'));
      assert.equal(a.stats.calls, 3);
      await assert.rejects(withRetry(c.b, { sleep: noSleep }).put('x', Buffer.from('1')), code('PERMISSION'));
      assert.equal(c.stats.calls, 1);
    } finally {
      await a.cleanup();
      await c.cleanup();
    }
  });

  it('readOnly refuses put and delete, and reads', async () => {
    const dir = await tempDir();
    try {
      const inner = await LocalBlobBackend.create(dir.path);
      await inner.put('x', Buffer.from('1'));
      const r = readOnlyBlobs(inner);
      await assert.rejects(r.put('y', Buffer.from('2')), code('PERMISSION'));
      await assert.rejects(r.delete('x'), code('PERMISSION'));
      assert.equal((await r.get('x')).toString(), '1');
      assert.equal(await inner.stat('y'), undefined);
    } finally {
      await dir.remove();
    }
  });

  it('withLimits keeps calls in flight at the limit and refuses blobs above the size limit', async () => {
    const { b, stats, cleanup } = await flaky(0, () => new Error('unused'));
    try {
      const l = withLimits(b, { maxConcurrent: 2, maxBlobBytes: 100 });
      await Promise.all(Array.from({ length: 20 }, (_, i) => l.put(`n${i}`, randomBytes(10))));
      assert.equal(stats.peak, 2);
      await assert.rejects(l.put('big', randomBytes(101)), code('TOO_LARGE'));
    } finally {
      await cleanup();
    }
  });
});

describe('store guards', () => {
  it('appendOnly refuses delete and passes everything else; readOnly refuses put too', async () => {
    const dir = await tempDir();
    try {
      const store = await PackedStore.create(await LocalBlobBackend.create(dir.path));
      const id = randomBytes(32).toString('hex');
      const ao = appendOnly(store);
      assert.equal(await ao.put('chunk', id, Buffer.from('x')), true);
      await ao.flush();
      await assert.rejects(ao.delete('chunk', id), code('PERMISSION'));
      assert.equal(Buffer.from(await ao.get('chunk', id)).toString(), 'x');
      const ro = readOnly(store);
      await assert.rejects(ro.put('chunk', randomBytes(32).toString('hex'), Buffer.from('y')), code('PERMISSION'));
      await assert.rejects(ro.delete('chunk', id), code('PERMISSION'));
      assert.equal(await store.has('chunk', id), true);
      await store.close();
    } finally {
      await dir.remove();
    }
  });
});
