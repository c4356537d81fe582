/**
 * Space really comes back (issue 9, "Deletion"): forgetting all but the last
 * of five snapshots of a mutated tree and pruning (through the real CLI, on a
 * local repository) leaves a repository within 10% of the size of a fresh one
 * holding only that snapshot; the last snapshot restores byte for byte and
 * fsck passes. The same proofs at library level on the packed store (a local
 * blob backend): forgetting one of three snapshots gives back what only it
 * held, and forgetting all but the last leaves a repository within 10% of a
 * fresh one.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { backup } from '../lib/backup/engine.js';
import { LocalBlobBackend } from '../lib/blob/local.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { newConfig } from '../lib/format/config.js';
import { fsck } from '../lib/fsck/engine.js';
import { prune } from '../lib/gc/prune.js';
import { Repository } from '../lib/repo/repository.js';
import { addReachable } from '../lib/repo/treewalk.js';
import { PackedStore } from '../lib/store/packed.js';
import { IdSet } from '../lib/util/id-map.js';
import { ownerTag } from '../lib/util/owner.js';
import { obnamOk } from './helpers/cli.js';
import { diskBytes } from './helpers/disk.js';
import { expectedContent, restoredContent } from './helpers/gc-harness.js';
import { TEST_KDF } from './helpers/kdf.js';
import { prngBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';

const PASS = 'prune repack passphrase';

/** Generation `g` of a tree of 12 files: each generation rewrites three, appends to one, adds one and deletes one. */
function mutate(src: string, g: number): void {
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  if (g === 0) for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(src, i % 2 ? 'sub' : '', `f${i}`), prngBytes(`f${i} 0`, 60_000));
  else {
    for (let k = 0; k < 3; k++) {
      const i = (g * 3 + k) % 12;
      fs.writeFileSync(path.join(src, i % 2 ? 'sub' : '', `f${i}`), prngBytes(`f${i} ${g}`, 60_000));
    }
    fs.appendFileSync(path.join(src, 'sub', 'f1'), prngBytes(`append ${g}`, 5_000));
    fs.rmSync(path.join(src, `new${g - 1}`), { force: true });
  }
  fs.writeFileSync(path.join(src, `new${g}`), prngBytes(`new ${g}`, 30_000));
}

function sameFiles(restored: string, original: string): void {
  const list = (d: string) => fs.readdirSync(d, { recursive: true, encoding: 'utf8' }).sort();
  assert.deepEqual(list(restored), list(original));
  for (const f of list(original)) {
    const p = path.join(original, f);
    if (fs.lstatSync(p).isFile()) assert.ok(fs.readFileSync(p).equals(fs.readFileSync(path.join(restored, f))), f);
  }
}

