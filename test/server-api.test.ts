/**
 * The server's HTTP API from the outside, with raw HTTPS requests: per-client
 * isolation (another client's object answers byte for byte like a missing
 * one), append-only clients, and hostile input (traversal, malformed ids,
 * oversized, truncated and stalled uploads, bad digests, bad tokens), each
 * refused with a 4xx or a dropped connection, logged, and changing nothing
 * on disk.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { HttpStore } from '../lib/store/http.js';
import { BATCH_CONTENT_TYPE, encodeBatch } from '../lib/store/http-wire.js';
import { rawRequest, RawResponse, startTestServer, TestServer, treeDigest } from './helpers/server.js';

const newId = () => randomBytes(32).toString('hex');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
// Failed token attempts refill fast, so that a burst of them is over (and reported) within a second.
const LIMITS = { maxObjectBytes: 1 << 20, maxBatchBytes: 2 << 20, maxLookupIds: 100, idleTimeoutSeconds: 1, failedAuthPerMinute: 600 };

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ limits: LIMITS, logLevel: 'info' });
});
after(async () => {
  await ts.stop();
});

/** Everything that identifies an answer, except the Date header, with the requested id replaced by "ID". */
function answer(r: RawResponse, id: string): string {
  const headers = Object.entries(r.headers)
    .filter(([k]) => k !== 'date')
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify({ status: r.status, headers, body: r.body.toString('latin1') }).replaceAll(id, 'ID');
}

describe('isolation between clients', () => {
  it('another client cannot list, read, test or delete my objects, and cannot tell they exist', async () => {
    const alice = await ts.addClient('alice');
    const bob = await ts.addClient('bob');
    const a = await HttpStore.open({ url: ts.url, token: alice, fingerprint: ts.fingerprint });
    const mine = newId();
    const big = newId();
    const data = randomBytes(1000);
    await a.put('chunk', mine, data);
    await a.put('chunk', big, randomBytes(200_000));
    await a.put('snapshot', mine, data);
    const nobody = newId();

    for (const method of ['GET', 'HEAD', 'DELETE']) {
      for (const [kind, id] of [
        ['chunk', mine],
        ['chunk', big],
        ['snapshot', mine],
      ] as const) {
        const theirs = await rawRequest(ts.url, { method, path: `/v1/objects/${kind}/${id}`, token: bob });
        const missing = await rawRequest(ts.url, { method, path: `/v1/objects/${kind}/${nobody}`, token: bob });
        assert.equal(theirs.status, 404, `${method} ${kind}`);
        // The message names the requested id; with that id swapped, the answers are identical.
        assert.equal(answer(theirs, id), answer(missing, nobody), `${method} ${kind}`);
      }
    }
    for (const kind of ['chunk', 'snapshot']) {
      const list = await rawRequest(ts.url, { path: `/v1/objects/${kind}`, token: bob });
      assert.deepEqual(JSON.parse(list.body.toString()), { ids: [], next: null });
    }
    const has = await rawRequest(ts.url, {
      method: 'POST',
      path: '/v1/has/chunk',
      token: bob,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ ids: [mine, big, nobody] })),
    });
    assert.deepEqual(JSON.parse(has.body.toString()), { exists: [false, false, false] });

    // Bob storing the same id makes his own object; Alice's stays hers.
    const b = await HttpStore.open({ url: ts.url, token: bob, fingerprint: ts.fingerprint });
    const other = randomBytes(1000);
    assert.equal(await b.put('chunk', mine, other), true);
    assert.deepEqual(Buffer.from(await b.get('chunk', mine)), other);
    await b.delete('chunk', mine);
    assert.deepEqual(Buffer.from(await a.get('chunk', mine)), data);
    const listed: string[] = [];
    for await (const id of a.list('chunk')) listed.push(id);
    assert.deepEqual(listed.sort(), [mine, big].sort());
    await a.close();
    await b.close();
  });
});

describe('append-only clients', () => {
  it('may add objects but neither delete nor overwrite them', async () => {
    const token = await ts.addClient('appender', true);
    const s = await HttpStore.open({ url: ts.url, token, fingerprint: ts.fingerprint });
    const id = newId();
    const data = randomBytes(500);
    assert.equal(await s.put('key', id, data), true);
    await assert.rejects(s.delete('key', id), { code: 'PERMISSION' });
    assert.equal(await s.put('key', id, randomBytes(500)), false);
    assert.deepEqual(Buffer.from(await s.get('key', id)), data);
    await s.close();
  });
});

