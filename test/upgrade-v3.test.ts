/**
 * obnam upgrade --shared (format-spec/sharing.md section 12) through the real
 * CLI: a version 2 repository with several snapshots (changing files, a
 * second directory, every kind of entry) becomes a shared repository of
 * format version 3 owned by the upgrading identity. --dry-run prints the
 * snapshots and bytes and changes nothing; afterwards every snapshot restores
 * byte for byte with metadata as before (times, hostname, paths kept, owned
 * by the member), the old passphrase opens nothing, and no version 2 object
 * (snapshot, tree, chunk, key slot, config) is left. An upgrade killed with
 * SIGKILL at random points (fresh copies, bounded retries) is finished by
 * running it again, with every snapshot once.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { loadIdentity } from '../lib/crypto/identity.js';
import { envelopeVersion } from '../lib/format/envelope.js';
import { KINDS } from '../lib/format/version.js';
import { fsck } from '../lib/fsck/engine.js';
import { Repository } from '../lib/repo/repository.js';
import { restore } from '../lib/restore/engine.js';
import { LocalStore } from '../lib/store/local.js';
import { isoTime } from '../cli/format.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { diskBytes } from './helpers/disk.js';
import { makeMember, Member, readableIds } from './helpers/family.js';
import { killDuring } from './helpers/kill.js';
import { prngBytes } from './helpers/prng.js';
import { treeDigest } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree, makeRichTree } from './helpers/tree.js';

const REPO_PASS = 'the old shared passphrase of the family';

interface V2Repo {
  repo: string;
  /** Each old snapshot: its id, time, hostname, paths, and a restore of it made before the upgrade. */
  snapshots: { id: string; time: string; hostname: string; paths: string[]; restored: string }[];
}

/** A version 2 repository with four snapshots, restored once each (the reference for after). */
async function makeV2Repo(root: string): Promise<V2Repo> {
  const repo = path.join(root, 'repo');
  const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: REPO_PASS, HOME: root };
  const src = path.join(root, 'src');
  const other = path.join(root, 'other');
  fs.mkdirSync(src, { recursive: true });
  fs.mkdirSync(other, { recursive: true });
  makeRichTree(src, 1536 * 1024 + 3);
  fs.writeFileSync(path.join(other, 'notes.txt'), 'other notes\n');
  fs.writeFileSync(path.join(other, 'big.bin'), prngBytes('other big', 2 * 1024 * 1024 + 5));
  await obnamOk(['init'], { env });
  await obnamOk(['backup', src], { env });
  fs.writeFileSync(path.join(src, 'docs', 'small.txt'), 'changed for the second snapshot\n');
  const big = fs.openSync(path.join(src, 'big.bin'), 'r+');
  fs.writeSync(big, Buffer.from('CHANGED IN THE MIDDLE'), 0, 21, 700 * 1024);
  fs.closeSync(big);
  await obnamOk(['backup', src], { env });
  await obnamOk(['backup', other], { env });
  fs.rmSync(path.join(src, 'docs', 'medium.bin'));
  fs.writeFileSync(path.join(src, 'added.txt'), 'added for the fourth snapshot\n');
  await obnamOk(['backup', '--tag', 'last', src], { env });
  const listed = JSON.parse((await obnamOk(['list', '--json'], { env })).stdout) as { id: string; time: string; hostname: string; paths: string[] }[];
  assert.equal(listed.length, 4);
  const snapshots = [];
  const r = await Repository.open(await LocalStore.open(repo), REPO_PASS);
  const pool = startRepoPool(r, { size: 1 });
  try {
    for (const s of listed) {
      const restored = path.join(root, 'before', s.id);
      fs.mkdirSync(restored, { recursive: true });
      await restore(r, await r.getSnapshot(s.id), { target: restored, pool });
      snapshots.push({ id: s.id, time: s.time, hostname: s.hostname, paths: s.paths, restored });
    }
  } finally {
    await pool.close();
    await r.close();
  }
  return { repo, snapshots };
}

/** The format version byte of every stored object, by kind (key slots: -1; none once removed). */
async function versionsStored(repo: string): Promise<Map<string, Set<number>>> {
  const store = await LocalStore.open(repo);
  const out = new Map<string, Set<number>>();
  try {
    for (const kind of KINDS) {
      for await (const id of store.list(kind)) {
        const b = await store.get(kind, id);
        const set = out.get(kind) ?? new Set<number>();
        set.add(kind === 'key' || kind === 'member' ? -1 : envelopeVersion(b)!);
        out.set(kind, set);
      }
    }
  } finally {
    await store.close();
  }
  return out;
}

