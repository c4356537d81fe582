/**
 * Issue 11 end to end on one obnam-server namespace (the real server over
 * HTTPS on loopback, `obnam-server namespace add` and `grant`): alice (full
 * access, --can-delete), bob (append) and carol (read) are members of one
 * shared repository at https://127.0.0.1:PORT/family, each with their own
 * identity, passphrase and client token; dave has a server grant but is no
 * member. Everything is done with the CLI, as the family would:
 * dedup across members (the same file backed up by two members is stored
 * once), bob restores exactly what alice shared with him, byte for byte with
 * metadata, and gets "not shared with you" (exit 1) for the rest; carol
 * reads nothing until granted; a standing grant covers a snapshot made after
 * it and unshare --host stops the next one; append and read access at the
 * server allow exactly what they say for members; prune after a forget keeps
 * every member's snapshots intact.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backupAs, ListedSnapshot, Member, makeMember, readableIds } from './helpers/family.js';
import { AliceData, COMMON_SIZE, makeAliceData, makeBobData, writeDiary } from './helpers/family-data.js';
import { assertCopiesExactly, cleanupMount, fuseAvailable, inSnapshot, mountedAt, MountProcess, startMount } from './helpers/mount.js';
import { bytesUnder, obnamServerOk, startTestServer, TestServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/tree.js';

const HOST = os.hostname();
const NOT_SHARED = /is not shared with you/;

describe('sharing on an obnam-server namespace (alice full, bob append, carol read)', () => {
  let tmp: TempDir;
  let srv: TestServer;
  let alice: Member;
  let bob: Member;
  let carol: Member;
  let dave: Member;
  let data: AliceData;
  let bobData: string;
  const snap: Record<string, string> = {};

  /** Restores `id` as `m` into a fresh directory; returns where `src` is inside it. */
  const restoreAs = async (m: Member, id: string, src: string): Promise<string> => {
    const out = fs.mkdtempSync(path.join(tmp.path, `restore-${m.name}-`));
    await m.ok(['restore', id, out]);
    return path.join(out, src);
  };
  /** `m` cannot restore `id` (with `every`: nor ls it, nor restore it by a prefix): exit 1, "not shared with you", nothing written. */
  const refused = async (m: Member, id: string, every = false) => {
    const out = path.join(tmp.path, `refused-${m.name}-${id.slice(0, 8)}`);
    const tries = every ? [['restore', id, out], ['ls', id], ['restore', id.slice(0, 8), out]] : [['restore', id, out]];
    for (const args of tries) {
      const r = await m.run(args);
      assert.equal(r.code, 1, `${m.name}: obnam ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, NOT_SHARED, `${m.name}: obnam ${args.join(' ')}`);
      assert.match(r.stderr, new RegExp(id.slice(0, 8)));
      assert.doesNotMatch(r.stderr, /internal error/);
    }
    assert.equal(fs.existsSync(path.join(out, data.private)) || fs.existsSync(path.join(out, data.photos)), false, 'nothing restored');
  };

  before(async () => {
    tmp = await tempDir('obnam-sharing-');
    srv = await startTestServer();
    const tokens: Record<string, string> = {};
    for (const c of ['alice', 'bob', 'carol', 'dave']) tokens[c] = await srv.addClient(c);
    await obnamServerOk(['namespace', 'add', 'family', '--dir', srv.dir]);
    for (const [c, access] of [['alice', 'full'], ['bob', 'append'], ['carol', 'read'], ['dave', 'full']]) {
      await obnamServerOk(['grant', c!, 'family', '--access', access!, '--dir', srv.dir]);
    }
    const repo = `${srv.url}/family`;
    const member = (name: string) =>
      makeMember(tmp.path, name, { repo, env: { OBNAM_TOKEN: tokens[name]!, OBNAM_SERVER_FINGERPRINT: srv.fingerprint } });
    [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map(member));
    data = makeAliceData(alice.home);
    bobData = makeBobData(bob.home);
  });

  after(async () => {
    await srv?.stop();
    await tmp?.remove();
  });

  it('alice makes the shared repository and adds bob and carol; dave, not a member, cannot open it', async () => {
    await alice.ok(['init', '--shared', '--name', 'alice']);
    await alice.ok(['member', 'add', bob.publicKey, '--name', 'bob']);
    await alice.ok(['member', 'add', carol.publicKey, '--name', 'carol']);
    const members = await bob.json<{ name: string; public_key: string; can_delete: boolean; added_by: string }[]>(['member', 'list']);
    const byName = Object.fromEntries(members.map((m) => [m.name, m]));
    assert.deepEqual(Object.keys(byName).sort(), ['alice', 'bob', 'carol']);
    assert.equal(byName.alice!.public_key, alice.publicKey);
    assert.equal(byName.bob!.public_key, bob.publicKey);
    assert.deepEqual([byName.alice!.can_delete, byName.bob!.can_delete, byName.carol!.can_delete], [true, false, false]);
    assert.equal(byName.bob!.added_by, 'alice');
    const r = await dave.run(['list']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not a member/);
    // A member without --can-delete may not add members (sharing.md 5.2).
    const add = await bob.run(['member', 'add', dave.publicKey, '--name', 'dave']);
    assert.equal(add.code, 1, add.stderr);
    assert.equal((await dave.run(['list'])).code, 1, 'dave is still no member');
  });

  it('the same file backed up by alice and by bob is stored once', async () => {
    const before = await bytesUnder(path.join(srv.dir, 'data'));
    snap.photos = await backupAs(alice, [data.photos]);
    const afterAlice = await bytesUnder(path.join(srv.dir, 'data'));
    assert.ok(afterAlice - before > COMMON_SIZE, `alice's backup stored ${afterAlice - before} bytes`);
    snap.bob = await backupAs(bob, [bobData]);
    const afterBob = await bytesUnder(path.join(srv.dir, 'data'));
    assert.ok(afterBob - afterAlice < COMMON_SIZE / 20, `bob's backup of a ${COMMON_SIZE}-byte file alice already has stored ${afterBob - afterAlice} bytes`);
    // and bob can read his own snapshot back
    const back = await restoreAs(bob, snap.bob, bobData);
    assertSameTree(bobData, back, { owners: true });
  });

  it('bob restores exactly the snapshot alice shared with him, byte for byte; the others are not shared with him', async () => {
    snap.private1 = await backupAs(alice, [data.private]);
    await alice.ok(['share', snap.photos!, '--with', 'bob']);
    assert.deepEqual(await readableIds(bob), [snap.photos!, snap.bob!].sort());
    const back = await restoreAs(bob, snap.photos!, data.photos);
    assertSameTree(data.photos, back, { owners: true });
    await refused(bob, snap.private1, true);
    // alice sees whose each snapshot is and with whom it is shared; bob sees alice as the owner
    const listed = await alice.json<ListedSnapshot[]>(['list']);
    const photos = listed.find((s) => s.id === snap.photos)!;
    assert.equal(photos.owner, 'alice');
    assert.deepEqual(photos.shared_with, ['bob']);
    assert.deepEqual(listed.find((s) => s.id === snap.private1)!.shared_with ?? [], []);
    const seen = await bob.json<ListedSnapshot[]>(['list']);
    assert.equal(seen.find((s) => s.id === snap.photos)!.owner, 'alice');
    assert.equal(seen.find((s) => s.id === snap.bob)!.owner, 'bob');
    assert.equal(seen.some((s) => s.id === snap.private1 && s.readable !== false), false);
    const text = await alice.ok(['list']);
    assert.match(text.stdout, /bob/, 'list names the grantee');
  });

  it('bob mounts the namespace (real FUSE): exactly his snapshot and the one alice shared, byte for byte', { skip: !fuseAvailable && 'no /dev/fuse' }, async () => {
    const mnt = fs.mkdtempSync(path.join(tmp.path, 'mnt-bob-'));
    let m: MountProcess | undefined;
    try {
      m = await startMount(`${srv.url}/family`, mnt, [], bob.env);
      assert.deepEqual(fs.readdirSync(path.join(mnt, 'ids')).sort(), [snap.photos!, snap.bob!].sort());
      assert.equal(fs.existsSync(path.join(mnt, 'ids', snap.private1!)), false, 'alice’s unshared snapshot is not there');
      await assertCopiesExactly(inSnapshot(path.join(mnt, 'ids', snap.photos!), data.photos), path.join(tmp.path, 'mounted-copy'), data.photos);
    } finally {
      await cleanupMount(m, mnt);
    }
    assert.equal(await mountedAt(mnt), undefined, 'nothing left mounted');
  });

  it('carol, with no grants, reads nothing of alice’s and bob’s', async () => {
    assert.deepEqual(await readableIds(carol), []);
    await Promise.all([refused(carol, snap.photos!, true), refused(carol, snap.private1!), refused(carol, snap.bob!)]);
    const latest = await carol.run(['restore', 'latest', path.join(tmp.path, 'carol-latest')]);
    assert.equal(latest.code, 1, 'carol has no snapshot of her own nor any shared with her');
  });

  it('a standing grant covers a snapshot made after it; unshare --host stops the next one', async () => {
    await alice.ok(['share', '--host', HOST, '--with', 'carol']);
    writeDiary(data.private, data.diaryMarker, 2);
    snap.private2 = await backupAs(alice, [data.private]);
    assert.deepEqual(await readableIds(carol), [snap.private2]);
    const back = await restoreAs(carol, snap.private2, data.private);
    assertSameTree(data.private, back, { owners: true });
    await refused(carol, snap.private1!); // made before the grant
    await alice.ok(['unshare', '--host', HOST, '--with', 'carol']);
    writeDiary(data.private, data.diaryMarker, 3);
    snap.private3 = await backupAs(alice, [data.private]);
    await refused(carol, snap.private3);
    // what carol could read stays readable to her (sharing.md 13.4)
    assert.deepEqual(await readableIds(carol), [snap.private2]);
    await Promise.all([refused(bob, snap.private2), refused(bob, snap.private3)]);
  });

  it('append and read access at the server: bob cannot delete, carol cannot write; neither can forget alice’s snapshots', async () => {
    const own = await bob.run(['forget', snap.bob!]);
    assert.equal(own.code, 1, own.stderr);
    assert.match(own.stderr, /append access to namespace family/);
    for (const m of [bob, carol]) {
      const r = await m.run(['forget', snap.photos!]);
      assert.equal(r.code, 1, `${m.name} forget: ${r.stderr}`);
    }
    const w = await carol.run(['backup', data.photos]);
    assert.equal(w.code, 1);
    assert.match(w.stderr, /read access to namespace family/);
    assert.deepEqual(await readableIds(bob), [snap.photos!, snap.bob!].sort(), 'nothing was forgotten');
    const prune = await bob.run(['prune', '--exclusive']);
    assert.equal(prune.code, 1, 'bob (no --can-delete, append access) cannot collect');
  });

  it('alice forgets her first private snapshot and prunes: every member’s other snapshots restore intact', async () => {
    await alice.ok(['forget', snap.private1!]);
    const pruned = await alice.json<{ deleted: { trees: number; chunks: number } }>(['prune', '--exclusive']);
    assert.ok(pruned.deleted.trees > 0, `prune collected what only the forgotten snapshot used: ${JSON.stringify(pruned.deleted)}`);
    const aliceIds = await readableIds(alice);
    assert.deepEqual(aliceIds, [snap.photos!, snap.private2!, snap.private3!].sort());
    const [aPhotos, aPrivate, bOwn, bPhotos, cDay2] = await Promise.all([
      restoreAs(alice, snap.photos!, data.photos),
      restoreAs(alice, snap.private3!, data.private),
      restoreAs(bob, snap.bob!, bobData),
      restoreAs(bob, snap.photos!, data.photos),
      restoreAs(carol, snap.private2!, data.private),
    ]);
    assertSameTree(data.photos, aPhotos, { owners: true });
    assertSameTree(data.private, aPrivate, { owners: true });
    assertSameTree(bobData, bOwn, { owners: true });
    assertSameTree(data.photos, bPhotos, { owners: true });
    // carol's snapshot of day 2 holds the diary as it was then
    assert.equal(fs.readFileSync(path.join(cDay2, 'diary.txt'), 'utf8'), `day 2: ${data.diaryMarker}\n`.repeat(52));
    await alice.ok(['fsck']);
  });
});
