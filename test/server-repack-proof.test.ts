/**
 * Space comes back on obnam-server (issue 9, format-spec 14.8), through the
 * real command lines against real server processes on 127.0.0.1 over HTTPS,
 * on local storage and on S3 storage (s3rver): forget one of three snapshots,
 * prune, and the namespace's size (bytes on disk; the sum of object sizes in
 * the bucket) drops by nearly what only that snapshot held, while the other
 * two restore byte for byte and fsck passes. Also: an append-only client
 * backs up while a full client prunes (and repacks) the same namespace, and
 * may neither prune nor repack; and a server answers `has` from a fresh view
 * after a refresh, when another server deleted the object.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ObnamError } from '../lib/errors.js';
import { HttpStore } from '../lib/store/http.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { prngBytes } from './helpers/prng.js';
import { startS3, S3_KEY, TestS3 } from './helpers/s3.js';
import { bytesUnder, namespaceDirOf, obnamServerOk, ServerProcess, spawnServer } from './helpers/server.js';
import { tempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/trees.js';

const AWS = { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_KEY };
const UNIQUE = 900_000;

interface Setup {
  dir: string;
  fingerprint: string;
  aws: Record<string, string>;
  /** The namespace's stored bytes. */
  size(storage: string): Promise<number>;
  stop(): Promise<void>;
}

async function localSetup(root: string): Promise<Setup> {
  const dir = path.join(root, 'server');
  const init = await obnamServerOk(['init', dir]);
  return {
    dir,
    fingerprint: /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!,
    aws: {},
    size: (storage) => bytesUnder(path.join(dir, 'data', storage)),
    stop: async () => undefined,
  };
}

async function s3Setup(root: string): Promise<Setup> {
  const s3: TestS3 = await startS3();
  const dir = path.join(root, 'server');
  const init = await obnamServerOk(['init', dir, '--storage', `s3://${s3.bucket}/obnam`, '--s3-endpoint', s3.endpoint], { env: AWS });
  return {
    dir,
    fingerprint: /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!,
    aws: AWS,
    size: async (storage) => {
      let n = 0;
      for await (const b of s3.backend(`obnam/data/${storage}`).list('')) n += b.size;
      return n;
    },
    stop: () => s3.stop(),
  };
}

async function storageOf(dir: string, client: string): Promise<string> {
  return path.basename(await namespaceDirOf(dir, client));
}

