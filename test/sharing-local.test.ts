/**
 * Issue 11 on a shared repository on a local disk: alice (--can-delete),
 * bob and carol, each with their own identity. bob mounts (real FUSE) and
 * sees exactly his own snapshots and those alice shared with him, byte for
 * byte with metadata; carol's mount is empty. With direct library access to
 * every stored object and everything bob has (his identity, the member key
 * set, every key found on the way: test/helpers/member-view.ts, written from
 * the spec), alice's unshared trees, chunks and names stay closed; the same
 * reader with alice's identity opens all of them (so it can find what is
 * there). The client refuses bob's forget of alice's snapshot (no
 * --can-delete), and lets him forget his own.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadIdentity } from '../lib/crypto/identity.js';
import { backupAs, Member, makeMember, readableIds } from './helpers/family.js';
import { AliceData, makeAliceData, makeBobData } from './helpers/family-data.js';
import { memberView, viewHolds } from './helpers/member-view.js';
import { assertCopiesExactly, cleanupMount, fuseAvailable, inSnapshot, mountedAt, MountProcess, startMount } from './helpers/mount.js';
import { tempDir, TempDir } from './helpers/tmp.js';

describe('sharing in a local repository', () => {
  let tmp: TempDir;
  let repo: string;
  let alice: Member;
  let bob: Member;
  let carol: Member;
  let data: AliceData;
  let bobData: string;
  const snap: Record<string, string> = {};
  const identityOf = (m: Member) => loadIdentity(path.join(m.env.XDG_CONFIG_HOME!, 'obnam', 'identity'), m.env.OBNAM_PASSPHRASE!);

  before(async () => {
    tmp = await tempDir('obnam-sharing-local-');
    repo = path.join(tmp.path, 'repo');
    [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => makeMember(tmp.path, n, { repo })));
    data = makeAliceData(alice.home);
    bobData = makeBobData(bob.home);
    await alice.ok(['init', '--shared', '--name', 'alice']);
    await alice.ok(['member', 'add', bob.publicKey, '--name', 'bob']);
    await alice.ok(['member', 'add', carol.publicKey, '--name', 'carol']);
    snap.photos = await backupAs(alice, [data.photos]);
    snap.private = await backupAs(alice, [data.private]);
    snap.bob = await backupAs(bob, [bobData]);
    await alice.ok(['share', snap.photos, '--with', 'bob']);
  });

  after(async () => {
    await tmp?.remove();
  });

  it('bob, with every stored object and everything he has, opens nothing of alice’s unshared snapshot', async () => {
    const bobView = await memberView(repo, await identityOf(bob));
    assert.ok(bobView.memberKeys, 'bob is a member: his member object gives him the member keys');
    assert.deepEqual([...bobView.readableSnapshots].sort(), [snap.photos!, snap.bob!].sort());
    assert.equal(bobView.opened.snapshot.has(snap.private!), false, 'the private snapshot’s body');
    assert.equal(bobView.opened.tree.has(bobView.rootOf.get(snap.private!)!), false, 'the private snapshot’s root tree');
    assert.equal(viewHolds(bobView, data.diaryMarker), false, 'the diary’s content');
    assert.equal(viewHolds(bobView, data.privateName), false, 'a file name in the private snapshot');
    assert.ok(viewHolds(bobView, 'a file whose name is a secret'), 'what alice shared with him he reads');

    // The same reader with alice's identity opens everything: the checks above can fail.
    const aliceView = await memberView(repo, await identityOf(alice));
    assert.ok(viewHolds(aliceView, data.diaryMarker) && viewHolds(aliceView, data.privateName));
    assert.ok(aliceView.opened.tree.has(aliceView.rootOf.get(snap.private!)!));
    const closedToBob = [...aliceView.opened.tree].filter((t) => !bobView.opened.tree.has(t));
    assert.ok(closedToBob.length > 0, 'some of alice’s trees are closed to bob');
    const closedChunks = [...aliceView.opened.chunk].filter((c) => !bobView.opened.chunk.has(c));
    assert.ok(closedChunks.length > 0, 'some of alice’s chunks are closed to bob');
    assert.ok(bobView.keysTried > closedChunks.length, `bob tried ${bobView.keysTried} keys`);

    // carol, with no grant, opens no tree, chunk or snapshot at all.
    const carolView = await memberView(repo, await identityOf(carol));
    assert.ok(carolView.memberKeys);
    assert.equal(carolView.opened.snapshot.size + carolView.opened.tree.size + carolView.opened.chunk.size, 0);
  });

  it('bob cannot forget alice’s snapshot (no --can-delete) and can forget his own', async () => {
    const r = await bob.run(['forget', snap.photos!]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /can-delete|can_delete/);
    assert.ok((await readableIds(alice)).includes(snap.photos!), 'still there');
    const extra = await backupAs(bob, [bobData]);
    await bob.ok(['forget', extra]);
    assert.equal((await readableIds(bob)).includes(extra), false);
  });

  describe('mounted', { skip: !fuseAvailable && 'no /dev/fuse' }, () => {
    let m: MountProcess | undefined;
    let mnt: string;

    before(async () => {
      mnt = path.join(tmp.path, 'mnt');
      fs.mkdirSync(mnt);
    });

    after(async () => {
      await cleanupMount(m, mnt);
      assert.equal(await mountedAt(mnt), undefined, 'nothing left mounted');
    });

    it('bob’s mount holds exactly his snapshots and the one alice shared, byte for byte with metadata', async () => {
      m = await startMount(repo, mnt, [], bob.env);
      assert.deepEqual(fs.readdirSync(path.join(mnt, 'ids')).sort(), [snap.photos!, snap.bob!].sort());
      assert.equal(fs.existsSync(path.join(mnt, 'ids', snap.private!)), false);
      await assertCopiesExactly(inSnapshot(path.join(mnt, 'ids', snap.photos!), data.photos), path.join(tmp.path, 'copy'), data.photos);
      await cleanupMount(m, mnt);
      m = undefined;
    });

    it('carol’s mount holds no snapshot', async () => {
      m = await startMount(repo, mnt, [], carol.env);
      assert.deepEqual(fs.readdirSync(path.join(mnt, 'ids')), []);
      await cleanupMount(m, mnt);
      m = undefined;
    });
  });
});
