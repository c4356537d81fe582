/**
 * obnam share / unshare, obnam list's owners and shares, standing grants at
 * backup time and forget's permission rule, through the real CLI
 * (format-spec/sharing.md 9 and 10), on a local repository and on the real
 * obnam-server over HTTPS: a share gives exactly its snapshots to exactly its
 * grantee (restored byte for byte); only the owner shares; a standing grant
 * covers the snapshots made after it and its withdrawal the next ones; a
 * removed member gets nothing new; unshare SNAPSHOT deletes the share;
 * members without --can-delete cannot forget others' snapshots (exit 1) and
 * their policies touch only their own.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadIdentity } from '../lib/crypto/identity.js';
import { encodeCbor } from '../lib/format/cbor.js';
import { makeShareObject, newShareId } from '../lib/format/share.js';
import { Repository } from '../lib/repo/repository.js';
import { openStore } from '../lib/store/open.js';
import type { StoreSpec } from '../lib/store/store.js';
import { backupAs, ListedSnapshot, Member, makeMember, readableIds } from './helpers/family.js';
import { obnamServerOk, startTestServer, TestServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/tree.js';

const HOST = os.hostname();
const NOT_SHARED = /is not shared with you/;

interface Listed extends ListedSnapshot {
  short_id: string;
  owner_key?: string;
}

async function fails(m: Member, args: string[], message: RegExp): Promise<void> {
  const r = await m.run(args);
  assert.equal(r.code, 1, `${m.name}: obnam ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, message, `${m.name}: obnam ${args.join(' ')}`);
  assert.doesNotMatch(r.stderr, /internal error/);
}

interface Setup {
  root: string;
  repo: string;
  env: (name: string) => Record<string, string> | undefined;
  /** How a member reaches the store through the library. */
  spec: (name: string) => StoreSpec;
}

