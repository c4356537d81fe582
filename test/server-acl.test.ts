/**
 * obnam-server named namespaces and access grants (format-spec/sharing.md
 * section 11), against the real server on loopback HTTPS: read, append and
 * full access allow exactly what they say; for a client without a grant a
 * namespace's answers are byte-identical to a missing one's (also after a
 * revoke); grants apply without a restart; a re-added client does not inherit
 * grants; the obnam client selects a namespace with --repo https://HOST:PORT/NAME.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeBatch } from '../lib/store/http-wire.js';
import { addNamespace, grantAccess, revokeAccess } from '../server/acl.js';
import { addClient } from '../server/admin.js';
import { removeClient } from '../server/clients.js';
import { serverDir } from '../server/layout.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { obnamServer, obnamServerOk, RawResponse, rawRequest, startTestServer, TestServer } from './helpers/server.js';
import { tempDir } from './helpers/tmp.js';

const ID = 'ab'.repeat(32);
const ID2 = 'cd'.repeat(32);
const BYTES = Buffer.from('an opaque object');
const sha = (b: Buffer) => createHash('sha256').update(b).digest();

let srv: TestServer;
const tokens: Record<string, string> = {};

function req(who: string, method: string, p: string, body?: Buffer, headers: Record<string, string | number> = {}): Promise<RawResponse> {
  return rawRequest(srv.url, { method, path: p, token: tokens[who], body, headers });
}
const put = (who: string, ns: string, id = ID, body = BYTES) =>
  req(who, 'PUT', `/${ns}/v1/objects/chunk/${id}`, body, { 'content-type': 'application/octet-stream', 'obnam-sha256': sha(body).toString('hex') });
const get = (who: string, ns: string, id = ID) => req(who, 'GET', `/${ns}/v1/objects/chunk/${id}`);
const del = (who: string, ns: string, id = ID) => req(who, 'DELETE', `/${ns}/v1/objects/chunk/${id}`);
const list = (who: string, ns: string) => req(who, 'GET', `/${ns}/v1/objects/chunk`);
const has = (who: string, ns: string) =>
  req(who, 'POST', `/${ns}/v1/has/chunk`, Buffer.from(JSON.stringify({ ids: [ID, ID2] })), { 'content-type': 'application/json' });
const batch = (who: string, ns: string) =>
  req(who, 'POST', `/${ns}/v1/batch/chunk`, Buffer.concat(encodeBatch([{ id: ID2, digest: sha(BYTES), data: BYTES }])), {
    'content-type': 'application/vnd.obnam.batch',
  });

/** A response as a comparable value: status, headers but Date, body bytes. */
function shape(r: RawResponse) {
  const headers = { ...r.headers };
  delete headers.date;
  return { status: r.status, headers, body: r.body.toString('latin1') };
}

before(async () => {
  srv = await startTestServer();
  for (const c of ['alice', 'bob', 'carol', 'dave']) tokens[c] = await srv.addClient(c);
  const d = serverDir(srv.dir);
  await addNamespace(d, 'family');
  await grantAccess(d, 'alice', 'family', 'full');
  await grantAccess(d, 'bob', 'family', 'append');
  await grantAccess(d, 'carol', 'family', 'read');
});
after(async () => srv?.stop());

