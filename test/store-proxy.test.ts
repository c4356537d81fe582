/**
 * A worker's StoreProxy over a message channel to the main thread's real
 * store (serveStoreRequest, as the pool serves it): objects in a finished
 * pack of a local repository are read by the worker from the pack file
 * itself (the main thread answers with where the record is, not with its
 * bytes); objects not yet in a finished pack come as bytes; a damaged record
 * or a pack gone between the answer and the read falls back to the main
 * thread's read, so the error (or the bytes) are the store's.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MessageChannel, MessagePort } from 'node:worker_threads';
import { ObnamError } from '../lib/errors.js';
import { sha256 } from '../lib/crypto/hash.js';
import { RECORD_HEADER_BYTES } from '../lib/store/pack-format.js';
import { LocalStore } from '../lib/store/local.js';
import type { ObjectAccess } from '../lib/store/store.js';
import { serveStoreRequest, StoreProxy, StoreRequest } from '../lib/workers/store-proxy.js';
import { prngBytes } from './helpers/prng.js';
import { flipByteInFile } from './helpers/repo.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const idOf = (data: Uint8Array) => sha256(data).toString('hex');

/** A proxy wired to `serve` over a real MessageChannel; `seen` records each request and whether its answer was a file record. */
function channel(serve: (req: StoreRequest) => Promise<[unknown, ArrayBuffer[]]>) {
  const { port1, port2 } = new MessageChannel();
  const proxy = new StoreProxy(port1 as unknown as MessagePort);
  const seen: { req: StoreRequest; fileRecord: boolean }[] = [];
  port1.on('message', (m) => proxy.onReply(m));
  port2.on('message', (m: { rpc: number; req: StoreRequest }) => {
    serve(m.req).then(
      ([value, transfer]) => {
        seen.push({ req: m.req, fileRecord: !!(value && typeof value === 'object' && 'fileRecord' in value) });
        port2.postMessage({ type: 'storeReply', rpc: m.rpc, ok: true, value }, transfer);
      },
      (e: unknown) => {
        seen.push({ req: m.req, fileRecord: false });
        port2.postMessage({ type: 'storeReply', rpc: m.rpc, ok: false, code: e instanceof ObnamError ? e.code : 'INTERNAL', message: (e as Error).message });
      },
    );
  });
  return { proxy, seen, close: () => (port1.close(), port2.close()) };
}

describe('StoreProxy reads from a local repository', () => {
  let tmp: TempDir;
  let store: LocalStore;

  before(async () => {
    tmp = await tempDir('obnam-store-proxy-');
    store = await LocalStore.create(path.join(tmp.path, 'repo'));
  });
  after(async () => {
    await store.close();
    await tmp.remove();
  });

  it('reads objects in a finished pack from the pack file, and others through the main thread', async () => {
    const packed = [prngBytes('proxy a', 3000), prngBytes('proxy b', 70_000), prngBytes('proxy c', 1)];
    for (const d of packed) await store.put('chunk', idOf(d), d);
    await store.seal();
    const filling = prngBytes('proxy filling', 500);
    await store.put('chunk', idOf(filling), filling);
    const c = channel((req) => serveStoreRequest(store as ObjectAccess, req));
    try {
      for (const d of packed) assert.ok(Buffer.from(await c.proxy.get('chunk', idOf(d))).equals(d));
      assert.deepEqual(c.seen.map((s) => s.fileRecord), [true, true, true], 'the main thread named the records, not their bytes');
      c.seen.length = 0;
      assert.ok(Buffer.from(await c.proxy.get('chunk', idOf(filling))).equals(filling));
      assert.deepEqual(c.seen.map((s) => s.fileRecord), [false], 'an object still being packed comes as bytes');
      await assert.rejects(c.proxy.get('chunk', 'ab'.repeat(32)), (e: unknown) => e instanceof ObnamError && e.code === 'NOT_FOUND');
    } finally {
      c.close();
    }
  });

  it('a damaged record read by the worker is read again by the main thread, which reports it', async () => {
    const d = prngBytes('proxy damaged', 10_000);
    await store.put('chunk', idOf(d), d);
    await store.seal();
    const record = store.fileRecord('chunk', idOf(d))!;
    assert.ok(record, 'the object is in a finished pack');
    await flipByteInFile(record.file, record.offset + RECORD_HEADER_BYTES + 5000);
    const c = channel((req) => serveStoreRequest(store as ObjectAccess, req));
    try {
      await assert.rejects(c.proxy.get('chunk', idOf(d)), (e: unknown) => e instanceof ObnamError && e.code === 'CORRUPT' && /SHA-256/.test(e.message));
      assert.deepEqual(
        c.seen.map((s) => [s.req.op === 'get' && s.req.direct === true, s.fileRecord]),
        [[true, true], [false, false]],
        'a direct read, then the main thread read without one',
      );
    } finally {
      c.close();
    }
  });

  it('a pack gone between the answer and the read (repacked away) is read through the main thread', async () => {
    const d = prngBytes('proxy gone', 2000);
    await store.put('chunk', idOf(d), d);
    await store.seal();
    const real = store.fileRecord('chunk', idOf(d))!;
    let answers = 0;
    // The first answer names a file that no longer exists; the main thread's own read then finds the bytes.
    const c = channel(async (req) => {
      if (req.op === 'get' && req.direct && answers++ === 0) return [{ fileRecord: { ...real, file: `${real.file}.gone` } }, []];
      return serveStoreRequest(store as ObjectAccess, req);
    });
    try {
      assert.ok(Buffer.from(await c.proxy.get('chunk', idOf(d))).equals(d));
      assert.equal(c.seen.length, 2);
    } finally {
      c.close();
    }
  });
});
