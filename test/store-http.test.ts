/**
 * HttpStore against a real obnam-server over HTTPS: the store conformance
 * suite, certificate pinning (a wrong certificate is refused before a byte of
 * the request is sent), retries (transient failures only, never a 4xx),
 * batching, and end-to-end digests.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as https from 'node:https';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ObnamError } from '../lib/errors.js';
import { HttpStore } from '../lib/store/http.js';
import { formatFingerprint, parseFingerprint } from '../lib/store/http-tls.js';
import { storeConformance } from './helpers/store-conformance.js';
import { flipByte, startTestServer, TestServer } from './helpers/server.js';

const newId = () => randomBytes(32).toString('hex');

let ts: TestServer;
let clients = 0;

before(async () => {
  ts = await startTestServer({ logLevel: 'debug' });
});
after(async () => {
  await ts.stop();
});

async function newStore(opts: Parameters<typeof HttpStore.open>[1] = {}): Promise<{ store: HttpStore; name: string }> {
  const name = `client${++clients}`;
  const token = await ts.addClient(name);
  return { store: await HttpStore.open({ url: ts.url, token, fingerprint: ts.fingerprint }, opts), name };
}

storeConformance('HttpStore', async () => ({ store: (await newStore()).store }));

describe('server fingerprints', () => {
  it('accepts the forms people paste and rejects others', () => {
    const hex = 'ab'.repeat(32);
    const colons = formatFingerprint(hex);
    assert.equal(colons, Array(32).fill('AB').join(':'));
    for (const s of [hex, hex.toUpperCase(), colons, colons.toLowerCase(), `sha256 Fingerprint=${colons}`, `SHA256 Fingerprint=${colons}\n`, ` ${colons} `]) {
      assert.equal(parseFingerprint(s), hex, s);
    }
    for (const s of ['', 'ab', hex.slice(2), `${hex}00`, 'zz'.repeat(32)]) {
      assert.throws(() => parseFingerprint(s), (e: unknown) => e instanceof ObnamError && e.code === 'USAGE');
    }
  });
});

/** A TLS server with the test server's certificate that records every application byte it receives. */
async function recordingTlsServer(): Promise<{ url: string; received: () => number; connections: () => number; close: () => Promise<void> }> {
  const cfg = path.join(ts.dir, 'tls');
  const server = tls.createServer({ cert: await fs.readFile(path.join(cfg, 'cert.pem')), key: await fs.readFile(path.join(cfg, 'key.pem')) });
  let received = 0;
  let connections = 0;
  server.on('connection', () => connections++);
  server.on('secureConnection', (s) => {
    s.on('data', (d: Buffer) => (received += d.length));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    received: () => received,
    connections: () => connections,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('HttpStore certificate pinning', () => {
  it('refuses a server whose certificate does not match, before sending anything', async () => {
    const rec = await recordingTlsServer();
    try {
      const wrong = formatFingerprint(randomBytes(32).toString('hex'));
      const store = await HttpStore.open({ url: rec.url, token: 'secret-token', fingerprint: wrong });
      await assert.rejects(store.put('chunk', newId(), randomBytes(10)), (e: unknown) => {
        assert.ok(e instanceof ObnamError);
        assert.equal(e.code, 'TLS');
        assert.match(e.message, /does not match the expected fingerprint/);
        return true;
      });
      await store.close();
      assert.ok(rec.connections() >= 1, 'the client connected');
      assert.equal(rec.received(), 0, 'no request bytes (token, body) reached the server');

      // Control: with the right fingerprint the same server does receive the request.
      const right = await HttpStore.open({ url: rec.url, token: 'secret-token', fingerprint: ts.fingerprint }, { retries: 0, timeoutMs: 500 });
      await assert.rejects(right.has('chunk', newId()));
      await right.close();
      assert.ok(rec.received() > 0);
    } finally {
      await rec.close();
    }
  });

  it('without a fingerprint or CA, refuses the self-signed certificate', async () => {
    const token = await ts.addClient(`nopin${++clients}`);
    const store = await HttpStore.open({ url: ts.url, token });
    await assert.rejects(store.has('chunk', newId()), { code: 'TLS' });
    await store.close();
  });

  it('trusts the certificate given as a CA file', async () => {
    const token = await ts.addClient(`ca${++clients}`);
    const store = await HttpStore.open({ url: ts.url.replace('127.0.0.1', 'localhost'), token, caFile: path.join(ts.dir, 'tls', 'cert.pem') });
    const id = newId();
    assert.equal(await store.put('chunk', id, Buffer.from('hello')), true);
    assert.deepEqual(Buffer.from(await store.get('chunk', id)), Buffer.from('hello'));
    await store.close();
  });

  it('refuses an http:// URL unless insecureHttp says so, before any connection', async () => {
    // Port 1 on loopback: nothing listens, so getting as far as connecting would be NETWORK, not USAGE.
    await assert.rejects(
      HttpStore.open({ url: 'http://127.0.0.1:1', token: 'secret' }),
      (e: unknown) => e instanceof ObnamError && e.code === 'USAGE' && /plain HTTP/.test(e.message),
    );
    const store = await HttpStore.open({ url: 'http://127.0.0.1:1', token: 'secret', insecureHttp: true });
    await store.close();
  });

  it('a wrong token is UNAUTHORIZED', async () => {
    const store = await HttpStore.open({ url: ts.url, token: 'not-a-token', fingerprint: ts.fingerprint });
    await assert.rejects(store.has('chunk', newId()), { code: 'UNAUTHORIZED' });
    await assert.rejects(store.get('chunk', newId()), { code: 'UNAUTHORIZED' });
    await store.close();
  });
});

/** An HTTPS server answering from a script of statuses; counts requests. */
async function scriptedServer(statuses: number[], body = '{}'): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  const cfg = path.join(ts.dir, 'tls');
  let n = 0;
  const server = https.createServer(
    { cert: await fs.readFile(path.join(cfg, 'cert.pem')), key: await fs.readFile(path.join(cfg, 'key.pem')) },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        const status = statuses[Math.min(n, statuses.length - 1)]!;
        n++;
        res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? body : '{"error":{"code":"X","message":"scripted"}}');
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
    requests: () => n,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('HttpStore retries', () => {
  const fast = { baseDelayMs: 1, maxDelayMs: 2 };

  it('retries 503, 500 and 429, then succeeds', async () => {
    const s = await scriptedServer([503, 500, 429, 200], JSON.stringify({ exists: [true] }));
    try {
      const store = await HttpStore.open({ url: s.url, token: 't', fingerprint: ts.fingerprint }, fast);
      assert.equal(await store.has('chunk', newId()), true);
      assert.equal(s.requests(), 4);
      await store.close();
    } finally {
      await s.close();
    }
  });

  it('gives up after the configured retries with a NETWORK error', async () => {
    const s = await scriptedServer([503]);
    try {
      const store = await HttpStore.open({ url: s.url, token: 't', fingerprint: ts.fingerprint }, { ...fast, retries: 3 });
      await assert.rejects(store.has('chunk', newId()), { code: 'NETWORK' });
      assert.equal(s.requests(), 4);
      await store.close();
    } finally {
      await s.close();
    }
  });

  for (const [status, code] of [
    [400, 'INTERNAL'],
    [401, 'UNAUTHORIZED'],
    [403, 'PERMISSION'],
    [404, 'NOT_FOUND'],
    [413, 'TOO_LARGE'],
    [422, 'CORRUPT'],
  ] as const) {
    it(`never retries a ${status} (${code})`, async () => {
      const s = await scriptedServer([status, 200]);
      try {
        const store = await HttpStore.open({ url: s.url, token: 't', fingerprint: ts.fingerprint }, fast);
        await assert.rejects(store.get('chunk', newId()), { code });
        assert.equal(s.requests(), 1);
        await store.close();
      } finally {
        await s.close();
      }
    });
  }

  it('retries a refused connection a few times, then fails with NETWORK', async () => {
    const s = await scriptedServer([200]);
    const url = s.url;
    await s.close();
    const store = await HttpStore.open({ url, token: 't', fingerprint: ts.fingerprint }, fast);
    await assert.rejects(store.has('chunk', newId()), { code: 'NETWORK' });
    await store.close();
  });
});

describe('HttpStore over the wire', () => {
  it('gathers concurrent small puts and lookups into batch requests', async () => {
    const { store, name } = await newStore({ concurrency: 2 });
    const ids = Array.from({ length: 300 }, newId);
    const before = ts.logs.length;
    const created = await Promise.all(ids.map((id) => store.put('tree', id, randomBytes(200))));
    assert.ok(created.every(Boolean));
    const exist = await Promise.all([...ids, newId()].map((id) => store.has('tree', id)));
    assert.deepEqual(exist, [...ids.map(() => true), false]);
    const lines = ts.logs.slice(before).map((l) => JSON.parse(l) as { client?: string; method?: string; url?: string });
    const mine = lines.filter((l) => l.client === name);
    const batches = mine.filter((l) => l.url?.startsWith('/v1/batch/')).length;
    const lookups = mine.filter((l) => l.url?.startsWith('/v1/has/')).length;
    assert.equal(mine.filter((l) => l.method === 'PUT').length, 0, 'small objects go in batches');
    assert.ok(batches >= 1 && batches < 30, `300 puts in ${batches} batch requests`);
    assert.ok(lookups >= 1 && lookups < 30, `301 lookups in ${lookups} requests`);
    await store.close();
  });

  it('lists a kind across pages', async () => {
    const { store } = await newStore({ listPageSize: 7 });
    const ids = Array.from({ length: 50 }, newId);
    await Promise.all(ids.map((id) => store.put('chunk', id, new Uint8Array(0))));
    const listed: string[] = [];
    for await (const id of store.list('chunk')) listed.push(id);
    assert.deepEqual(listed, [...ids].sort());
    await store.close();
  });

  it('gathers concurrent reads into fetch requests; a missing or damaged object fails only its own read', async () => {
    const { store, name } = await newStore({ concurrency: 2 });
    const objects = Array.from({ length: 200 }, () => ({ id: newId(), data: randomBytes(1000 + Math.floor(Math.random() * 3000)) }));
    await Promise.all(objects.map((o) => store.put('chunk', o.id, o.data)));
    const damaged = objects[17]!;
    await flipByte(await ts.namespaceDir(name), 'chunk', damaged.id);
    const missing = newId();
    const before = ts.logs.length;
    const reads = await Promise.allSettled([...objects.map((o) => store.get('chunk', o.id)), store.get('chunk', missing)]);
    objects.forEach((o, i) => {
      const r = reads[i]!;
      if (o === damaged) assert.equal(r.status === 'rejected' && (r.reason as ObnamError).code, 'CORRUPT');
      else assert.ok(r.status === 'fulfilled' && Buffer.from(r.value).equals(o.data), `object ${i}`);
    });
    const last = reads[reads.length - 1]!;
    assert.equal(last.status === 'rejected' && (last.reason as ObnamError).code, 'NOT_FOUND');
    const mine = ts.logs
      .slice(before)
      .map((l) => JSON.parse(l) as { client?: string; method?: string; url?: string })
      .filter((l) => l.client === name);
    const fetches = mine.filter((l) => l.url?.startsWith('/v1/fetch/')).length;
    const gets = mine.filter((l) => l.method === 'GET').length;
    assert.ok(fetches >= 1 && fetches + gets < 40, `201 reads in ${fetches} fetches and ${gets} single reads`);
    await store.close();
  });

  it('detects a damaged object on the server through its digest', async () => {
    const { store, name } = await newStore();
    const id = newId();
    const data = randomBytes(300_000);
    await store.put('chunk', id, data);
    await flipByte(await ts.namespaceDir(name), 'chunk', id);
    await assert.rejects(store.get('chunk', id), { code: 'CORRUPT' });
    await store.close();
  });
});