describe('server namespace grants', () => {
  it('full access: store, read, list, has, batch and delete', async () => {
    assert.equal((await put('alice', 'family')).status, 201);
    const g = await get('alice', 'family');
    assert.equal(g.status, 200);
    assert.deepEqual(g.body, BYTES);
    assert.deepEqual(JSON.parse((await list('alice', 'family')).body.toString()).ids, [ID]);
    assert.deepEqual(JSON.parse((await has('alice', 'family')).body.toString()).exists, [true, false]);
    assert.equal((await batch('alice', 'family')).status, 200);
    assert.equal((await del('alice', 'family', ID2)).status, 204);
    assert.equal((await get('alice', 'family', ID2)).status, 404);
  });

  it('append access: reads and stores, never deletes', async () => {
    assert.equal((await get('bob', 'family')).status, 200);
    assert.equal((await list('bob', 'family')).status, 200);
    assert.equal((await has('bob', 'family')).status, 200);
    assert.equal((await put('bob', 'family', ID2)).status, 201);
    assert.equal((await put('bob', 'family', ID2)).status, 200, 'create-if-absent: nothing is overwritten');
    const d = await del('bob', 'family', ID2);
    assert.equal(d.status, 403);
    assert.match(d.body.toString(), /"code":"PERMISSION".*append access to namespace family/);
    assert.equal((await get('alice', 'family', ID2)).status, 200, 'still there');
    assert.equal((await del('alice', 'family', ID2)).status, 204);
  });

  it('read access: reads only; stores and deletes are refused and change nothing', async () => {
    assert.equal((await get('carol', 'family')).status, 200);
    assert.deepEqual(JSON.parse((await list('carol', 'family')).body.toString()).ids, [ID]);
    assert.equal((await has('carol', 'family')).status, 200);
    const fetched = await req('carol', 'POST', '/family/v1/fetch/chunk', Buffer.from(JSON.stringify({ ids: [ID] })), { 'content-type': 'application/json' });
    assert.equal(fetched.status, 200);
    for (const r of [await put('carol', 'family', ID2), await batch('carol', 'family'), await del('carol', 'family')]) {
      assert.equal(r.status, 403);
      assert.match(r.body.toString(), /read access to namespace family/);
    }
    assert.deepEqual(JSON.parse((await list('alice', 'family')).body.toString()).ids, [ID]);
  });

  it('a namespace is separate from each client’s own namespace', async () => {
    assert.equal((await rawRequest(srv.url, { path: `/v1/objects/chunk/${ID}`, token: tokens.alice })).status, 404);
    const own = Buffer.from('alice own');
    const r = await rawRequest(srv.url, {
      method: 'PUT',
      path: `/v1/objects/chunk/${ID2}`,
      token: tokens.alice,
      body: own,
      headers: { 'content-type': 'application/octet-stream', 'obnam-sha256': sha(own).toString('hex') },
    });
    assert.equal(r.status, 201);
    assert.equal((await get('alice', 'family', ID2)).status, 404);
  });

  it('without a grant, a namespace answers byte for byte like one that does not exist', async () => {
    const probes: [string, (who: string, ns: string) => Promise<RawResponse>][] = [
      ['GET object', (w, n) => get(w, n)],
      ['HEAD object', (w, n) => req(w, 'HEAD', `/${n}/v1/objects/chunk/${ID}`)],
      ['GET missing object', (w, n) => get(w, n, ID2)],
      ['GET malformed id', (w, n) => req(w, 'GET', `/${n}/v1/objects/chunk/xyz`)],
      ['GET unknown kind', (w, n) => req(w, 'GET', `/${n}/v1/objects/nonsense/${ID}`)],
      ['list', list],
      ['has', has],
      ['batch', batch],
      ['PUT', (w, n) => put(w, n, ID2)],
      ['DELETE', (w, n) => del(w, n)],
      ['unknown route', (w, n) => req(w, 'GET', `/${n}/v1/nothing-here`)],
    ];
    for (const [what, probe] of probes) {
      const missing = shape(await probe('dave', 'no-such-namespace'));
      const ungranted = shape(await probe('dave', 'family'));
      assert.deepEqual(ungranted, missing, what);
      if (what !== 'unknown route') assert.equal(missing.status, 404, what);
      // a granted client asking for a missing namespace gets the same answer too
      assert.deepEqual(shape(await probe('alice', 'no-such-namespace')), missing, `${what} (granted elsewhere)`);
    }
    assert.equal((await get('alice', 'family')).status, 200, 'nothing was stored or deleted by the probes');
    assert.equal((await get('alice', 'family', ID2)).status, 404);
  });

  it('grants and revocations apply from the next request; revoked looks like missing', async () => {
    const d = serverDir(srv.dir);
    assert.equal((await get('dave', 'family')).status, 404);
    await grantAccess(d, 'dave', 'family', 'read');
    assert.equal((await get('dave', 'family')).status, 200);
    await grantAccess(d, 'dave', 'family', 'full'); // replaces the grant
    assert.equal((await put('dave', 'family', ID2)).status, 201);
    assert.equal((await del('dave', 'family', ID2)).status, 204);
    await revokeAccess(d, 'dave', 'family');
    assert.deepEqual(shape(await get('dave', 'family')), shape(await get('dave', 'no-such-namespace')));
  });

  it('a client removed and added again under the same name has no grants', async () => {
    const d = serverDir(srv.dir);
    await addClient(d, 'erin', false).then((r) => (tokens.erin = r.token));
    await grantAccess(d, 'erin', 'family', 'full');
    assert.equal((await get('erin', 'family')).status, 200);
    await removeClient(d, 'erin');
    tokens.erin = (await addClient(d, 'erin', false)).token;
    assert.deepEqual(shape(await get('erin', 'family')), shape(await get('erin', 'no-such-namespace')));
  });
});

