/**
 * obnam-server keeping its namespaces in an S3-compatible bucket (s3rver on
 * 127.0.0.1), through both command lines: init --storage s3://..., client
 * add, then backup / restore / fsck / scrub end to end; isolation and
 * append-only as on local storage; and two server processes over one bucket
 * serving the same clients (format-spec/server-api.md, section "Storage").
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ObnamError } from '../lib/errors.js';
import { HttpStore } from '../lib/store/http.js';
import { S3_MAX_STALE_MS } from '../server/storage-s3.js';
import { obnamOk } from './helpers/cli.js';
import { startS3, S3_KEY, TestS3 } from './helpers/s3.js';
import { obnamServer, obnamServerOk, ServerProcess, spawnServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree, makeTree } from './helpers/trees.js';

const AWS = { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_KEY };
const newId = () => randomBytes(32).toString('hex');

let s3: TestS3;
let tmp: TempDir;
let dir: string;
let fingerprint: string;
let a: ServerProcess;
let b: ServerProcess;

before(async () => {
  s3 = await startS3();
  tmp = await tempDir('obnam-server-s3-');
  dir = path.join(tmp.path, 'server');
  const init = await obnamServerOk(['init', dir, '--storage', `s3://${s3.bucket}/obnam`, '--s3-endpoint', s3.endpoint], { env: AWS });
  fingerprint = /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!;
  // Two servers over one bucket and one server directory, as behind a load balancer.
  a = await spawnServer(dir, '127.0.0.1:0', [], AWS);
  b = await spawnServer(dir, '127.0.0.1:0', [], AWS);
});

after(async () => {
  for (const s of [a, b]) {
    if (s && s.child.exitCode === null) s.child.kill('SIGTERM');
    await s?.exited;
  }
  await tmp?.remove();
  await s3?.stop();
});

async function addClient(name: string, ...flags: string[]): Promise<string> {
  return (await obnamServerOk(['client', 'add', name, '--dir', dir, ...flags], { env: AWS })).stdout.trim();
}

const env = (server: ServerProcess, token: string) => ({
  env: { OBNAM_REPO: server.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: 'correct horse' },
});

const httpStore = (server: ServerProcess, token: string) => HttpStore.open({ url: server.url, token, fingerprint });

describe('obnam-server on S3 storage', () => {
  it('init refuses bad storage arguments with one clear line', async () => {
    const bad = await obnamServer(['init', path.join(tmp.path, 'x'), '--storage', 's3://B/p', '--s3-endpoint', s3.endpoint]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /expected s3:\/\/BUCKET\/PREFIX/);
    const noEndpoint = await obnamServer(['init', path.join(tmp.path, 'y'), '--storage', `s3://${s3.bucket}/p`]);
    assert.equal(noEndpoint.code, 1);
    assert.match(noEndpoint.stderr, /needs --s3-endpoint/);
    const noBucket = await obnamServer(['init', path.join(tmp.path, 'z'), '--storage', 's3://no-such-bucket/p', '--s3-endpoint', s3.endpoint], { env: AWS });
    assert.equal(noBucket.code, 1);
    assert.equal(noBucket.stderr.trim().split('\n').length, 1, noBucket.stderr);
    assert.match(noBucket.stderr, /cannot use s3:\/\/no-such-bucket.*NoSuchBucket/);
    const localWithS3 = await obnamServer(['init', path.join(tmp.path, 'w'), '--storage', 'local', '--s3-region', 'eu-central-1']);
    assert.equal(localWithS3.code, 1);
    assert.match(localWithS3.stderr, /--s3-endpoint and --s3-region go with --storage s3:\/\/BUCKET\/PREFIX/);
    // --storage local is the default, spelled out.
    await obnamServerOk(['init', path.join(tmp.path, 'v'), '--storage', 'local']);
    assert.match(await fs.readFile(path.join(tmp.path, 'v', 'obnam-server.yaml'), 'utf8'), /^storage: local$/m);
  });

  it('credentials from the config file (storage.access_key_id, storage.secret_access_key) serve without AWS_* in the environment; with neither, one clear line', async () => {
    const noAws = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined };
    const cfgDir = path.join(tmp.path, 'server-config-credentials');
    const init = await obnamServerOk(['init', cfgDir, '--storage', `s3://${s3.bucket}/by-config`, '--s3-endpoint', s3.endpoint, '--s3-region', 'eu-central-1'], {
      env: noAws,
    });
    assert.match(init.stderr, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set: the bucket was not checked/);
    const refused = await obnamServer(['client', 'add', 'c', '--dir', cfgDir], { env: noAws });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /S3 storage needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or storage.access_key_id and storage.secret_access_key/);
    // The storage block ends the config init wrote: the credentials go below it.
    const config = path.join(cfgDir, 'obnam-server.yaml');
    const text = await fs.readFile(config, 'utf8');
    assert.match(text, /storage:\n  type: s3\n[\s\S]*  region: "eu-central-1"\n[\s\S]*# credentials: [^\n]*\n$/);
    await fs.writeFile(config, `${text}  access_key_id: ${JSON.stringify(S3_KEY)}\n  secret_access_key: ${JSON.stringify(S3_KEY)}\n`);
    const token = (await obnamServerOk(['client', 'add', 'c', '--dir', cfgDir], { env: noAws })).stdout.trim();
    const server = await spawnServer(cfgDir, '127.0.0.1:0', [], noAws);
    try {
      const fp = /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!;
      const store = await HttpStore.open({ url: server.url, token, fingerprint: fp });
      try {
        const id = newId();
        await store.put('chunk', id, Buffer.from('via config credentials'));
        assert.equal(Buffer.from(await store.get('chunk', id)).toString(), 'via config credentials');
      } finally {
        await store.close();
      }
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    // It is in the bucket, under the prefix init was given.
    let blobs = 0;
    for await (const x of s3.backend('by-config').list('data/')) if (x.name.includes('/packs/')) blobs++;
    assert.ok(blobs > 0, 'a pack under by-config/data/');
  });

  it('backup through one server; list, restore and fsck through the other; scrub finds damage in the bucket', async () => {
    const token = await addClient('laptop');
    const src = path.join(tmp.path, 'src');
    await makeTree(src, 's3-laptop', { bigBytes: 2_000_000 });
    await obnamOk(['init'], env(a, token));
    const first = JSON.parse((await obnamOk(['backup', src, '--json'], env(a, token))).stdout) as { snapshot: string };
    const list = JSON.parse((await obnamOk(['list', '--json'], env(b, token))).stdout) as { id: string }[];
    assert.deepEqual(
      list.map((s) => s.id),
      [first.snapshot],
    );
    const target = path.join(tmp.path, 'restored');
    await obnamOk(['restore', 'latest', target], env(b, token));
    await assertSameTree(src, path.join(target, src));
    assert.match((await obnamOk(['fsck'], env(b, token))).stdout, /no problems found/);

    const clean = await obnamServerOk(['scrub', '--dir', dir, '--client', 'laptop'], { env: AWS });
    assert.match(clean.stdout, /no damage found/);
    // Flip a byte in the middle of the biggest pack, in the bucket.
    const clients = JSON.parse((await obnamServerOk(['client', 'list', '--dir', dir, '--json'], { env: AWS })).stdout) as { name: string; storage: string }[];
    const ns = /data\/([0-9a-f]{32})$/.exec(clients.find((c) => c.name === 'laptop')!.storage)![1]!;
    const blobs = s3.backend(`obnam/data/${ns}`);
    let biggest = { name: '', size: 0 };
    for await (const x of blobs.list('packs/')) if (x.size > biggest.size) biggest = x;
    const bytes = await blobs.get(biggest.name);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x10;
    await blobs.delete(biggest.name);
    await blobs.put(biggest.name, bytes);
    const damaged = await obnamServer(['scrub', '--dir', dir, '--client', 'laptop'], { env: AWS });
    assert.equal(damaged.code, 1);
    assert.match(damaged.stdout, new RegExp(`damaged: client laptop .*${biggest.name}`));
  });

  it('isolation and append-only hold as on local storage', async () => {
    const alice = await addClient('alice');
    const bob = await addClient('bob');
    const appender = await addClient('appender', '--append-only');
    const sa = await httpStore(a, alice);
    const sb = await httpStore(b, bob);
    const sc = await httpStore(a, appender);
    try {
      const id = newId();
      await sa.put('snapshot', id, Buffer.from('alice only'));
      const chunk = newId();
      await sa.put('chunk', chunk, Buffer.from('alice chunk'));
      assert.equal(await sb.has('snapshot', id), false);
      await assert.rejects(sb.get('chunk', chunk), (e: unknown) => e instanceof ObnamError && e.code === 'NOT_FOUND');
      const bobSees: string[] = [];
      for await (const x of sb.list('chunk')) bobSees.push(x);
      assert.deepEqual(bobSees, []);
      const mine = newId();
      await sc.put('chunk', mine, Buffer.from('kept'));
      await assert.rejects(sc.delete('chunk', mine), (e: unknown) => e instanceof ObnamError && e.code === 'PERMISSION');
    } finally {
      await Promise.all([sa.close(), sb.close(), sc.close()]);
    }
  });

  it(`an object stored through one server is visible through the other: get and listing at once, "exists" within ${S3_MAX_STALE_MS} ms`, async () => {
    const token = await addClient('balanced');
    const viaA = await httpStore(a, token);
    const viaB = await httpStore(b, token);
    try {
      // B opens the namespace first, so its index predates the upload.
      assert.deepEqual(await viaB.hasMany('chunk', [newId()]), [false]);
      for (let round = 0; round < 3; round++) {
        const id = newId();
        const data = randomBytes(5000);
        await viaA.put('chunk', id, data);
        const acked = Date.now();
        assert.ok(Buffer.from(await viaB.get('chunk', id)).equals(data), 'get through the other server');
        const listed: string[] = [];
        for await (const x of viaB.list('chunk')) listed.push(x);
        assert.ok(listed.includes(id), 'listed by the other server');
        // "Exists" may lag by up to the stated bound (a false answer only costs a duplicate upload).
        const other = newId();
        await viaA.put('tree', other, Buffer.from('t'));
        const treeAcked = Date.now();
        while (!(await viaB.hasMany('tree', [other]))[0]) {
          assert.ok(Date.now() - treeAcked <= S3_MAX_STALE_MS + 1000, `tree visible to has() within ${S3_MAX_STALE_MS} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
        void acked;
      }
    } finally {
      await Promise.all([viaA.close(), viaB.close()]);
    }
  });
});
