/**
 * Repacking on obnam-server (format-spec 14.8, server-api.md "POST
 * /v1/repack", "Repacking on the server"), against real servers on 127.0.0.1
 * over HTTPS: the repack route and who may use it, the background repack of
 * idle namespaces (injected clock and intervals), and `obnam-server repack`
 * as a separate process beside a running `serve` on the same directory.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ObnamError } from '../lib/errors.js';
import { HttpStore } from '../lib/store/http.js';
import type { RepackResult } from '../lib/store/store.js';
import { addNamespace, grantAccess } from '../server/acl.js';
import * as fs from 'node:fs/promises';
import { DEFAULT_REPACK, loadServerConfig } from '../server/config.js';
import { serverDir } from '../server/layout.js';
import { bytesUnder, namespaceDirOf, obnamServer, obnamServerOk, rawRequest, spawnServer, startTestServer, TestServer } from './helpers/server.js';
import { tempDir } from './helpers/tmp.js';

const newId = () => randomBytes(32).toString('hex');

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ObnamError, String(e));
    return { code: e.code, message: e.message };
  }
  assert.fail('expected a failure');
}

/** Stores `n` chunks of `size` random bytes; returns them by id. */
async function putChunks(store: HttpStore, n: number, size: number): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  await Promise.all(
    Array.from({ length: n }, async () => {
      const id = newId();
      const data = randomBytes(size);
      out.set(id, data);
      await store.put('chunk', id, data);
    }),
  );
  return out;
}

async function assertReadable(store: HttpStore, kept: Map<string, Buffer>, gone: Iterable<string>): Promise<void> {
  for (const [id, data] of kept) assert.ok(Buffer.from(await store.get('chunk', id)).equals(data), `chunk ${id.slice(0, 8)} reads back`);
  for (const id of gone) assert.equal((await codeOf(store.get('chunk', id))).code, 'NOT_FOUND', 'a deleted chunk stays deleted');
  const listed = new Set<string>();
  for await (const id of store.list('chunk')) listed.add(id);
  for (const id of kept.keys()) assert.ok(listed.has(id));
  for (const id of gone) assert.ok(!listed.has(id));
}

const open = (srv: { url: string; fingerprint?: string }, token: string, prefix = '') =>
  HttpStore.open({ url: srv.url + prefix, token, fingerprint: srv.fingerprint });

describe('the repack section of the server config', () => {
  it('has documented defaults, which init writes out; bad values are one clear error', async () => {
    const tmp = await tempDir('obnam-server-repack-config-');
    try {
      const dir = path.join(tmp.path, 'server');
      await obnamServerOk(['init', dir]);
      const d = serverDir(dir);
      assert.deepEqual((await loadServerConfig(d)).repack, DEFAULT_REPACK);
      assert.deepEqual(DEFAULT_REPACK, { background: true, idleSeconds: 600, maxUnusedPercent: 10 });
      const text = await fs.readFile(d.configFile, 'utf8');
      assert.match(text, /^repack:\n  background: true\n  idle_seconds: 600\n  max_unused_percent: 10$/m);
      await fs.writeFile(d.configFile, text.replace('idle_seconds: 600', 'idle_seconds: 30').replace('background: true', 'background: false'));
      assert.deepEqual((await loadServerConfig(d)).repack, { background: false, idleSeconds: 30, maxUnusedPercent: 10 });
      for (const [from, to, msg] of [
        ['idle_seconds: 600', 'idle_seconds: 0', /repack.idle_seconds must be a positive number/],
        ['max_unused_percent: 10', 'max_unused_percent: 101', /repack.max_unused_percent must be a percentage/],
        ['background: true', 'background: yes please', /repack.background must be true or false/],
        ['idle_seconds: 600', 'every: 5', /unknown repack setting "every"/],
      ] as const) {
        await fs.writeFile(d.configFile, text.replace(from, to));
        await assert.rejects(loadServerConfig(d), (e: unknown) => e instanceof ObnamError && e.code === 'USAGE' && msg.test(e.message));
      }
    } finally {
      await tmp.remove();
    }
  });
});