/** Opens a TLS connection and sends `text`; resolves when the server closes it, with what it answered. */
function rawSocket(text: string, opts: { end?: boolean } = {}): Promise<string> {
  const u = new URL(ts.url);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
      s.write(text);
      if (opts.end) s.end();
    });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve(got) : reject(e)));
    s.on('close', () => resolve(got));
  });
}

describe('hostile input', () => {
  it('is refused with a 4xx or a dropped connection, logged, and changes nothing stored', async () => {
    const token = await ts.addClient('target');
    const s = await HttpStore.open({ url: ts.url, token, fingerprint: ts.fingerprint });
    const existing = newId();
    await s.put('chunk', existing, randomBytes(100));
    await s.close();
    const before = await treeDigest(ts.dir);
    const logsBefore = ts.logs.length;

    const req = (method: string, p: string, body?: Buffer, headers: Record<string, string | number> = {}) =>
      rawRequest(ts.url, { method, path: p, token, body, headers });
    const octets = (b: Buffer, digest = sha(b)) => ({ 'content-type': 'application/octet-stream', 'obnam-sha256': digest });
    const small = randomBytes(100);
    const id = newId();
    const expectations: [Promise<RawResponse>, number, string][] = [
      [req('GET', '/v1/objects/chunk/..%2F..%2F..%2Fclients.json'), 400, 'encoded traversal id'],
      [req('GET', '/v1/objects/chunk/../../clients.json'), 404, 'traversal path'],
      [req('GET', '/v1/objects/..%2F..%2Fclients.json/' + id), 400, 'traversal kind'],
      [req('PUT', '/v1/objects/chunk/..%2F..%2Fevil', small, octets(small)), 400, 'traversal put'],
      [req('PUT', `/v1/objects/chunk/${id.toUpperCase()}`, small, octets(small)), 400, 'uppercase id'],
      [req('PUT', `/v1/objects/chunk/${id.slice(1)}`, small, octets(small)), 400, 'short id'],
      [req('PUT', `/v1/objects/chunks/${id}`, small, octets(small)), 400, 'unknown kind'],
      [req('GET', '/v1/objects/chunk?after=..%2F..%2Fx'), 400, 'traversal cursor'],
      [req('GET', '/v1/objects/chunk?limit=100001'), 400, 'huge page'],
      [req('PUT', `/v1/objects/chunk/${id}`, small, octets(small, sha(randomBytes(5)))), 422, 'wrong digest'],
      [req('PUT', `/v1/objects/chunk/${id}`, small, { 'content-type': 'application/octet-stream' }), 400, 'no digest'],
      [req('PUT', `/v1/objects/chunk/${id}`, small, { ...octets(small), 'content-type': 'image/png' }), 415, 'wrong content type'],
      [req('PUT', `/v1/objects/chunk/${id}`, randomBytes((1 << 20) + 1), octets(small)), 413, 'oversized object'],
      [req('PUT', `/v1/objects/chunk/${existing}`, small, octets(small)), 200, 'overwrite attempt (kept as is)'],
      [
        req('POST', '/v1/batch/chunk', Buffer.concat(encodeBatch([{ id, digest: Buffer.from(sha(small), 'hex'), data: small }])).subarray(0, 150), {
          'content-type': BATCH_CONTENT_TYPE,
        }),
        400,
        'truncated batch',
      ],
      [
        req(
          'POST',
          '/v1/batch/chunk',
          Buffer.concat(
            encodeBatch([
              { id, digest: Buffer.from(sha(small), 'hex'), data: small },
              { id: newId(), digest: randomBytes(32), data: small },
            ]),
          ),
          { 'content-type': BATCH_CONTENT_TYPE },
        ),
        422,
        'batch with one bad digest',
      ],
      [req('POST', '/v1/batch/chunk', randomBytes((2 << 20) + 1), { 'content-type': BATCH_CONTENT_TYPE }), 413, 'oversized batch'],
      [req('POST', '/v1/has/chunk', Buffer.from('{"ids": ['), { 'content-type': 'application/json' }), 400, 'malformed JSON'],
      [req('POST', '/v1/has/chunk', Buffer.from(JSON.stringify({ ids: ['../x'] })), { 'content-type': 'application/json' }), 400, 'bad id in lookup'],
      [
        req('POST', '/v1/has/chunk', Buffer.from(JSON.stringify({ ids: Array.from({ length: 101 }, newId) })), { 'content-type': 'application/json' }),
        413,
        'too many ids',
      ],
      [req('POST', '/v1/fetch/chunk', Buffer.from('{"ids": ['), { 'content-type': 'application/json' }), 400, 'malformed fetch'],
      [req('POST', '/v1/fetch/chunk', Buffer.from(JSON.stringify({ ids: ['../../x'] })), { 'content-type': 'application/json' }), 400, 'bad id in fetch'],
      [
        req('POST', '/v1/fetch/chunk', Buffer.from(JSON.stringify({ ids: Array.from({ length: 257 }, newId) })), { 'content-type': 'application/json' }),
        413,
        'too many ids in a fetch',
      ],
      [rawRequest(ts.url, { path: `/v1/objects/chunk/${existing}` }), 401, 'no token'],
      [rawRequest(ts.url, { path: `/v1/objects/chunk/${existing}`, token: 'x'.repeat(43) }), 401, 'bad token'],
      [rawRequest(ts.url, { path: `/v1/objects/chunk/${existing}`, headers: { authorization: `Basic ${token}` } }), 401, 'wrong scheme'],
      [rawRequest(ts.url, { method: 'DELETE', path: `/v1/objects/chunk/${existing}`, token: `${token}x` }), 401, 'almost the token'],
    ];
    for (const [p, status, what] of expectations) {
      const r = await p;
      assert.equal(r.status, status, `${what}: ${r.status} ${r.body.toString().slice(0, 200)}`);
      if (status >= 400) assert.ok(JSON.parse(r.body.toString()).error.message, what);
    }

    // A truncated upload: the connection ends in the middle of the body.
    const body = 'x'.repeat(100);
    await rawSocket(
      `PUT /v1/objects/chunk/${newId()} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: application/octet-stream\r\nObnam-SHA256: ${sha(Buffer.alloc(5000))}\r\nContent-Length: 5000\r\n\r\n${body}`,
      { end: true },
    );
    // A stalled upload and a stalled request line: the server drops them after the idle timeout.
    await rawSocket(
      `PUT /v1/objects/chunk/${newId()} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: application/octet-stream\r\nObnam-SHA256: ${sha(Buffer.alloc(5000))}\r\nContent-Length: 5000\r\n\r\n${body}`,
    );
    await rawSocket('GET /v1/objects/chu');

    const health = await rawRequest(ts.url, { path: '/health' });
    assert.equal(health.status, 200);
    assert.deepEqual(await treeDigest(ts.dir), before, 'nothing on disk changed');

    // The failed token attempts are logged once, as one burst, when it is over.
    const burstLine = (l: { msg: string }) => /failed token attempts from/.test(l.msg);
    for (let i = 0; i < 50 && !ts.logs.slice(logsBefore).some((l) => burstLine(JSON.parse(l))); i++) await new Promise((r) => setTimeout(r, 100));
    const logged = ts.logs.slice(logsBefore).map((l) => JSON.parse(l) as { level: number; status?: number; msg: string; failures?: number });
    for (const status of [400, 413, 415, 422]) {
      assert.ok(logged.some((l) => l.level === 40 && l.status === status), `a ${status} is logged as a warning`);
    }
    assert.ok(!logged.some((l) => l.level >= 40 && l.status === 401), 'a failed token attempt is not logged on its own');
    const bursts = logged.filter(burstLine);
    assert.equal(bursts.length, 1, 'one line for the burst of failed token attempts');
    assert.equal(bursts[0]!.level, 40);
    assert.equal(bursts[0]!.failures, 4, bursts[0]!.msg);
    assert.ok(logged.some((l) => l.level === 40 && /closed before the request was complete/.test(l.msg)), 'the aborted upload is logged');
    assert.ok(logged.some((l) => l.level === 40 && /idle for too long/.test(l.msg)), 'the stalled connection is logged');
  });

  it('serves /health without a token', async () => {
    const r = await rawRequest(ts.url, { path: '/health' });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body.toString()), { status: 'ok' });
  });

  it('answers unknown routes with 404', async () => {
    const r = await rawRequest(ts.url, { path: '/v2/anything', token: 'x' });
    assert.equal(r.status, 404);
    assert.equal((await fs.stat(path.join(ts.dir, 'clients.json'))).isFile(), true);
  });
});
