/**
 * obnam init --shared and obnam member add|list|remove through the real CLI
 * (format-spec/sharing.md 5.2), on a local repository and on the real
 * obnam-server over HTTPS (a namespace): the identity becomes the first
 * member with --can-delete; only members with --can-delete add and remove;
 * never the last one of them; no duplicate name or key; a non-member is
 * NOT_A_MEMBER (exit 1); a forged member object (its mac fails) is listed as
 * not authentic and gives nobody access; a removed member cannot open the
 * repository any more.
 */
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeCbor, encodeCbor } from '../lib/format/cbor.js';
import { openStore } from '../lib/store/open.js';
import { Member, makeMember } from './helpers/family.js';
import { obnamServerOk, startTestServer, TestServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';

interface ListedMember {
  id: string;
  name: string;
  public_key: string;
  can_delete: boolean;
  created: string;
  added_by: string;
  authentic: boolean;
  you: boolean;
}

const members = (m: Member) => m.json<ListedMember[]>(['member', 'list']);

async function fails(m: Member, args: string[], message: RegExp): Promise<void> {
  const r = await m.run(args);
  assert.equal(r.code, 1, `obnam ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, message, `obnam ${args.join(' ')}`);
  assert.doesNotMatch(r.stderr, /internal error/);
}

/** The rules of 5.2, the same on every kind of store. */
function memberRules(setup: () => Promise<{ root: string; repo: string; env: (name: string) => Record<string, string> | undefined }>) {
  let alice: Member;
  let bob: Member;
  let carol: Member;
  let dave: Member;
  before(async () => {
    const { root, repo, env } = await setup();
    [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((n) => makeMember(root, n, { repo, env: env(n) })));
  });

  it('init --shared makes the identity the first member, with --can-delete', async () => {
    const made = JSON.parse((await alice.ok(['--json', 'init', '--shared', '--name', 'alice'])).stdout);
    assert.equal(made.member, 'alice');
    assert.equal(made.public_key, alice.publicKey);
    const list = await members(alice);
    assert.equal(list.length, 1);
    assert.deepEqual({ ...list[0], id: undefined, created: undefined }, {
      id: undefined,
      created: undefined,
      name: 'alice',
      public_key: alice.publicKey,
      can_delete: true,
      added_by: '',
      authentic: true,
      you: true,
    });
    await fails(alice, ['init', '--shared', '--name', 'alice'], /already|exists/);
  });

  it('a non-member: NOT_A_MEMBER, exit 1', async () => {
    await fails(bob, ['list'], /not a member/);
    await fails(bob, ['member', 'list'], /not a member/);
  });

  it('member add: bad keys and names, duplicates refused; the member can then open the repository', async () => {
    await fails(alice, ['member', 'add', 'obnam-pk1nonsense', '--name', 'bob'], /not an obnam public key/);
    await fails(alice, ['member', 'add', bob.publicKey, '--name', 'Bob'], /not a valid member name/);
    await fails(alice, ['member', 'add', bob.publicKey], /name/);
    await alice.ok(['member', 'add', bob.publicKey, '--name', 'bob']);
    await fails(alice, ['member', 'add', carol.publicKey, '--name', 'bob'], /already a member named bob/);
    await fails(alice, ['member', 'add', bob.publicKey, '--name', 'robert'], /already the member bob/);
    await fails(alice, ['member', 'add', alice.publicKey, '--name', 'alice2'], /already the member alice/);
    await alice.ok(['member', 'add', carol.publicKey, '--name', 'carol', '--can-delete']);
    const list = await members(bob);
    assert.deepEqual(
      list.map((m) => [m.name, m.can_delete, m.added_by, m.you, m.authentic]),
      [
        ['alice', true, '', false, true],
        ['bob', false, 'alice', true, true],
        ['carol', true, 'alice', false, true],
      ],
    );
    assert.equal(list.find((m) => m.name === 'carol')!.public_key, carol.publicKey);
    const text = (await bob.ok(['member', 'list'])).stdout;
    assert.match(text, /^\* bob /m);
    assert.match(text, new RegExp(`carol  ${carol.publicKey}.*can delete, added by alice`));
  });

  it('only members with --can-delete add and remove members', async () => {
    await fails(bob, ['member', 'add', dave.publicKey, '--name', 'dave'], /needs a member with --can-delete; bob is not one/);
    await fails(bob, ['member', 'remove', 'carol'], /needs a member with --can-delete; bob is not one/);
    await fails(alice, ['member', 'remove', 'nobody'], /no member named "nobody"/);
    assert.equal((await members(alice)).length, 3);
  });

  it('the last member with --can-delete is never removed', async () => {
    await carol.ok(['member', 'remove', 'alice']);
    await fails(alice, ['list'], /not a member/);
    await fails(carol, ['member', 'remove', 'carol'], /last member with --can-delete/);
    assert.deepEqual((await members(carol)).map((m) => m.name), ['bob', 'carol']);
    // Added again (a new member object), alice opens the repository again.
    await carol.ok(['member', 'add', alice.publicKey, '--name', 'alice', '--can-delete']);
    await alice.ok(['list']);
  });

  it('a removed member cannot open the repository', async () => {
    await alice.ok(['member', 'remove', 'bob']);
    await fails(bob, ['list'], /not a member/);
    assert.deepEqual((await members(alice)).map((m) => m.name), ['alice', 'carol']);
  });
}

describe('obnam member on a local repository', () => {
  let tmp: TempDir;
  after(async () => tmp?.remove());
  memberRules(async () => {
    tmp = await tempDir('obnam-members-');
    return { root: tmp.path, repo: path.join(tmp.path, 'repo'), env: () => undefined };
  });
});

describe('obnam member on obnam-server over HTTPS (a namespace)', () => {
  let tmp: TempDir;
  let srv: TestServer;
  after(async () => {
    await srv?.stop();
    await tmp?.remove();
  });
  memberRules(async () => {
    tmp = await tempDir('obnam-members-server-');
    srv = await startTestServer();
    await obnamServerOk(['namespace', 'add', 'family', '--dir', srv.dir]);
    const env: Record<string, Record<string, string>> = {};
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      const token = await srv.addClient(name);
      await obnamServerOk(['grant', name, 'family', '--access', 'full', '--dir', srv.dir]);
      env[name] = { OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: srv.fingerprint };
    }
    return { root: tmp.path, repo: `${srv.url}/family`, env: (n) => env[n] };
  });
});

describe('init --shared details and forged member objects', () => {
  let tmp: TempDir;
  before(async () => {
    tmp = await tempDir('obnam-members-forged-');
  });
  after(async () => tmp?.remove());

  it('--name needs --shared; without --name the user name is the member name; no identity: NO_IDENTITY', async () => {
    const repo = path.join(tmp.path, 'repo-default');
    const m = await makeMember(tmp.path, 'someone', { repo });
    await fails(m, ['init', '--name', 'x'], /--name is for a shared repository/);
    await m.ok(['init', '--shared']);
    const user = os.userInfo().username.toLowerCase();
    assert.deepEqual((await members(m)).map((x) => x.name), [user]);
    const other = await makeMember(tmp.path, 'other', { repo: path.join(tmp.path, 'repo-none') });
    await fails(other, ['init', '--shared', '--name', 'other', '--identity-file', path.join(tmp.path, 'missing')], /no identity at/);
  });

  it('a wrong identity passphrase is BAD_PASSPHRASE; member commands on a version 2 repository are refused', async () => {
    const shared = path.join(tmp.path, 'repo-pass');
    const m = await makeMember(tmp.path, 'pass', { repo: shared });
    await m.ok(['init', '--shared', '--name', 'pass']);
    const wrong = await m.run(['list'], { env: { OBNAM_PASSPHRASE: 'not the identity passphrase' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong passphrase for identity file/);
    const v2 = path.join(tmp.path, 'repo-v2');
    await m.ok(['--repo', v2, 'init']);
    for (const args of [['member', 'list'], ['member', 'add', m.publicKey, '--name', 'x'], ['share', 'latest', '--with', 'x']]) {
      await fails(m, ['--repo', v2, ...args], /needs a shared repository \(format version 3/);
    }
    await m.ok(['--repo', v2, 'list']);
  });

  it('a member object whose can_delete was changed in the store is not authentic and gives no access', async () => {
    const repo = path.join(tmp.path, 'repo-forged');
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => makeMember(tmp.path, `f-${n}`, { repo })));
    await alice.ok(['init', '--shared', '--name', 'alice']);
    await alice.ok(['member', 'add', bob.publicKey, '--name', 'bob']);
    const bobId = (await members(alice)).find((m) => m.name === 'bob')!.id;
    // The store (or anyone who can write it) sets can_delete in bob's member object.
    const store = await openStore({ type: 'local', dir: repo });
    try {
      const m = decodeCbor(await store.get('member', bobId), 'member') as Record<string, never>;
      assert.equal(m.can_delete, false);
      await store.delete('member', bobId);
      await store.put('member', bobId, encodeCbor({ ...m, can_delete: true }));
    } finally {
      await store.close();
    }
    const list = await members(alice);
    const bobRow = list.find((x) => x.id === bobId) as unknown as { authentic: boolean; error: string; name?: string };
    assert.equal(bobRow.authentic, false);
    assert.match(bobRow.error, /mac does not verify/);
    assert.equal(bobRow.name, undefined, 'not shown as a member');
    assert.deepEqual(list.filter((x) => x.authentic).map((x) => x.name), ['alice']);
    assert.match((await alice.ok(['member', 'list'])).stdout, new RegExp(`! ${bobId.slice(0, 8)}  NOT A MEMBER`));
    await fails(bob, ['list'], /not a member/);
    // It is not a member: its name does not find it; its id does, and removes it.
    await fails(alice, ['member', 'remove', 'bob'], /no member named "bob"/);
    await alice.ok(['member', 'remove', bobId.slice(0, 8)]);
    assert.deepEqual((await members(alice)).map((x) => x.name), ['alice']);
  });
});