for (const [kind, setup] of [
  ['local', localSetup],
  ['S3', s3Setup],
] as const) {
  describe(`obnam prune against obnam-server on ${kind} storage`, () => {
    it('forget one of three snapshots, prune: the namespace shrinks by nearly what only it held; the others restore byte for byte; fsck passes', async () => {
      const tmp = await tempDir('obnam-repack-proof-');
      const s = await setup(tmp.path);
      let srv: ServerProcess | undefined;
      try {
        const token = (await obnamServerOk(['client', 'add', 'alice', '--dir', s.dir], { env: s.aws })).stdout.trim();
        srv = await spawnServer(s.dir, '127.0.0.1:0', [], s.aws);
        const env = { env: { OBNAM_REPO: srv.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: s.fingerprint, OBNAM_PASSPHRASE: 'proof', HOME: tmp.path } };
        await obnamOk(['init'], env);
        const src = path.join(tmp.path, 'src');
        fs.mkdirSync(src);
        fs.writeFileSync(path.join(src, 'common.bin'), prngBytes('common', 600_000));
        const copies: string[] = [];
        for (let i = 0; i < 3; i++) {
          fs.writeFileSync(path.join(src, 'own.bin'), prngBytes(`own ${i}`, UNIQUE));
          await obnamOk(['backup', src], env);
          const copy = path.join(tmp.path, `copy${i}`);
          fs.cpSync(src, copy, { recursive: true });
          copies.push(copy);
        }
        const snaps = (JSON.parse((await obnamOk(['list', '--json'], env)).stdout) as { id: string }[]).map((x) => x.id);
        const storage = await storageOf(s.dir, 'alice');
        const before = await s.size(storage);
        await obnamOk(['forget', snaps[1]!], env);
        const report = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], env)).stdout);
        assert.equal(report.repack.done, true, JSON.stringify(report.repack));
        assert.ok(report.repack.packsRemoved >= 1, JSON.stringify(report.repack));
        const after = await s.size(storage);
        const drop = before - after;
        assert.ok(drop >= UNIQUE * 0.9, `size ${before} -> ${after}: dropped ${drop}, the forgotten snapshot alone held about ${UNIQUE}`);
        assert.ok(drop <= UNIQUE * 1.1 + 100_000, `dropped ${drop}: more than the forgotten snapshot held`);
        assert.ok(Math.abs(report.repack.bytesFreed - drop) <= 200_000, `reported ${report.repack.bytesFreed} freed, measured ${drop}`);
        for (const [i, snap] of [[0, snaps[0]!], [2, snaps[2]!]] as const) {
          const target = path.join(tmp.path, `restored${i}`);
          await obnamOk(['restore', snap, target], env);
          fs.renameSync(path.join(target, src), path.join(target, 'got'));
          fs.renameSync(copies[i]!, path.join(tmp.path, 'want'));
          await assertSameTree(path.join(tmp.path, 'want'), path.join(target, 'got'));
          fs.rmSync(path.join(tmp.path, 'want'), { recursive: true });
        }
        await obnamOk(['fsck'], env);
        // After a restart (a fresh view of the moved packs), everything is still there.
        srv.child.kill('SIGTERM');
        await srv.exited;
        srv = await spawnServer(s.dir, '127.0.0.1:0', [], s.aws);
        await obnamOk(['fsck'], { env: { ...env.env, OBNAM_REPO: srv.url } });
      } finally {
        if (srv && srv.child.exitCode === null) srv.child.kill('SIGTERM');
        await srv?.exited;
        await s.stop();
        await tmp.remove();
      }
    });
  });
}