describe('POST /v1/repack', () => {
  it('a full client gets its space back; append-only clients and grants short of full get the PERMISSION of a delete; bad bodies 400', async () => {
    const srv = await startTestServer({ backgroundRepack: { enabled: false } });
    try {
      const owner = await open(srv, await srv.addClient('owner'));
      const chunks = await putChunks(owner, 60, 20_000);
      const gone = [...chunks.keys()].slice(0, 40);
      for (const id of gone) await owner.delete('chunk', id);
      for (const id of gone) chunks.delete(id);
      const ns = await srv.namespaceDir('owner');
      const before = await bytesUnder(ns);
      const dry = await owner.repack({ maxUnusedPercent: 10, dryRun: true });
      assert.ok((await bytesUnder(ns)) >= before, 'a dry run removes nothing');
      assert.ok(dry.unusedBytesBefore >= 40 * 20_000, JSON.stringify(dry));
      const r: RepackResult = await owner.repack({ maxUnusedPercent: 10 });
      assert.ok(r.packsRewritten >= 1 && r.bytesFreed >= 40 * 20_000 * 0.95, JSON.stringify(r));
      const after = await bytesUnder(ns);
      assert.ok(before - after >= 40 * 20_000 * 0.95, `on disk: ${before} -> ${after}`);
      await assertReadable(owner, chunks, gone);
      // A second repack finds nothing to do.
      const again = await owner.repack({ maxUnusedPercent: 10 });
      assert.equal(again.packsRewritten, 0, JSON.stringify(again));

      const appender = await open(srv, await srv.addClient('appender', true));
      const [someId] = (await putChunks(appender, 1, 100)).keys();
      const del = await codeOf(appender.delete('chunk', someId!));
      const rep = await codeOf(appender.repack({ maxUnusedPercent: 10 }));
      assert.deepEqual(rep, { ...del, message: rep.message });
      assert.equal(rep.code, 'PERMISSION');
      assert.match(rep.message, /append-only/);

      // Named namespace: full may repack, append and read may not.
      const d = serverDir(srv.dir);
      await addNamespace(d, 'family');
      const tokens: Record<string, string> = {};
      for (const access of ['read', 'append', 'full'] as const) {
        tokens[access] = await srv.addClient(`fam-${access}`);
        await grantAccess(d, `fam-${access}`, 'family', access);
      }
      const full = await open(srv, tokens.full!, '/family');
      await putChunks(full, 3, 1000);
      assert.equal((await full.repack({ maxUnusedPercent: 50 })).packsRewritten, 0);
      for (const access of ['read', 'append']) {
        const s = await open(srv, tokens[access]!, '/family');
        const e = await codeOf(s.repack({ maxUnusedPercent: 0 }));
        assert.equal(e.code, 'PERMISSION', access);
        assert.match(e.message, /may not repack or delete objects there/);
        await s.close();
      }

      const token = await srv.addClient('raw');
      const bad = async (body: string) =>
        rawRequest(srv.url, { method: 'POST', path: '/v1/repack', token, headers: { 'content-type': 'application/json' }, body: Buffer.from(body) });
      for (const body of ['{}', '{"max_unused": 101}', '{"max_unused": "10"}', '{"max_unused": 10, "dry_run": 1}', '{"max_unused": 10, "x": 1}', '[]']) {
        const res = await bad(body);
        assert.equal(res.status, 400, body);
        assert.equal(JSON.parse(res.body.toString()).error.code, 'USAGE');
      }
      await Promise.all([owner.close(), appender.close(), full.close()]);
    } finally {
      await srv.stop();
    }
  });
});