/**
 * Checks the upgraded repository with the library: every old snapshot
 * exactly once, as the member's, upgraded_from naming it, restoring as
 * before; fsck clean; nothing of version 2 left (no key slot, every
 * object's envelope version 3).
 */
async function checkUpgraded(alice: Member, v2: V2Repo, label: string): Promise<void> {
  const identity = await loadIdentity(path.join(alice.env.XDG_CONFIG_HOME!, 'obnam', 'identity'), alice.env.OBNAM_PASSPHRASE!);
  const repo = await Repository.openShared(await LocalStore.open(v2.repo), identity);
  const pool = startRepoPool(repo, { size: 1 });
  try {
    const scan = await repo.scanSnapshots();
    assert.deepEqual([scan.damaged.length, scan.unreadable.length], [0, 0], label);
    assert.equal(scan.snapshots.length, v2.snapshots.length, `${label}: every snapshot once`);
    for (const old of v2.snapshots) {
      const now = scan.snapshots.filter((s) => s.upgradedFrom === old.id);
      assert.equal(now.length, 1, `${label}: the rewrite of ${old.id.slice(0, 8)}`);
      const s = now[0]!;
      assert.equal(isoTime(s.time), old.time);
      assert.equal(s.hostname, old.hostname);
      assert.deepEqual(s.paths, old.paths);
      assert.equal(s.ownerName, 'alice');
      const out = fs.mkdtempSync(path.join(alice.home, 'after-'));
      await restore(repo, s, { target: out, pool });
      for (const p of old.paths) assertSameTree(path.join(old.restored, p), path.join(out, p), { owners: true });
      fs.rmSync(out, { recursive: true });
    }
    assert.deepEqual((await fsck(repo, { pool })).problems, [], `${label}: fsck`);
  } finally {
    await pool.close();
    await repo.close();
  }
  const versions = await versionsStored(v2.repo);
  assert.equal(versions.has('key'), false, `${label}: the old key slots are gone`);
  for (const [kind, set] of versions) if (kind !== 'member') assert.deepEqual([...set], [3], `${label}: every ${kind} is version 3`);
}

