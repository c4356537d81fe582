/**
 * Faults: the server killed (SIGKILL) in the middle of a backup and started
 * again on the same directory and port; SIGTERM while uploads are in flight
 * (no acknowledged write may be lost); a flipped byte on the server's disk,
 * found by `obnam-server scrub` without keys and by `obnam fsck`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HttpStore } from '../lib/store/http.js';
import { addClient } from '../server/admin.js';
import { initServerDir } from '../server/init.js';
import { serverDir } from '../server/layout.js';
import { LocalStore } from '../lib/store/local.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { flipByte, namespaceDirOf, obnamServer, ServerProcess, spawnServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree, makeTree } from './helpers/trees.js';

let tmp: TempDir;
let dir: string;
let fingerprint: string;
const servers: ServerProcess[] = [];

before(async () => {
  tmp = await tempDir('obnam-server-faults-');
  dir = path.join(tmp.path, 'server');
  fingerprint = (await initServerDir(dir)).fingerprint;
});

after(async () => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await Promise.all(servers.map((s) => s.exited));
  await tmp.remove();
});

async function serve(listen = '127.0.0.1:0'): Promise<ServerProcess> {
  const s = await spawnServer(dir, listen);
  servers.push(s);
  return s;
}

async function client(name: string, url: string): Promise<{ env: Record<string, string>; token: string }> {
  const { token } = await addClient(serverDir(dir), name, false);
  return { token, env: { OBNAM_REPO: url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: 'pass' } };
}

/** Resolves once `dir` (recursively) holds at least `n` files. */
async function waitForFiles(d: string, n: number, stillRunning: () => boolean): Promise<void> {
  const count = async (p: string): Promise<number> => {
    let total = 0;
    for (const e of await fs.readdir(p, { withFileTypes: true })) total += e.isDirectory() ? await count(path.join(p, e.name)) : 1;
    return total;
  };
  while ((await count(d)) < n) {
    if (!stillRunning()) throw new Error('the backup ended before the server was killed');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('server faults', () => {
  it('killed in the middle of a backup: after a restart the repository passes fsck and the next backup completes', async (t) => {
    let srv = await serve();
    const c = await client('crashy', srv.url);
    const src = path.join(tmp.path, 'src-crash');
    await fs.mkdir(src, { recursive: true });
    for (let i = 0; i < 12; i++) await fs.writeFile(path.join(src, `big${i}`), randomBytes(6 << 20));
    await obnamOk(['init'], c);

    const running = obnam(['backup', src], { ...c, timeoutMs: 300_000 });
    let done = false;
    void running.then(() => (done = true));
    const packs = path.join(await namespaceDirOf(dir, 'crashy'), 'packs');
    await waitForFiles(packs, 3, () => !done);
    srv.child.kill('SIGKILL');
    assert.equal(await srv.exited, 'SIGKILL');
    assert.equal(done, false, 'the backup was still running when the server died');

    // Same directory, same port: the running backup may even finish through its retries.
    srv = await serve(`127.0.0.1:${srv.port}`);
    const interrupted = await running;
    assert.ok(interrupted.code === 0 || interrupted.code === 1, `backup ended cleanly (${interrupted.code}): ${interrupted.stderr}`);
    t.diagnostic(`the interrupted backup ${interrupted.code === 0 ? 'completed through its retries' : `failed: ${interrupted.stderr.trim()}`}`);

    const fsck = await obnamOk(['fsck'], c);
    assert.match(fsck.stdout, /no problems found/);
    await obnamOk(['backup', src], c);
    const target = path.join(tmp.path, 'restored-crash');
    await obnamOk(['restore', 'latest', target], c);
    await assertSameTree(src, path.join(target, src));
    srv.child.kill('SIGTERM');
    assert.equal(await srv.exited, 0);
  });

  it('SIGTERM while uploads are in flight loses no acknowledged write', async (t) => {
    const srv = await serve();
    const { token } = await client('terminated', srv.url);
    const store = await HttpStore.open({ url: srv.url, token, fingerprint }, { retries: 1, baseDelayMs: 10 });
    const objects = Array.from({ length: 400 }, (_, i) => ({ id: randomBytes(32).toString('hex'), data: randomBytes(i % 2 ? 20_000 : 300_000) }));
    const acked: typeof objects = [];
    let settled = 0;
    const puts = objects.map((o) =>
      store.put('chunk', o.id, o.data).then(
        () => acked.push(o),
        () => undefined,
      ).finally(() => {
        if (++settled === 20) srv.child.kill('SIGTERM');
      }),
    );
    await Promise.all(puts);
    assert.equal(await srv.exited, 0, 'the server stopped cleanly');
    await store.close();
    assert.ok(acked.length >= 20, `${acked.length} acknowledged`);
    t.diagnostic(`${acked.length} of ${objects.length} puts acknowledged before the server stopped`);

    const ns = await LocalStore.open(await namespaceDirOf(dir, 'terminated'));
    for (const o of acked) assert.ok(Buffer.from(await ns.get('chunk', o.id)).equals(o.data), `acknowledged chunk ${o.id} is intact`);
    await ns.close();
  });

  it('a flipped byte on the server is found by obnam-server scrub and by obnam fsck', async () => {
    const srv = await serve();
    const c = await client('rotting', srv.url);
    const src = path.join(tmp.path, 'src-rot');
    await makeTree(src, 'rot', { bigBytes: 1_000_000 });
    await obnamOk(['init'], c);
    await obnamOk(['backup', src], c);
    assert.equal((await obnamServer(['scrub', '--dir', dir])).code, 0, 'clean before the damage');

    const nsDir = await namespaceDirOf(dir, 'rotting');
    const ns = await LocalStore.open(nsDir);
    const chunks: string[] = [];
    for await (const id of ns.list('chunk')) chunks.push(id);
    await ns.close();
    const victim = chunks[0]!;
    await flipByte(nsDir, 'chunk', victim);

    const scrub = await obnamServer(['scrub', '--dir', dir]);
    assert.equal(scrub.code, 1, scrub.stdout + scrub.stderr);
    assert.match(scrub.stdout, new RegExp(`damaged: client rotting chunk ${victim}`));
    assert.match(scrub.stdout, /1 damaged/);

    const fsck = await obnam(['fsck'], c);
    assert.equal(fsck.code, 1);
    assert.match(fsck.stdout, new RegExp(`corrupt chunk ${victim}`));
    srv.child.kill('SIGTERM');
    assert.equal(await srv.exited, 0);
  });
});