describe('serve repacks idle namespaces in the background', () => {
  it('after the idle time, once per change; a request stops it at once and it resumes when idle again; close() ends it', async () => {
    let now = 1_000_000;
    const events: { ns: string; outcome: string; result?: RepackResult }[] = [];
    let interrupt: (() => Promise<void>) | undefined;
    let srv: TestServer | undefined;
    const waitFor = async (n: number) => {
      for (let i = 0; i < 500 && events.length < n; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(events.length, n, JSON.stringify(events));
    };
    srv = await startTestServer({
      backgroundRepack: {
        idleMs: 600_000,
        maxUnusedPercent: 10,
        checkIntervalMs: 10,
        now: () => now,
        onStart: async () => {
          const f = interrupt;
          interrupt = undefined;
          await f?.();
        },
        onRepack: (ns, o) => events.push({ ns, outcome: o.result ? 'done' : o.aborted ? 'aborted' : `error ${String(o.error)}`, result: o.result }),
      },
    });
    try {
      const store = await open(srv, await srv.addClient('idle'));
      const ns = path.basename(await srv.namespaceDir('idle'));
      const chunks = await putChunks(store, 50, 20_000);
      const gone = [...chunks.keys()].slice(0, 30);
      for (const id of gone) await store.delete('chunk', id);
      for (const id of gone) chunks.delete(id);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(events.length, 0, 'nothing before the idle time');
      // Idle long enough, but a request arrives as the repack starts: it is abandoned, the request answered.
      interrupt = async () => void (await store.has('chunk', newId()));
      now += 600_001;
      await waitFor(1);
      assert.deepEqual(events.map((e) => [e.ns, e.outcome]), [[ns, 'aborted']]);
      // Idle again: repacked.
      now += 600_001;
      await waitFor(2);
      assert.equal(events[1]!.outcome, 'done');
      assert.ok(events[1]!.result!.bytesFreed >= 30 * 20_000 * 0.95, JSON.stringify(events[1]));
      // No request since: not looked at again, however long it stays idle.
      now += 10 * 600_001;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(events.length, 2);
      await assertReadable(store, chunks, gone);
      // Shutting down while a background repack runs stops it, and close() resolves.
      await store.delete('chunk', [...chunks.keys()][0]!);
      await store.close();
      let closed: Promise<void> | undefined;
      interrupt = async () => {
        closed = srv!.server.close();
        await new Promise((r) => setTimeout(r, 20));
      };
      now += 600_001;
      await waitFor(3);
      assert.equal(events[2]!.outcome, 'aborted');
      await closed;
    } finally {
      await srv.stop();
    }
  });
});

describe('obnam-server repack', () => {
  it('repacks beside a running serve on the same directory; the server reads on after its packs moved; selection, --json and errors', async () => {
    const tmp = await tempDir('obnam-server-repack-');
    const dir = path.join(tmp.path, 'server');
    await obnamServerOk(['init', dir]);
    const token = (await obnamServerOk(['client', 'add', 'alice', '--dir', dir])).stdout.trim();
    await obnamServerOk(['client', 'add', 'bob', '--dir', dir]);
    const fingerprint = (await obnamServerOk(['fingerprint', '--dir', dir])).stdout.trim();
    let srv = await spawnServer(dir);
    try {
      let store = await HttpStore.open({ url: srv.url, token, fingerprint });
      const chunks = await putChunks(store, 60, 20_000);
      await store.close();
      // A restart finishes the server's journal as a pack (a long-running server does so at 16 MiB).
      srv.child.kill('SIGTERM');
      await srv.exited;
      srv = await spawnServer(dir);
      store = await HttpStore.open({ url: srv.url, token, fingerprint });
      const gone = [...chunks.keys()].slice(0, 40);
      for (const id of gone) await store.delete('chunk', id);
      for (const id of gone) chunks.delete(id);
      assert.ok(Buffer.from(await store.get('chunk', [...chunks.keys()][0]!)).equals([...chunks.values()][0]!), 'the server has the namespace open');
      const ns = await namespaceDirOf(dir, 'alice');
      const before = await bytesUnder(ns);

      const dry = JSON.parse((await obnamServerOk(['repack', dir, '--client', 'alice', '--dry-run', '--json'])).stdout);
      assert.equal(dry.dryRun, true);
      assert.equal(await bytesUnder(ns), before);

      const r = await obnamServerOk(['repack', dir, '--json']);
      const report = JSON.parse(r.stdout) as { ok: boolean; namespaces: { label: string; result: RepackResult }[]; total: { bytesFreed: number } };
      assert.equal(report.ok, true);
      assert.deepEqual(report.namespaces.map((n) => n.label).sort(), ['client alice', 'client bob']);
      const alice = report.namespaces.find((n) => n.label === 'client alice')!.result;
      assert.ok(alice.packsRewritten >= 1 && alice.bytesFreed >= 40 * 20_000 * 0.95, JSON.stringify(alice));
      assert.ok(before - (await bytesUnder(ns)) >= 40 * 20_000 * 0.95);
      // The running server's view held the old pack: it finds it gone, reads the packs again and answers.
      await assertReadable(store, chunks, gone);
      await store.close();

      const text = await obnamServerOk(['repack', '--dir', dir, '--client', 'alice']);
      assert.match(text.stdout, /^client alice: rewrote 0 of \d+ packs, .* freed/m);
      assert.match(text.stdout, /^repacked 1 of 1 namespaces: 0 packs rewritten/m);
      assert.match(text.stderr, /repacking client alice \(/);

      for (const [args, msg] of [
        [['--client', 'nobody'], /no client "nobody"/],
        [['--namespace', 'nothing'], /no namespace "nothing"/],
        [['--max-unused', '150'], /--max-unused must be a percentage from 0 to 100/],
        [['--all', '--client', 'alice'], /mutually exclusive|conflict/i],
      ] as const) {
        const e = await obnamServer(['repack', dir, ...args]);
        assert.equal(e.code, 1, args.join(' '));
        assert.match(e.stderr, msg);
        assert.match(e.stderr.split('\n')[0]!, /^obnam-server: /);
      }
      const nodir = await obnamServer(['repack', path.join(tmp.path, 'none')]);
      assert.equal(nodir.code, 1);
      assert.match(nodir.stderr, /is not an obnam-server directory/);
    } finally {
      srv.child.kill('SIGTERM');
      await srv.exited;
      await tmp.remove();
    }
  });

  it('is safe beside serve: deletes and reads through the server while it runs lose nothing and bring nothing back', async () => {
    const tmp = await tempDir('obnam-server-repack-busy-');
    const dir = path.join(tmp.path, 'server');
    await obnamServerOk(['init', dir]);
    const token = (await obnamServerOk(['client', 'add', 'busy', '--dir', dir])).stdout.trim();
    const fingerprint = (await obnamServerOk(['fingerprint', '--dir', dir])).stdout.trim();
    let srv = await spawnServer(dir);
    try {
      let store = await HttpStore.open({ url: srv.url, token, fingerprint });
      const chunks = await putChunks(store, 240, 8_000);
      await store.close();
      srv.child.kill('SIGTERM');
      await srv.exited;
      srv = await spawnServer(dir);
      store = await HttpStore.open({ url: srv.url, token, fingerprint });
      const ids = [...chunks.keys()];
      const gone = new Set(ids.slice(0, 100));
      for (const id of gone) await store.delete('chunk', id);
      // While the other process runs (and repacks): more deletes, and reads of what stays, through the server.
      const pool = ids.slice(100, 200);
      const keptIds = ids.slice(200);
      const repack = obnamServerOk(['repack', dir, '--max-unused', '0', '--json']);
      let running = true;
      void repack.finally(() => (running = false)).catch(() => undefined);
      let reads = 0;
      while (running || reads < 10) {
        const next = pool.pop();
        if (next) {
          await store.delete('chunk', next);
          gone.add(next);
        }
        const keep = keptIds[reads++ % keptIds.length]!;
        assert.ok(Buffer.from(await store.get('chunk', keep)).equals(chunks.get(keep)!));
      }
      const r = JSON.parse((await repack).stdout);
      assert.ok(r.total.packsRewritten >= 1, JSON.stringify(r));
      for (const id of gone) chunks.delete(id);
      await assertReadable(store, chunks, gone);
      await store.close();
      // A fresh view, from disk alone, agrees: nothing deleted came back.
      srv.child.kill('SIGTERM');
      await srv.exited;
      srv = await spawnServer(dir);
      store = await HttpStore.open({ url: srv.url, token, fingerprint });
      await assertReadable(store, chunks, gone);
      await store.close();
    } finally {
      srv.child.kill('SIGTERM');
      await srv.exited;
      await tmp.remove();
    }
  });
});