function sharingRules(setup: () => Promise<Setup>) {
  let spec: Setup['spec'];
  let root: string;
  let alice: Member;
  let bob: Member;
  let carol: Member;
  let docs: string;
  const snap: Record<string, string> = {};
  const list = (m: Member) => m.json<Listed[]>(['list']);
  const row = async (m: Member, id: string) => (await list(m)).find((r) => r.id === id);
  const restoresSame = async (m: Member, id: string) => {
    const out = fs.mkdtempSync(path.join(root, `restore-${m.name}-`));
    await m.ok(['restore', id, out]);
    assertSameTree(docs, path.join(out, docs));
  };

  before(async () => {
    const s = await setup();
    root = s.root;
    spec = s.spec;
    [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => makeMember(root, n, { repo: s.repo, env: s.env(n) })));
    docs = path.join(alice.home, 'docs');
    fs.mkdirSync(docs, { recursive: true });
    fs.writeFileSync(path.join(docs, 'letter.txt'), 'dear bob\n'.repeat(1000));
    fs.writeFileSync(path.join(docs, 'data.bin'), Buffer.alloc(300_000, 7));
    await alice.ok(['init', '--shared', '--name', 'alice']);
    await alice.ok(['member', 'add', bob.publicKey, '--name', 'bob']);
    await alice.ok(['member', 'add', carol.publicKey, '--name', 'carol']);
    snap.a1 = await backupAs(alice, [docs]);
    snap.a2 = await backupAs(alice, [docs], ['--force']);
    const bobDir = path.join(bob.home, 'notes');
    fs.mkdirSync(bobDir, { recursive: true });
    fs.writeFileSync(path.join(bobDir, 'n.txt'), 'bob\n');
    snap.b1 = await backupAs(bob, [bobDir]);
  });

  it('share SNAPSHOT --with: the grantee lists and restores it, the others do not', async () => {
    await alice.ok(['share', snap.a1!, '--with', 'bob']);
    const seen = await row(bob, snap.a1!);
    assert.equal(seen?.owner, 'alice');
    assert.equal(seen?.owner_key, alice.publicKey);
    assert.equal(seen?.readable, true);
    assert.deepEqual(seen?.shared_with, [], 'with whom is said to the owner only');
    await restoresSame(bob, snap.a1!);
    assert.equal(await row(bob, snap.a2!), undefined, 'bob (no --can-delete) does not see what is not shared with him');
    await fails(bob, ['restore', snap.a2!, path.join(root, 'nope')], NOT_SHARED);
    await fails(carol, ['restore', snap.a1!, path.join(root, 'nope')], NOT_SHARED);
    assert.deepEqual((await row(alice, snap.a1!))?.shared_with, ['bob']);
    assert.deepEqual((await row(alice, snap.a2!))?.shared_with, []);
    assert.match((await alice.ok(['list'])).stdout, new RegExp(`${snap.a1!.slice(0, 8)} .* alice +bob `));
  });

  it('a member with --can-delete sees the snapshots she cannot read, marked so', async () => {
    const b = await row(alice, snap.b1!);
    assert.deepEqual({ owner: b?.owner, readable: b?.readable, hostname: b?.hostname }, { owner: 'bob', readable: false, hostname: HOST });
    assert.match((await alice.ok(['list'])).stdout, new RegExp(`${snap.b1!.slice(0, 8)} .* bob .*\\(not shared with you\\)`));
    await fails(alice, ['restore', snap.b1!, path.join(root, 'nope')], NOT_SHARED);
  });

  it('only the owner shares; bad requests are refused', async () => {
    await fails(bob, ['share', snap.a1!, '--with', 'carol'], /only its owner can share it/);
    await fails(alice, ['share', snap.a1!, '--with', 'alice'], /is you/);
    await fails(alice, ['share', snap.a1!, '--with', 'nobody'], /no member named "nobody"/);
    await fails(alice, ['share', '--with', 'bob'], /name the snapshots, or a host/);
    await fails(alice, ['share', snap.a1!, '--host', HOST, '--with', 'bob'], /not both/);
    await fails(alice, ['share', snap.a1!], /with/);
    await fails(carol, ['list', '--identity-file', path.join(root, 'missing')], /no identity at/);
  });

  it('a standing grant covers the snapshots made after it; unshare --host stops the next ones', async () => {
    await alice.ok(['share', '--host', HOST, '--with', 'carol']);
    assert.match((await alice.ok(['share', '--host', HOST, '--with', 'carol'])).stdout, /already has a standing grant/);
    snap.a3 = await backupAs(alice, [docs], ['--force']);
    await restoresSame(carol, snap.a3!);
    assert.deepEqual(await readableIds(carol), [snap.a3!]);
    assert.deepEqual((await row(alice, snap.a3!))?.shared_with, ['carol']);
    await alice.ok(['unshare', '--host', HOST, '--with', 'carol']);
    await fails(alice, ['unshare', '--host', HOST, '--with', 'carol'], /no standing grant/);
    snap.a4 = await backupAs(alice, [docs], ['--force']);
    assert.deepEqual(await readableIds(carol), [snap.a3!], 'a3 stays readable to carol, a4 is not hers');
    assert.deepEqual((await row(alice, snap.a4!))?.shared_with, []);
    // Granted again, and carol is then removed: a removed member gets nothing new.
    await alice.ok(['share', '--host', HOST, '--with', 'carol']);
    snap.a5 = await backupAs(alice, [docs], ['--force']);
    assert.deepEqual((await row(alice, snap.a5!))?.shared_with, ['carol']);
    await alice.ok(['member', 'remove', 'carol']);
    snap.a6 = await backupAs(alice, [docs], ['--force']);
    assert.deepEqual((await row(alice, snap.a6!))?.shared_with, []);
    await alice.ok(['member', 'add', carol.publicKey, '--name', 'carol']);
    assert.deepEqual(await readableIds(carol), [snap.a3!, snap.a5!].sort());
    await alice.ok(['unshare', '--host', HOST, '--with', 'carol']);
    await fails(alice, ['unshare', snap.a3!, '--with', 'carol'], /made readable to carol when made \(a standing grant\), which cannot be undone/);
  });

  it('a share of alice’s snapshot made by another member (carol, a recipient) is not accepted', async () => {
    // carol can read a3 (the standing grant) and writes, with the library, a share giving it to bob as hers.
    const identity = await loadIdentity(path.join(carol.env.XDG_CONFIG_HOME!, 'obnam', 'identity'), carol.env.OBNAM_PASSPHRASE!);
    const repo = await Repository.openShared(await openStore(spec('carol')), identity);
    try {
      const bobInfo = (await repo.listMembers()).find((m) => m.name === 'bob')!;
      const id = newShareId();
      const key = await repo.snapshotKey(snap.a3!);
      await repo.putRecord('share', id, makeShareObject(id, identity, { publicKey: bobInfo.publicKey, name: 'bob' }, [{ id: snap.a3!, key }]));
      await fails(bob, ['restore', snap.a3!, path.join(root, 'nope')], NOT_SHARED);
      assert.equal((await readableIds(bob)).includes(snap.a3!), false);
      await repo.deleteRecord('share', id);
    } finally {
      await repo.close();
    }
  });

  it('malformed share and grant objects written by a member are passed over with a warning', async () => {
    const identity = await loadIdentity(path.join(carol.env.XDG_CONFIG_HOME!, 'obnam', 'identity'), carol.env.OBNAM_PASSPHRASE!);
    const repo = await Repository.openShared(await openStore(spec('carol')), identity);
    const shareId = newShareId();
    const grantId = newShareId();
    try {
      await repo.putRecord('share', shareId, encodeCbor({ owner: alice.publicKey, recipients: 'none', body: new Uint8Array(3) }));
      await repo.putRecord('grant', grantId, new Uint8Array([0xff, 0x00, 0x13]));
      for (const m of [alice, bob]) {
        const r = await m.ok(['list']);
        assert.match(r.stderr, new RegExp(`passing over damaged share object ${shareId}`), m.name);
      }
      const b = await alice.ok(['backup', '--json', docs]);
      assert.match(b.stderr, new RegExp(`passing over damaged grant object ${grantId}`));
      await alice.ok(['forget', JSON.parse(b.stdout).snapshot]);
    } finally {
      await repo.deleteRecord('share', shareId);
      await repo.deleteRecord('grant', grantId);
      await repo.close();
    }
  });

  it('unshare SNAPSHOT --with deletes the share: the snapshot is no longer readable to the grantee', async () => {
    await alice.ok(['share', snap.a2!, snap.a4!, '--with', 'bob']);
    assert.deepEqual(await readableIds(bob), [snap.a1!, snap.a2!, snap.a4!, snap.b1!].sort());
    await alice.ok(['unshare', snap.a2!, '--with', 'bob']);
    assert.deepEqual(await readableIds(bob), [snap.a1!, snap.a4!, snap.b1!].sort(), 'a4, in the same share, stays shared');
    assert.deepEqual((await row(alice, snap.a4!))?.shared_with, ['bob']);
    await fails(alice, ['unshare', snap.a2!, '--with', 'bob'], /none of these snapshots is shared with bob/);
  });

  it('forget: others’ snapshots need --can-delete; policies of other members touch only their own', async () => {
    await fails(bob, ['forget', snap.a1!], /needs a member with --can-delete, and bob is not one/);
    assert.ok(await row(alice, snap.a1!), 'still there');
    const b2 = await backupAs(bob, [path.join(bob.home, 'notes')], ['--force']);
    // a1 and a4, alice's and readable to bob, are one group (host, paths): without the rule keep-last 1 would remove a1.
    const policy = JSON.parse((await bob.ok(['--json', 'forget', '--keep-last', '1', '--dry-run'])).stdout);
    const removable = policy.groups.flatMap((g: { remove: { id: string }[] }) => g.remove.map((r) => r.id));
    const considered = policy.groups.flatMap((g: { keep: { id: string }[]; remove: { id: string }[] }) => [...g.keep, ...g.remove].map((r) => r.id));
    assert.deepEqual(removable, [snap.b1!], "bob's policy considers only his own snapshots");
    assert.deepEqual(considered.sort(), [snap.b1!, b2].sort());
    await bob.ok(['forget', b2]);
    await fails(bob, ['forget', snap.a2!], /a2|another member's: forgetting other members' snapshots needs a member with --can-delete/);
    // alice (--can-delete) forgets bob's snapshot, which she cannot read, by its id.
    assert.equal((await row(alice, snap.b1!))?.readable, false);
    const gone = JSON.parse((await alice.ok(['--json', 'forget', snap.b1!.slice(0, 10)])).stdout);
    assert.deepEqual(gone.removed, [snap.b1!]);
    assert.equal(await row(alice, snap.b1!), undefined);
    assert.equal((await readableIds(bob)).includes(snap.b1!), false);
    await alice.ok(['share', snap.a6!, '--with', 'bob']);
    // alice (--can-delete) forgets a snapshot of hers shared with bob; bob's list loses it.
    await alice.ok(['forget', snap.a6!]);
    assert.equal((await readableIds(bob)).includes(snap.a6!), false);
  });
}

