/**
 * Many clients at once against one obnam-server process: 100 obnam backup
 * processes (each its own client, token and tree) start together; every
 * snapshot must restore byte-identical, and the server's peak memory must
 * stay bounded (its request limit, not the number of clients, bounds it).
 * OBNAM_TEST_SERVER_CLIENTS changes the number of clients.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, it } from 'node:test';
import { Repository } from '../lib/repo/repository.js';
import { restore } from '../lib/restore/engine.js';
import { HttpStore } from '../lib/store/http.js';
import type { StoreSpec } from '../lib/store/store.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { addClient } from '../server/admin.js';
import { initServerDir } from '../server/init.js';
import { serverDir } from '../server/layout.js';
import { obnam } from './helpers/cli.js';
import { peakRss, ServerProcess, spawnServer } from './helpers/server.js';
import { TEST_KDF } from './helpers/kdf.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree, makeTree } from './helpers/trees.js';

const CLIENTS = Number(process.env.OBNAM_TEST_SERVER_CLIENTS ?? 100);
/** Peak server memory allowed: far below what 100 clients' data would take if buffered. */
const RSS_LIMIT = 768 << 20;

let tmp: TempDir;
let dir: string;
let fingerprint: string;
let srv: ServerProcess;

before(async () => {
  tmp = await tempDir('obnam-server-many-');
  dir = path.join(tmp.path, 'server');
  fingerprint = (await initServerDir(dir)).fingerprint;
  srv = await spawnServer(dir);
});

after(async () => {
  if (srv.child.exitCode === null) srv.child.kill('SIGKILL');
  await srv.exited;
  await tmp.remove();
});

async function inBatches<T>(items: T[], size: number, fn: (x: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

it(`${CLIENTS} clients back up different trees at the same time; all restore byte-identical`, { timeout: 900_000 }, async (t) => {
  interface Client {
    name: string;
    token: string;
    src: string;
    target: string;
    env: Record<string, string>;
  }
  const clients: Client[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const name = `client${i}`;
    const { token } = await addClient(serverDir(dir), name, false);
    const src = path.join(tmp.path, 'src', name);
    await makeTree(src, name, { bigBytes: 150_000 + i * 997, files: 4 });
    const env = {
      OBNAM_REPO: srv.url,
      OBNAM_TOKEN: token,
      OBNAM_SERVER_FINGERPRINT: fingerprint,
      OBNAM_PASSPHRASE: `passphrase of ${name}`,
      OBNAM_WORKERS: '1',
    };
    clients.push({ name, token, src, env, target: path.join(tmp.path, 'restored', name) });
  }
  await fs.mkdir(path.join(tmp.path, 'restored'));

  // Set-up: create every repository (in this process, to save CI time).
  await inBatches(clients, 20, async (c) => {
    const spec: StoreSpec = { type: 'http', url: srv.url, token: c.token, fingerprint };
    const store = await HttpStore.open(spec);
    const repo = await Repository.init(store, spec, c.env.OBNAM_PASSPHRASE, undefined, { kdf: TEST_KDF });
    await repo.close();
  });

  // The test: every client backs up at once.
  const started = Date.now();
  const results = await Promise.all(clients.map((c) => obnam(['backup', c.src, '--json'], { env: c.env, timeoutMs: 600_000 })));
  results.forEach((r, i) => assert.equal(r.code, 0, `backup of ${clients[i]!.name}: ${r.stderr}`));

  const backedUp = Date.now();
  // Restore every snapshot with the restore engine, in this process (the
  // CLI's restore over the server is tested in server-cli.test.ts).
  await inBatches(clients, 10, async (c) => {
    const spec: StoreSpec = { type: 'http', url: srv.url, token: c.token, fingerprint };
    const repo = await Repository.open(await HttpStore.open(spec), c.env.OBNAM_PASSPHRASE);
    const pool = startRepoPool(repo, { size: 1 });
    try {
      const result = await restore(repo, await repo.resolveSnapshot('latest'), { target: c.target, pool });
      assert.equal(result.errors, 0);
    } finally {
      await pool.close();
      await repo.close();
    }
    await assertSameTree(c.src, path.join(c.target, c.src));
  });

  t.diagnostic(`backups ${((backedUp - started) / 1000).toFixed(1)} s, restores ${((Date.now() - backedUp) / 1000).toFixed(1)} s`);
  const rss = await peakRss(srv.child.pid!);
  srv.child.kill('SIGTERM');
  assert.equal(await srv.exited, 0);
  const stopped = srv
    .stdout()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string; peakConcurrentRequests?: number; peakConcurrentClients?: number })
    .find((l) => l.msg === 'stopped')!;
  t.diagnostic(
    `server peak RSS ${(rss / 2 ** 20).toFixed(0)} MiB; peak ${stopped.peakConcurrentRequests} requests ` +
      `and ${stopped.peakConcurrentClients} clients in progress at once`,
  );
  assert.ok(rss < RSS_LIMIT, `server peak RSS ${rss} bytes stays below ${RSS_LIMIT}`);
  assert.ok(stopped.peakConcurrentClients! >= Math.min(CLIENTS, 10), 'clients really were served at the same time');
});