describe('obnam-server namespace and grant commands', () => {
  it('add, list, grant, revoke, remove; clear errors', async () => {
    const dir = srv.dir;
    assert.match((await obnamServerOk(['namespace', 'add', 'team', '--dir', dir])).stdout, /added namespace team/);
    const dup = await obnamServer(['namespace', 'add', 'team', '--dir', dir]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already a namespace named team/);
    for (const bad of ['v1', 'health', 'Team', '_x', 'a/b', 'x'.repeat(65)]) {
      const r = await obnamServer(['namespace', 'add', bad, '--dir', dir]);
      assert.equal(r.code, 1, bad);
      assert.match(r.stderr, /namespace name/);
    }
    await obnamServerOk(['grant', 'bob', 'team', '--access', 'append', '--dir', dir]);
    const bad = await obnamServer(['grant', 'bob', 'team', '--access', 'write', '--dir', dir]);
    assert.equal(bad.code, 1);
    assert.equal((await obnamServer(['grant', 'nobody', 'team', '--access', 'read', '--dir', dir])).code, 1);
    assert.equal((await obnamServer(['grant', 'bob', 'nothing', '--access', 'read', '--dir', dir])).code, 1);
    const listed = JSON.parse((await obnamServerOk(['namespace', 'list', '--json', '--dir', dir])).stdout);
    const team = listed.find((n: { name: string }) => n.name === 'team');
    assert.deepEqual(team.grants, [{ client: 'bob', access: 'append' }]);
    assert.equal((await put('bob', 'team')).status, 201);
    await obnamServerOk(['revoke', 'bob', 'team', '--dir', dir]);
    assert.equal((await get('bob', 'team')).status, 404);
    assert.equal((await obnamServer(['revoke', 'bob', 'team', '--dir', dir])).code, 1);
    const removed = await obnamServerOk(['namespace', 'remove', 'team', '--dir', dir]);
    assert.match(removed.stdout, /its objects remain in /);
    await fs.access(/remain in (\S+) /.exec(removed.stdout)![1]!);
  });
});

describe('obnam --repo https://HOST:PORT/NAMESPACE', () => {
  it('alice backs up into the namespace, carol (read) restores, dave (no grant) sees no repository', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      await fs.mkdir(src);
      await fs.writeFile(path.join(src, 'hello.txt'), 'shared hello\n');
      const repo = `${srv.url}/family-repo`;
      await addNamespace(serverDir(srv.dir), 'family-repo');
      await grantAccess(serverDir(srv.dir), 'alice', 'family-repo', 'full');
      await grantAccess(serverDir(srv.dir), 'carol', 'family-repo', 'read');
      const env = (who: string) => ({
        env: { OBNAM_REPO: repo, OBNAM_TOKEN: tokens[who], OBNAM_SERVER_FINGERPRINT: srv.fingerprint, OBNAM_PASSPHRASE: 'family passphrase' },
      });
      await obnamOk(['init'], env('alice'));
      await obnamOk(['backup', src], env('alice'));
      const target = path.join(tmp.path, 'restored');
      await obnamOk(['restore', 'latest', target], env('carol'));
      assert.equal(await fs.readFile(path.join(target, src, 'hello.txt'), 'utf8'), 'shared hello\n');
      const refused = await obnam(['backup', src], env('carol'));
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /read access to namespace family-repo/);
      const own = await obnam(['list'], { env: { ...env('alice').env, OBNAM_REPO: srv.url } });
      assert.equal(own.code, 1, 'alice’s own namespace holds no repository');
      const dave = await obnam(['list'], env('dave'));
      const nowhere = await obnam(['list'], { env: { ...env('dave').env, OBNAM_REPO: `${srv.url}/nowhere` } });
      assert.equal(dave.code, 1);
      assert.equal(dave.stderr.replaceAll('family-repo', 'X'), nowhere.stderr.replaceAll('nowhere', 'X'));
    } finally {
      await tmp.remove();
    }
  });
});
