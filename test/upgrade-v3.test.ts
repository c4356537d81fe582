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
import { describe, it } from 'node:test';
import { obnamOk } from './helpers/cli.js';
import { diskBytes } from './helpers/disk.js';
import { makeMember, Member, readableIds } from './helpers/family.js';
import { killDuring } from './helpers/kill.js';
import { prngBytes } from './helpers/prng.js';
import { treeDigest } from './helpers/server.js';
import { tempDir } from './helpers/tmp.js';
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
  for (const s of listed) {
    const restored = path.join(root, 'before', s.id);
    fs.mkdirSync(path.dirname(restored), { recursive: true });
    await obnamOk(['restore', s.id, restored], { env });
    snapshots.push({ id: s.id, time: s.time, hostname: s.hostname, paths: s.paths, restored });
  }
  return { repo, snapshots };
}

/** Every stored object's format version byte, by directory (the local store's frame is 40 bytes). */
function versionsOnDisk(repo: string): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const dir of ['config', 'keys', 'snapshots']) {
    const d = path.join(repo, dir);
    if (!fs.existsSync(d)) continue;
    for (const f of fs.readdirSync(d)) {
      const b = fs.readFileSync(path.join(d, f));
      const set = out.get(dir) ?? new Set<number>();
      set.add(dir === 'keys' ? -1 : b[40 + 4]!);
      out.set(dir, set);
    }
  }
  return out;
}

/** Checks the upgraded repository: every old snapshot exactly once, restoring as before; nothing of version 2 left. */
async function checkUpgraded(alice: Member, v2: V2Repo, label: string): Promise<void> {
  const listed = await alice.json<{ id: string; time: string; hostname: string; paths: string[]; owner: string; upgraded_from?: string }[]>(['list']);
  assert.equal(listed.length, v2.snapshots.length, `${label}: every snapshot once`);
  for (const old of v2.snapshots) {
    const now = listed.filter((s) => s.time === old.time);
    assert.equal(now.length, 1, `${label}: the snapshot of ${old.time}`);
    const s = now[0]!;
    assert.equal(s.hostname, old.hostname);
    assert.deepEqual(s.paths, old.paths);
    assert.equal(s.owner, 'alice');
    assert.notEqual(s.id, old.id, 'a new id');
    const out = fs.mkdtempSync(path.join(alice.home, 'after-'));
    await alice.ok(['restore', s.id, out]);
    for (const p of old.paths) assertSameTree(path.join(old.restored, p), path.join(out, p), { owners: true });
    fs.rmSync(out, { recursive: true });
  }
  const versions = versionsOnDisk(v2.repo);
  assert.deepEqual([...(versions.get('config') ?? [])], [3], `${label}: the config is version 3`);
  assert.equal(versions.get('keys')?.size ?? 0, 0, `${label}: the old key slots are gone`);
  await alice.ok(['fsck']);
  const old = await alice.run(['list'], { env: { OBNAM_PASSPHRASE: REPO_PASS } });
  assert.equal(old.code, 1, `${label}: the old passphrase opens nothing`);
}

describe('obnam upgrade --shared (version 2 to 3)', () => {
  it('--dry-run changes nothing; the upgrade keeps every snapshot, restorable byte for byte, and leaves nothing of version 2', async () => {
    const tmp = await tempDir('obnam-upgrade-v3-');
    try {
      const v2 = await makeV2Repo(tmp.path);
      const alice = await makeMember(tmp.path, 'alice', { repo: v2.repo });
      const idPass = path.join(tmp.path, 'alice-identity-pass');
      fs.writeFileSync(idPass, alice.env.OBNAM_PASSPHRASE!, { mode: 0o600 });
      const upgrade = ['upgrade', '--shared', '--name', 'alice', '--identity-passphrase-file', idPass];
      const withRepoPass = { env: { OBNAM_PASSPHRASE: REPO_PASS } };

      const before = await treeDigest(v2.repo);
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
      const bytesAfter = diskBytes(v2.repo);
      assert.ok(bytesAfter < bytesBefore * 1.3, `old objects collected: ${bytesAfter} bytes now, ${bytesBefore} before`);
      const again = await alice.ok(upgrade, withRepoPass);
      assert.match(again.stdout, /already/);
      assert.equal((await readableIds(alice)).length, 4, 'a second run rewrites nothing');
    } finally {
      await tmp.remove();
    }
  });

  it('killed with SIGKILL at random points, it is finished by running it again (fresh copies, bounded retries)', async (t) => {
    const tmp = await tempDir('obnam-upgrade-v3-kill-');
    try {
      const v2 = await makeV2Repo(tmp.path);
      const template = path.join(tmp.path, 'template');
      fs.renameSync(v2.repo, template);
      const alice = await makeMember(tmp.path, 'alice', { repo: v2.repo });
      const idPass = path.join(tmp.path, 'alice-identity-pass');
      fs.writeFileSync(idPass, alice.env.OBNAM_PASSPHRASE!, { mode: 0o600 });
      const args = ['upgrade', '--shared', '--name', 'alice', '--identity-passphrase-file', idPass];
      const env = { ...alice.env, OBNAM_PASSPHRASE: REPO_PASS };

      // How long an uninterrupted upgrade takes, to spread the kills over it.
      fs.cpSync(template, v2.repo, { recursive: true });
      const full = await killDuring(args, env, /upgrading/, 600_000);
      assert.equal(full.code, 0, full.stderr);
      const span = Math.max(50, full.afterPhaseMs!);
      fs.rmSync(v2.repo, { recursive: true });

      let killed = 0;
      for (const seed of ['a', 'b', 'c']) {
        let delay = Math.floor((prngBytes(`upgrade kill ${seed}`, 2).readUInt16BE(0) / 65536) * span);
        for (let attempt = 0; ; attempt++) {
          fs.cpSync(template, v2.repo, { recursive: true });
          const k = await killDuring(args, env, /upgrading/, delay);
          t.diagnostic(`seed ${seed}: kill at ${delay} of ${span} ms: ${k.killed ? 'killed' : `exited ${k.code}`}`);
          if (k.killed) break;
          assert.equal(k.code, 0, k.stderr);
          fs.rmSync(v2.repo, { recursive: true });
          if (attempt >= 3) break;
          delay = Math.floor(delay / 3);
        }
        if (!fs.existsSync(v2.repo)) continue;
        killed++;
        const again = await alice.ok(args, { env: { OBNAM_PASSPHRASE: REPO_PASS } });
        assert.match(again.stdout, /format version 3|already/);
        await checkUpgraded(alice, v2, `seed ${seed}`);
        fs.rmSync(v2.repo, { recursive: true });
      }
      assert.ok(killed >= 2, `${killed} of 3 upgrades were killed before they ended`);
    } finally {
      await tmp.remove();
    }
  });
});
