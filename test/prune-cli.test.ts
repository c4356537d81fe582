/**
 * obnam prune and obnam upgrade through the command line: forgetting one of
 * three snapshots and pruning leaves the other two restorable byte for byte,
 * fsck clean, the forgotten snapshot's own trees and chunks gone from the
 * store's listings, and the repository's size on disk down by what only that
 * snapshot held (repacking); version 1 repositories are refused until upgraded; the
 * upgrade is idempotent and resumes after an interruption.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_ID } from '../lib/format/ids.js';
import { Repository } from '../lib/repo/repository.js';
import { addReachable } from '../lib/repo/treewalk.js';
import { IdSet } from '../lib/util/id-map.js';
import { ROOT, obnam, obnamOk } from './helpers/cli.js';
import { diskBytes } from './helpers/disk.js';
import { prngBytes } from './helpers/prng.js';
import { openTestRepo } from './helpers/repo.js';
import { tempDir } from './helpers/tmp.js';

const PASS = 'prune test passphrase';

async function ids(repoDir: string, kind: 'tree' | 'chunk'): Promise<Set<string>> {
  const r = await openTestRepo(repoDir, PASS);
  const out = new Set<string>();
  for await (const id of r.listIds(kind)) out.add(id);
  await r.close();
  return out;
}

function sameTree(a: string, b: string): void {
  const list = (d: string): string[] => fs.readdirSync(d, { recursive: true, encoding: 'utf8' }).sort();
  assert.deepEqual(list(a), list(b));
  for (const f of list(a)) {
    const p = path.join(a, f);
    if (fs.lstatSync(p).isFile()) assert.ok(fs.readFileSync(p).equals(fs.readFileSync(path.join(b, f))), f);
  }
}

describe('obnam prune', () => {
  it('forget one of three snapshots, prune --exclusive: the others restore byte for byte, fsck passes, its own objects are gone', async (t) => {
    const tmp = await tempDir();
    try {
      const repo = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      fs.mkdirSync(path.join(src, 'd'), { recursive: true });
      fs.writeFileSync(path.join(src, 'common.bin'), prngBytes('common', 300_000));
      const snaps: string[] = [];
      const copies: string[] = [];
      for (let i = 0; i < 3; i++) {
        fs.writeFileSync(path.join(src, 'd', 'changing.bin'), prngBytes(`version ${i}`, 400_000));
        fs.writeFileSync(path.join(src, 'd', 'small.txt'), `small ${i}\n`);
        await obnamOk(['backup', src, '--force'], { env });
        const list = JSON.parse((await obnamOk(['list', '--json'], { env })).stdout);
        snaps.push(list[list.length - 1].id);
        const copy = path.join(tmp.path, `copy${i}`);
        fs.cpSync(src, copy, { recursive: true });
        copies.push(copy);
      }
      // What only the middle snapshot reaches.
      const r = await openTestRepo(repo, PASS);
      const reach = async (id: string) => {
        const set = { trees: new IdSet(), chunks: new IdSet() };
        await addReachable((t) => r.getTreeRefs(t), (await r.getSnapshot(id)).tree, set);
        return set;
      };
      const [a, b, c] = [await reach(snaps[0]!), await reach(snaps[1]!), await reach(snaps[2]!)];
      const onlyB = { trees: [...b.trees].filter((t) => !a.trees.has(t) && !c.trees.has(t)), chunks: [...b.chunks].filter((x) => !a.chunks.has(x) && !c.chunks.has(x)) };
      assert.ok(onlyB.trees.length > 0 && onlyB.chunks.length > 0);
      // What only B holds on disk: its objects' stored bytes, each with its pack record header and index entry
      // (69 + 77 bytes), and its snapshot object's file.
      let onlyBBytes = 0;
      for (const t of onlyB.trees) onlyBBytes += (await r.storedSize('tree', t)) + 146;
      for (const x of onlyB.chunks) onlyBBytes += (await r.storedSize('chunk', x)) + 146;
      onlyBBytes += fs.statSync(path.join(repo, 'snapshots', snaps[1]!)).size;
      // Forget the middle snapshot: deleting its snapshot object (format-spec 14.1).
      await r.deleteSnapshot(snaps[1]!);
      await r.close();
      const sizeBefore = diskBytes(repo);

      const dry = JSON.parse((await obnamOk(['prune', '--dry-run', '--json'], { env })).stdout);
      assert.equal(dry.marked.trees, onlyB.trees.length);
      assert.equal(dry.marked.chunks, onlyB.chunks.length);
      assert.equal(dry.deleted.chunks, 0);
      assert.equal(dry.repack.done, true, 'a dry run says what it would repack');
      assert.equal(diskBytes(repo), sizeBefore, 'a dry run changes nothing');
      assert.ok((await ids(repo, 'chunk')).has(onlyB.chunks[0]!), 'a dry run deletes nothing');

      const out = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], { env })).stdout);
      assert.equal(out.deleted.trees, onlyB.trees.length);
      assert.equal(out.deleted.chunks, onlyB.chunks.length);
      assert.ok(out.deleted.bytes > 400_000 * 0.9, `deleted ${out.deleted.bytes} bytes`);
      // Repacked: the space comes back. Each backup wrote one pack (default pack size), so B's own pack holds
      // nothing live and is removed whole: the drop is what only B held, within 5% (+ 4 KiB): pack header and
      // footer, the index segment entries (45 bytes per object) that stay until segments are merged, and the
      // tombstones and plan written and removed meanwhile.
      assert.equal(out.repack.done, true);
      assert.ok(out.repack.packsRemoved >= 1, JSON.stringify(out.repack));
      const drop = sizeBefore - diskBytes(repo);
      t.diagnostic(`size dropped by ${drop} bytes; only B held ${onlyBBytes}`);
      assert.ok(Math.abs(drop - onlyBBytes) <= onlyBBytes * 0.05 + 4096, `size dropped by ${drop}, only B held ${onlyBBytes}`);
      assert.ok(out.repack.bytesFreed > onlyBBytes * 0.95, `reported ${out.repack.bytesFreed} freed`);

      const trees = await ids(repo, 'tree');
      const chunks = await ids(repo, 'chunk');
      for (const t of onlyB.trees) assert.ok(!trees.has(t), `tree ${t} deleted`);
      for (const x of onlyB.chunks) assert.ok(!chunks.has(x), `chunk ${x} deleted`);
      for (const t of [...a.trees, ...c.trees]) assert.ok(trees.has(t));
      for (const x of [...a.chunks, ...c.chunks]) assert.ok(chunks.has(x));
      await obnamOk(['fsck'], { env });
      for (const i of [0, 2]) {
        const target = path.join(tmp.path, `restore${i}`);
        await obnamOk(['restore', snaps[i]!, target], { env });
        sameTree(path.join(target, src), copies[i]!);
      }
      // Nothing left to collect; the text report says what happened.
      const again = await obnamOk(['prune', '--exclusive'], { env });
      assert.match(again.stdout, /nothing to collect/);
      assert.match(again.stdout, /deleted 0 trees and 0 chunks/);
      assert.match(again.stdout, /within --max-unused 10%, nothing repacked/);
    } finally {
      await tmp.remove();
    }
  });

  it('without --exclusive, prune marks and waits for the grace period', async () => {
    const tmp = await tempDir();
    try {
      const repo = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'f'), prngBytes('f', 100_000));
      await obnamOk(['backup', src], { env });
      const r = await openTestRepo(repo, PASS);
      for await (const s of r.listSnapshotIds()) await r.deleteSnapshot(s);
      await r.close();
      const first = JSON.parse((await obnamOk(['prune', '--json'], { env })).stdout);
      assert.equal(first.marked.plans.length, 1);
      assert.equal(first.deleted.chunks, 0);
      assert.equal(first.waiting.length, 1);
      assert.ok(Date.parse(first.waiting[0].due) > Date.now() + 86_000_000);
      assert.ok((await ids(repo, 'chunk')).size > 0);
      // A second run finds the plan waiting and does not mark again.
      const second = JSON.parse((await obnamOk(['prune', '--json'], { env })).stdout);
      assert.equal(second.marked, undefined);
      assert.deepEqual(second.waiting.map((w: { plan: string }) => w.plan), first.marked.plans);
      // --exclusive sweeps the waiting plan now.
      const third = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], { env })).stdout);
      assert.equal(third.swept[0].plan, first.marked.plans[0]);
      assert.ok(third.deleted.chunks > 0);
      assert.equal((await ids(repo, 'chunk')).size, 0);
      assert.equal((await ids(repo, 'tree')).size, 0);
    } finally {
      await tmp.remove();
    }
  });

  it('rejects a bad --max-unused', async () => {
    const r = await obnam(['prune', '--max-unused', 'lots'], { env: { OBNAM_REPO: '/nonexistent', OBNAM_PASSPHRASE: PASS } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--max-unused must be a percentage/);
  });
});

describe('obnam upgrade', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'repo-v1.json'), 'utf8'));

  function copyFixture(tmp: string): { repo: string; env: Record<string, string> } {
    const repo = path.join(tmp, 'repo');
    fs.cpSync(path.join(ROOT, 'fixtures', 'repo-v1'), repo, { recursive: true });
    return { repo, env: { OBNAM_REPO: repo, OBNAM_PASSPHRASE: manifest.passphrase, HOME: tmp } };
  }

  it('prune refuses a version 1 repository naming obnam upgrade; upgrade converts it, is idempotent, and prune then works', async () => {
    const tmp = await tempDir();
    try {
      const { repo, env } = copyFixture(tmp.path);
      const refused = await obnam(['prune'], { env });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /format version 1.*obnam upgrade/);
      // A version 1 repository still backs up, and what is written stays version 1.
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'new.txt'), 'written by a version 2 client into a version 1 repository\n');
      await obnamOk(['backup', src], { env });
      for (const s of fs.readdirSync(path.join(repo, 'snapshots'))) assert.equal(fs.readFileSync(path.join(repo, 'snapshots', s))[40 + 4], 1);

      const up = await obnamOk(['upgrade'], { env });
      assert.match(up.stdout, /from format version 1 to 4/);
      assert.match(up.stdout, /no such client may have been writing to it meanwhile/);
      const cfg = fs.readFileSync(path.join(repo, 'config', CONFIG_ID));
      assert.equal(cfg[40 + 4], 4);
      assert.ok(!fs.existsSync(path.join(repo, 'gcplans', CONFIG_ID)), 'the staged config is removed');
      const again = await obnamOk(['upgrade'], { env });
      assert.match(again.stdout, /already has format version 4/);
      assert.ok(fs.readFileSync(path.join(repo, 'config', CONFIG_ID)).equals(cfg), 'a second upgrade changes nothing');
      const r = await openTestRepo(repo, manifest.passphrase);
      assert.equal(r.config.version, 4);
      assert.equal(r.config.gcGrace, 86400);
      assert.equal(r.config.bundleTarget, 65536);
      await r.close();
      await obnamOk(['fsck'], { env });
      const pruned = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], { env })).stdout);
      assert.equal(pruned.deleted.chunks, 0);
      await obnamOk(['restore', manifest.snapshot, path.join(tmp.path, 'out')], { env });
      assert.equal(fs.readFileSync(path.join(tmp.path, 'out', manifest.source, 'hello.txt'), 'utf8'), 'hello, obnam\n');
    } finally {
      await tmp.remove();
    }
  });

  for (const stop of ['staged', 'config deleted', 'config written'] as const) {
    it(`an upgrade interrupted after "${stop}" is finished by running it again`, async () => {
      const tmp = await tempDir();
      try {
        const { repo, env } = copyFixture(tmp.path);
        const v1 = fs.readFileSync(path.join(repo, 'config', CONFIG_ID));
        // Do the upgrade once elsewhere to get the staged and the final configs' bytes.
        const other = copyFixture(path.join(tmp.path, 'x'));
        fs.mkdirSync(path.join(tmp.path, 'x'), { recursive: true });
        fs.cpSync(repo, other.repo, { recursive: true });
        await obnamOk(['upgrade'], { env: other.env });
        const v2 = fs.readFileSync(path.join(other.repo, 'config', CONFIG_ID)).subarray(40); // the object inside the store's frame
        // The state the interrupted run left, built from a real staging step.
        const r = await openTestRepo(repo, manifest.passphrase);
        const { upgradedConfig, encodeConfig } = await import('../lib/format/config.js');
        const { sealObject } = await import('../lib/format/envelope.js');
        const staged = sealObject(r.keys.encryption, 'gcplan', CONFIG_ID, encodeConfig(upgradedConfig(r.config)), 1, undefined, 4);
        const store = Repository.storeForTests(r);
        await store.put('gcplan', CONFIG_ID, staged);
        if (stop !== 'staged') await store.delete('config', CONFIG_ID);
        if (stop === 'config written') await store.put('config', CONFIG_ID, v2);
        await r.close();
        if (stop === 'config deleted') {
          const list = await obnam(['list'], { env });
          assert.equal(list.code, 1);
          assert.match(list.stderr, /upgrade .* was interrupted; run obnam upgrade to finish it/);
        } else {
          assert.equal((await obnamOk(['list', '--json'], { env })).code, 0);
        }
        const up = await obnamOk(['upgrade'], { env });
        assert.match(up.stdout, /format version (1 to )?4/);
        assert.ok(!fs.existsSync(path.join(repo, 'gcplans', CONFIG_ID)));
        const after = await openTestRepo(repo, manifest.passphrase);
        assert.equal(after.config.version, 4);
        assert.equal((await after.listPlanIds()).length, 0);
        await after.close();
        assert.notDeepEqual(fs.readFileSync(path.join(repo, 'config', CONFIG_ID)), v1);
        await obnamOk(['fsck'], { env });
      } finally {
        await tmp.remove();
      }
    });
  }
});