describe('prune gives the space back (repacking)', () => {
  it('CLI: a prune while another repack holds the lock sweeps, says the space comes back later, exits 0; the next prune gives it back', async () => {
    const tmp = await tempDir();
    try {
      const repo = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      for (let g = 0; g < 3; g++) {
        mutate(src, g);
        await obnamOk(['backup', src], { env });
      }
      await obnamOk(['forget', '--keep-last', '1'], { env });
      // A live repacker's lock: this test process's owner tag.
      fs.writeFileSync(path.join(repo, 'repack-lock'), ownerTag());
      const before = diskBytes(repo);
      const r = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], { env })).stdout);
      assert.ok(r.deleted.chunks > 0, 'the sweep ran');
      assert.equal(r.repack.done, false);
      assert.match(r.repack.note, /another repack .* is running/);
      assert.ok(diskBytes(repo) >= before - 4096, 'nothing repacked');
      fs.rmSync(path.join(repo, 'repack-lock'));
      const again = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], { env })).stdout);
      assert.equal(again.repack.done, true);
      assert.ok(again.repack.bytesFreed > 0 && diskBytes(repo) < before, `freed ${again.repack.bytesFreed}`);
      await obnamOk(['fsck'], { env });
    } finally {
      await tmp.remove();
    }
  });

  it('CLI, local repository: forget all but the last of five snapshots of a mutated tree, prune: within 10% of a fresh repository', async (t) => {
    const tmp = await tempDir();
    try {
      const repo = path.join(tmp.path, 'repo');
      const fresh = path.join(tmp.path, 'fresh');
      const src = path.join(tmp.path, 'src');
      const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      for (let g = 0; g < 5; g++) {
        mutate(src, g);
        await obnamOk(['backup', src], { env });
      }
      const before = diskBytes(repo);
      await obnamOk(['forget', '--keep-last', '1'], { env });
      const text = (await obnamOk(['prune', '--exclusive'], { env })).stdout;
      const m = /unused \(([\d.]+)%\): rewrote (\d+) packs and removed (\d+), copying (\d+) objects; ([\d.]+ \w+) freed/.exec(text);
      assert.ok(m && Number(m[3]) > 0, text);
      const after = diskBytes(repo);
      // A dry run now finds nothing more to do, and says so.
      const dry = JSON.parse((await obnamOk(['prune', '--dry-run', '--json'], { env })).stdout);
      assert.equal(dry.repack.done, true);
      assert.equal(dry.repack.packsRemoved, 0);
      assert.equal(diskBytes(repo), after);
      const freshEnv = { ...env, OBNAM_REPO: fresh };
      await obnamOk(['init'], { env: freshEnv });
      await obnamOk(['backup', src], { env: freshEnv });
      const freshBytes = diskBytes(fresh);
      t.diagnostic(`before ${before} bytes, after prune ${after}, a fresh repository ${freshBytes}`);
      assert.ok(Math.abs(after - freshBytes) <= freshBytes * 0.1, `after prune ${after} bytes (before ${before}), a fresh repository ${freshBytes}`);
      assert.ok(after < before * 0.6, `${after} of ${before}`);
      await obnamOk(['fsck'], { env });
      const target = path.join(tmp.path, 'restore');
      await obnamOk(['restore', 'latest', target], { env });
      sameFiles(path.join(target, src), src);
    } finally {
      await tmp.remove();
    }
  });

  it('library, packed store on a local blob backend: forget one of three, then all but the last', async (t) => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      const open = async (d: string) => PackedStore.open(new LocalBlobBackend(d));
      const init = async (d: string) => {
        const r = await Repository.init(await PackedStore.create(await LocalBlobBackend.create(d)), { type: 'local', dir: d }, PASS, newConfig(), { kdf: TEST_KDF });
        await r.close();
      };
      const run = async <T>(d: string, f: (repo: Repository<PackedStore>) => Promise<T>): Promise<T> => {
        const repo = (await Repository.open(await open(d), PASS)) as Repository<PackedStore>;
        try {
          return await f(repo);
        } finally {
          await repo.close();
        }
      };
      const backupOnce = (d: string) =>
        run(d, async (repo) => {
          const pool = startRepoPool(repo, { size: 1, perWorker: 2 });
          try {
            return (await backup(repo, { paths: [src], pool, hostname: 'h', username: 'u' })).id;
          } finally {
            await pool.close();
          }
        });
      const pruneNow = (d: string) => run(d, (repo) => prune(repo, { exclusive: true, repack: repo.repacker() }));
      const check = (d: string, ids: string[], expected: Map<string, string>[]) =>
        run(d, async (repo) => {
          const pool = startRepoPool(repo, { size: 1 });
          try {
            assert.deepEqual((await fsck(repo, { pool })).problems, []);
          } finally {
            await pool.close();
          }
          for (const [i, id] of ids.entries()) assert.deepEqual(await restoredContent(repo, id), expected[i], `snapshot ${i} restores`);
        });

      await init(dir);
      // Three snapshots, each with 300 KB of its own besides a shared file.
      fs.mkdirSync(src, { recursive: true });
      fs.writeFileSync(path.join(src, 'shared'), prngBytes('shared', 200_000));
      const ids: string[] = [];
      const contents: Map<string, string>[] = [];
      for (let i = 0; i < 3; i++) {
        fs.writeFileSync(path.join(src, 'own'), prngBytes(`own ${i}`, 300_000));
        ids.push(await backupOnce(dir));
        contents.push(expectedContent(src));
      }
      const onlyB = await run(dir, async (repo) => {
        const reach = async (id: string) => {
          const set = { trees: new IdSet(), chunks: new IdSet() };
          await addReachable((t) => repo.getTreeRefs(t), (await repo.getSnapshot(id)).tree, set);
          return set;
        };
        const [a, b, c] = [await reach(ids[0]!), await reach(ids[1]!), await reach(ids[2]!)];
        let bytes = (await repo.storedSize('snapshot', ids[1]!)) + 40;
        for (const t of b.trees) if (!a.trees.has(t) && !c.trees.has(t)) bytes += (await repo.storedSize('tree', t)) + 146;
        for (const x of b.chunks) if (!a.chunks.has(x) && !c.chunks.has(x)) bytes += (await repo.storedSize('chunk', x)) + 146;
        await repo.deleteSnapshot(ids[1]!);
        return bytes;
      });
      const before = diskBytes(dir);
      const r1 = await pruneNow(dir);
      assert.equal(r1.repack.done, true);
      const drop = before - diskBytes(dir);
      // One pack per backup: B's pack holds nothing live and goes whole (tolerance as in prune-cli.test.ts).
      t.diagnostic(`packed store: dropped ${drop} bytes, only B held ${onlyB}`);
      assert.ok(Math.abs(drop - onlyB) <= onlyB * 0.05 + 4096, `dropped ${drop}, only B held ${onlyB}`);
      await check(dir, [ids[0]!, ids[2]!], [contents[0]!, contents[2]!]);

      // Then a mutated history of five more; keep only the last.
      for (let g = 0; g < 5; g++) {
        mutate(src, g);
        ids.push(await backupOnce(dir));
      }
      const last = ids[ids.length - 1]!;
      await run(dir, async (repo) => {
        for (const id of ids) if (id !== last && id !== ids[1]) await repo.deleteSnapshot(id);
      });
      const r2 = await pruneNow(dir);
      assert.ok((r2.repack.packsRemoved ?? 0) > 0);
      const fresh = path.join(tmp.path, 'fresh');
      await init(fresh);
      await backupOnce(fresh);
      const after = diskBytes(dir);
      const freshBytes = diskBytes(fresh);
      t.diagnostic(`packed store: after prune ${after} bytes, a fresh repository ${freshBytes}`);
      assert.ok(Math.abs(after - freshBytes) <= freshBytes * 0.1, `after prune ${after} bytes, a fresh repository ${freshBytes}`);
      await check(dir, [last], [expectedContent(src)]);
    } finally {
      await tmp.remove();
    }
  });
});