describe('obnam upgrade --shared (version 2 to 3)', () => {
  let tmp: TempDir;
  /** The version 2 repository both tests copy (v2.repo is where each test's copy goes). */
  let template: string;
  let v2: V2Repo;
  let alice: Member;
  let upgrade: string[];
  const withRepoPass = { env: { OBNAM_PASSPHRASE: REPO_PASS } };

  before(async () => {
    tmp = await tempDir('obnam-upgrade-v3-');
    v2 = await makeV2Repo(tmp.path);
    template = path.join(tmp.path, 'template');
    fs.renameSync(v2.repo, template);
    alice = await makeMember(tmp.path, 'alice', { repo: v2.repo });
    const idPass = path.join(tmp.path, 'alice-identity-pass');
    fs.writeFileSync(idPass, alice.env.OBNAM_PASSPHRASE!, { mode: 0o600 });
    upgrade = ['upgrade', '--shared', '--name', 'alice', '--identity-passphrase-file', idPass];
  });
  after(async () => tmp?.remove());

  it('--dry-run changes nothing; the upgrade keeps every snapshot, restorable byte for byte, and leaves nothing of version 2', async () => {
    fs.cpSync(template, v2.repo, { recursive: true });
    try {

      const before = await treeDigest(v2.repo);
      // Refused before anything changes: a wrong repository passphrase, no identity.
      const wrong = await alice.run(upgrade, { env: { OBNAM_PASSPHRASE: 'not the passphrase' } });
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(wrong.stderr, /passphrase/);
      const noIdentity = await alice.run(['upgrade', '--shared', '--name', 'alice'], { env: { ...withRepoPass.env, XDG_CONFIG_HOME: path.join(tmp.path, 'nobody') } });
      assert.equal(noIdentity.code, 1, noIdentity.stderr);
      assert.match(noIdentity.stderr, /identity/);
      assert.deepEqual(await treeDigest(v2.repo), before, 'refused upgrades change nothing');
      const dry = await alice.ok([...upgrade, '--dry-run'], withRepoPass);
      assert.match(dry.stdout, /4 snapshots/);
      assert.match(dry.stdout, /\d+ bytes/);
      const dryJson = JSON.parse((await alice.ok(['--json', ...upgrade, '--dry-run'], withRepoPass)).stdout);
      assert.equal(dryJson.snapshots, 4);
      assert.ok(dryJson.bytes > 3 * 1024 * 1024, `bytes to rewrite: ${dryJson.bytes}`);
      assert.deepEqual(await treeDigest(v2.repo), before, 'a dry run changes nothing');

      const bytesBefore = diskBytes(v2.repo);
      const up = await alice.ok(upgrade, withRepoPass);
      assert.match(up.stdout, /format version 3/);
      await checkUpgraded(alice, v2, 'after the upgrade');
      // and through the CLI, as alice: list, restore, fsck; the old passphrase opens nothing
      const listed = await alice.json<{ id: string; time: string; owner: string }[]>(['list']);
      assert.deepEqual(listed.map((l) => l.time).sort(), v2.snapshots.map((o) => o.time).sort());
      assert.ok(listed.every((l) => l.owner === 'alice'));
      const last = v2.snapshots.find((o) => o.time === listed[listed.length - 1]!.time)!;
      const out = fs.mkdtempSync(path.join(tmp.path, 'cli-restore-'));
      await alice.ok(['restore', 'latest', out]);
      for (const p of last.paths) assertSameTree(path.join(last.restored, p), path.join(out, p), { owners: true });
      await alice.ok(['fsck']);
      const old = await obnam(['list'], { env: { OBNAM_REPO: v2.repo, OBNAM_PASSPHRASE: REPO_PASS, HOME: tmp.path } });
      assert.equal(old.code, 1, 'the old passphrase opens nothing');
      const bytesAfter = diskBytes(v2.repo);
      assert.ok(bytesAfter < bytesBefore * 1.3, `old objects collected: ${bytesAfter} bytes now, ${bytesBefore} before`);
      const again = await alice.ok(upgrade, withRepoPass);
      assert.match(again.stdout, /already/);
      assert.equal((await readableIds(alice)).length, 4, 'a second run rewrites nothing');
    } finally {
      fs.rmSync(v2.repo, { recursive: true, force: true });
    }
  });

  it('killed with SIGKILL at random points and as each step begins, it is finished by running it again (fresh copies, bounded retries)', async (t) => {
    try {
      const args = upgrade;
      const env = { ...alice.env, OBNAM_PASSPHRASE: REPO_PASS };

      // How long an uninterrupted upgrade takes, to spread the kills over it.
      fs.cpSync(template, v2.repo, { recursive: true });
      const full = await killDuring(args, env, /upgrading/, 600_000);
      assert.equal(full.code, 0, full.stderr);
      const span = Math.max(50, full.afterPhaseMs!);
      fs.rmSync(v2.repo, { recursive: true });

      // Kills at random points, and as each step begins (config replacement, key slot removal, collection).
      const random = (seed: string) => Math.floor((prngBytes(`upgrade kill ${seed}`, 2).readUInt16BE(0) / 65536) * span);
      const plan: [string, RegExp, number][] = [
        ['random a', /upgrading/, random('a')],
        ['config', /upgrading \S+ to a shared repository/, 0],
        ['key slots', /removing the old key slots/, 0],
        ['collection', /collecting the old trees/, 0],
      ];
      let killed = 0;
      for (const [seed, phase, first] of plan) {
        let delay = first;
        for (let attempt = 0; ; attempt++) {
          fs.cpSync(template, v2.repo, { recursive: true });
          const k = await killDuring(args, env, phase, delay);
          t.diagnostic(`${seed}: kill ${delay} ms after ${phase.source} (${span} ms in all): ${k.killed ? 'killed' : `exited ${k.code}`}`);
          if (k.killed) break;
          assert.equal(k.code, 0, k.stderr);
          fs.rmSync(v2.repo, { recursive: true });
          if (attempt >= 2 || delay === 0) break;
          delay = Math.floor(delay / 3);
        }
        if (!fs.existsSync(v2.repo)) continue;
        killed++;
        const again = await alice.ok(args, { env: { OBNAM_PASSPHRASE: REPO_PASS } });
        assert.match(again.stdout, /format version 3|already/);
        await checkUpgraded(alice, v2, `killed: ${seed}`);
        fs.rmSync(v2.repo, { recursive: true });
      }
      assert.ok(killed >= 3, `${killed} of ${plan.length} upgrades were killed before they ended`);
    } finally {
      fs.rmSync(v2.repo, { recursive: true, force: true });
    }
  });
});
