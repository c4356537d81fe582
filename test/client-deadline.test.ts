/**
 * The client's overall request deadline, against a raw TLS server on
 * loopback (with the certificate an obnam-server directory gets, pinned by
 * its fingerprint as everywhere in the tests) that answers every request
 * with headers and then one byte of body every 2 s: never silent long enough
 * for the idle timeout, never done. A request fails after the deadline, with
 * one line naming the server, and is not retried; `obnam list` exits 1.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { HttpStore } from '../lib/store/http.js';
import { initServerDir } from '../server/init.js';
import { obnam } from './helpers/cli.js';
import { tempDir, TempDir } from './helpers/tmp.js';

let tmp: TempDir;
let fingerprint: string;
let url: string;
let server: tls.Server;
let requests = 0;
const sockets = new Set<tls.TLSSocket>();

before(async () => {
  tmp = await tempDir('obnam-deadline-');
  const dir = path.join(tmp.path, 'server');
  fingerprint = (await initServerDir(dir)).fingerprint;
  const [cert, key] = await Promise.all([fs.readFile(path.join(dir, 'tls', 'cert.pem')), fs.readFile(path.join(dir, 'tls', 'key.pem'))]);
  server = tls.createServer({ cert, key }, (socket) => {
    sockets.add(socket);
    let head = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (d: Buffer) => {
      if (timer) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      requests++;
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n');
      timer = setInterval(() => socket.write('x'), 2000);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
  await tmp.remove();
});

const newId = () => randomBytes(32).toString('hex');
const message = (seconds: number) => new RegExp(`^obnam: ${url.replace(/[.]/g, '\\.')}: no complete answer within ${seconds} s`);

describe('request deadline', () => {
  it('fails a request that does not complete in time, naming the server, without retrying it', { timeout: 30_000 }, async () => {
    const before = requests;
    const store = await HttpStore.open({ url, token: 't', fingerprint }, { deadlineMs: 1500 });
    const t0 = performance.now();
    try {
      await assert.rejects(store.get('chunk', newId()), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'NETWORK');
        assert.match(e.message, new RegExp(`^${url.replace(/[.]/g, '\\.')}: no complete answer within 1\\.5 s`));
        return true;
      });
    } finally {
      await store.close();
    }
    const ms = performance.now() - t0;
    assert.ok(ms >= 1400 && ms < 5000, `failed after ${Math.round(ms)} ms`);
    assert.equal(requests - before, 1, 'a missed deadline is not retried');
  });

  for (const [how, args, env, cfg] of [
    ['OBNAM_REQUEST_TIMEOUT', [], { OBNAM_REQUEST_TIMEOUT: '2' }, ''],
    ['--request-timeout', ['--request-timeout', '2'], {}, ''],
    ['request_timeout in the config', [], {}, 'request_timeout: 2\n'],
  ] as const) {
    it(`obnam list fails within bounded time with one line and exit 1 (${how})`, { timeout: 60_000 }, async () => {
      const config = path.join(tmp.path, `client-${how.replace(/\W/g, '')}.yaml`);
      await fs.writeFile(config, cfg);
      const t0 = performance.now();
      const r = await obnam(['list', '--config', config, ...args], {
        env: { OBNAM_REPO: url, OBNAM_TOKEN: 't', OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: 'p', ...env },
        timeoutMs: 30_000,
      });
      const ms = performance.now() - t0;
      assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line of error, got:\n${r.stderr}`);
      assert.match(lines[0]!, message(2));
      assert.ok(ms < 15_000, `failed after ${Math.round(ms)} ms`);
    });
  }

  it('refuses a request timeout that is not a positive number', async () => {
    const r = await obnam(['list', '--request-timeout', 'soon'], {
      env: { OBNAM_REPO: url, OBNAM_TOKEN: 't', OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: 'p' },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^obnam: --request-timeout must be a positive number of seconds/);
  });
});