describe('sharing through the CLI on a local repository', () => {
  let tmp: TempDir;
  after(async () => tmp?.remove());
  sharingRules(async () => {
    tmp = await tempDir('obnam-share-');
    const dir = path.join(tmp.path, 'repo');
    return { root: tmp.path, repo: dir, env: () => undefined, spec: () => ({ type: 'local', dir }) };
  });
});

describe('sharing through the CLI on obnam-server over HTTPS (a namespace)', () => {
  let tmp: TempDir;
  let srv: TestServer;
  after(async () => {
    await srv?.stop();
    await tmp?.remove();
  });
  sharingRules(async () => {
    tmp = await tempDir('obnam-share-server-');
    srv = await startTestServer();
    await obnamServerOk(['namespace', 'add', 'family', '--dir', srv.dir]);
    const env: Record<string, Record<string, string>> = {};
    for (const name of ['alice', 'bob', 'carol']) {
      const token = await srv.addClient(name);
      await obnamServerOk(['grant', name, 'family', '--access', 'full', '--dir', srv.dir]);
      env[name] = { OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: srv.fingerprint };
    }
    const url = `${srv.url}/family`;
    return {
      root: tmp.path,
      repo: url,
      env: (n) => env[n],
      spec: (n) => ({ type: 'http', url, token: env[n]!.OBNAM_TOKEN!, fingerprint: srv.fingerprint }),
    };
  });
});