describe('a shared namespace on obnam-server', () => {
  it('an append-only client backs up while a full client prunes and repacks; it can neither prune nor repack (exit 1, clear error)', async () => {
    const tmp = await tempDir('obnam-repack-shared-');
    const s = await localSetup(tmp.path);
    let srv: ServerProcess | undefined;
    try {
      const o = { env: s.aws };
      const alice = (await obnamServerOk(['client', 'add', 'alice', '--dir', s.dir], o)).stdout.trim();
      const bob = (await obnamServerOk(['client', 'add', 'bob', '--dir', s.dir], o)).stdout.trim();
      await obnamServerOk(['namespace', 'add', 'family', '--dir', s.dir], o);
      await obnamServerOk(['grant', 'alice', 'family', '--access', 'full', '--dir', s.dir], o);
      await obnamServerOk(['grant', 'bob', 'family', '--access', 'append', '--dir', s.dir], o);
      srv = await spawnServer(s.dir);
      const env = (token: string) => ({
        env: { OBNAM_REPO: `${srv!.url}/family`, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: s.fingerprint, OBNAM_PASSPHRASE: 'shared', HOME: tmp.path },
      });
      await obnamOk(['init'], env(alice));
      const a = path.join(tmp.path, 'a');
      fs.mkdirSync(a);
      fs.writeFileSync(path.join(a, 'one.bin'), prngBytes('alice one', 700_000));
      await obnamOk(['backup', a], env(alice));
      fs.writeFileSync(path.join(a, 'one.bin'), prngBytes('alice two', 700_000));
      await obnamOk(['backup', a], env(alice));
      const first = (JSON.parse((await obnamOk(['list', '--json'], env(alice))).stdout) as { id: string }[])[0]!.id;
      await obnamOk(['forget', first], env(alice));
      // Deleted, not yet repacked (nothing else writes yet, so --exclusive is right here).
      const swept = JSON.parse((await obnamOk(['prune', '--exclusive', '--max-unused', '100', '--json'], env(alice))).stdout);
      assert.ok(swept.deleted.chunks > 0 && swept.repack.packsRemoved === 0, JSON.stringify(swept));

      const b = path.join(tmp.path, 'b');
      fs.mkdirSync(b);
      for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(b, `f${i}`), prngBytes(`bob ${i}`, 40_000));
      // Bob backs up while Alice prunes (a normal prune: marks, and repacks what the sweep deleted).
      const [backup, prune] = await Promise.all([obnam(['backup', b], env(bob)), obnam(['prune', '--max-unused', '0', '--json'], env(alice))]);
      assert.equal(backup.code, 0, backup.stderr);
      assert.equal(prune.code, 0, prune.stderr);
      const pr = JSON.parse(prune.stdout);
      assert.ok(pr.repack.done && pr.repack.packsRemoved >= 1, JSON.stringify(pr.repack));

      const denied = await obnam(['prune'], env(bob));
      assert.equal(denied.code, 1);
      const lines = denied.stderr.trim().split('\n');
      assert.equal(lines.length, 1, denied.stderr);
      assert.match(lines[0]!, /^obnam: prune needs a client allowed to delete/);
      const store = await HttpStore.open({ url: `${srv.url}/family`, token: bob, fingerprint: s.fingerprint });
      try {
        await store.repack({ maxUnusedPercent: 0 });
        assert.fail('an append-only client repacked');
      } catch (e) {
        assert.ok(e instanceof ObnamError && e.code === 'PERMISSION', String(e));
      } finally {
        await store.close();
      }

      await obnamOk(['fsck'], env(alice));
      const snaps = JSON.parse((await obnamOk(['list', '--json'], env(bob))).stdout) as { id: string; paths: string[] }[];
      const bobs = snaps.find((x) => x.paths.includes(b))!;
      const target = path.join(tmp.path, 'restored');
      await obnamOk(['restore', bobs.id, target], env(bob));
      await assertSameTree(b, path.join(target, b));
      const target2 = path.join(tmp.path, 'restored-a');
      await obnamOk(['restore', snaps.find((x) => x.paths.includes(a))!.id, target2], env(alice));
      assert.ok(fs.readFileSync(path.join(target2, a, 'one.bin')).equals(prngBytes('alice two', 700_000)));
    } finally {
      if (srv && srv.child.exitCode === null) srv.child.kill('SIGTERM');
      await srv?.exited;
      await tmp.remove();
    }
  });
});

describe('format-spec 14.8 on obnam-server', () => {
  it('after a refresh, a server answers has() from a fresh view: an object another server deleted is absent', async () => {
    const tmp = await tempDir('obnam-refresh-');
    const s = await s3Setup(tmp.path);
    const servers: ServerProcess[] = [];
    try {
      const token = (await obnamServerOk(['client', 'add', 'c', '--dir', s.dir], { env: s.aws })).stdout.trim();
      for (let i = 0; i < 2; i++) servers.push(await spawnServer(s.dir, '127.0.0.1:0', [], s.aws));
      const [viaA, viaB] = await Promise.all(servers.map((x) => HttpStore.open({ url: x.url, token, fingerprint: s.fingerprint })));
      try {
        const id = randomBytes(32).toString('hex');
        await viaA!.put('chunk', id, randomBytes(1000));
        await viaB!.refresh();
        assert.equal(await viaB!.has('chunk', id), true);
        await viaA!.delete('chunk', id);
        // B's view predates the delete (it may still say "present": harmless for a backup's dedup)...
        await viaB!.refresh();
        // ...but not after a refresh (what a backup's B4 check and a collector's sweep rely on).
        assert.deepEqual(await viaB!.hasMany('chunk', [id]), [false]);
        const listed: string[] = [];
        for await (const x of viaB!.list('chunk')) listed.push(x);
        assert.ok(!listed.includes(id));
      } finally {
        await Promise.all([viaA!.close(), viaB!.close()]);
      }
    } finally {
      for (const x of servers) x.child.kill('SIGTERM');
      for (const x of servers) await x.exited;
      await s.stop();
      await tmp.remove();
    }
  });
});
