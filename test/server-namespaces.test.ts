/**
 * The server's open namespaces (server/namespaces.ts) over a real provider:
 * opened on first use and shared, closed after idleMs without requests (never
 * while a request holds one), reopened on the next request with everything
 * acknowledged still there.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Namespaces } from '../server/namespaces.js';
import { LocalNamespaces } from '../server/storage-local.js';
import { tempDir } from './helpers/tmp.js';

describe('server namespaces', () => {
  it('closes idle namespaces, never one in use, and reopens them with their objects', async () => {
    const dir = await tempDir();
    let now = 0;
    const provider = new LocalNamespaces(dir.path);
    const ns = randomBytes(16).toString('hex');
    await provider.create(ns);
    const open = new Namespaces(provider, 1000, () => now);
    try {
      const a = await open.acquire(ns, 'c');
      const b = await open.acquire(ns, 'c');
      assert.equal(a.store, b.store, 'one store per namespace, shared');
      const id = randomBytes(32).toString('hex');
      await a.store.put('chunk', id, Buffer.from('kept'));
      await a.store.flush();
      a.release();
      now += 5000;
      open.closeIdle();
      assert.equal(open.openCount, 1, 'still in use by the second request');
      b.release();
      b.release(); // idempotent
      now += 999;
      open.closeIdle();
      assert.equal(open.openCount, 1, 'not idle long enough');
      now += 1;
      open.closeIdle();
      assert.equal(open.openCount, 0, 'closed once idle');
      const c = await open.acquire(ns, 'c');
      assert.notEqual(c.store, a.store, 'a fresh store after closing');
      assert.equal(Buffer.from(await c.store.get('chunk', id)).toString(), 'kept');
      c.release();
    } finally {
      await open.close();
      await dir.remove();
    }
  });

  it('a namespace without storage is an INTERNAL error naming the client, and is not kept open', async () => {
    const dir = await tempDir();
    const open = new Namespaces(new LocalNamespaces(dir.path));
    try {
      await assert.rejects(open.acquire(randomBytes(16).toString('hex'), 'ghost'), (e: Error & { code?: string }) => e.code === 'INTERNAL' && /client ghost/.test(e.message));
      assert.equal(open.openCount, 0);
    } finally {
      await open.close();
      await dir.remove();
    }
  });
});
