/**
 * A backup whose parent snapshot has a damaged tree: the damage costs only
 * reading that directory's files again (the parent's other directories are
 * still used), and the node the backup writes for the unchanged directory,
 * which has the damaged one's id, replaces the damaged copy instead of being
 * skipped as already stored: the new snapshot (and the parent) restore byte
 * for byte. Before, the new snapshot named the damaged copy.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup } from '../lib/backup/engine.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { subtreeOf } from '../lib/format/tree.js';
import { fsck } from '../lib/fsck/engine.js';
import { Repository } from '../lib/repo/repository.js';
import { restore } from '../lib/restore/engine.js';
import { appendOnly } from '../lib/store/guard.js';
import { LocalStore } from '../lib/store/local.js';
import { TEST_KDF } from './helpers/kdf.js';
import { prngBytes } from './helpers/prng.js';
import { entryAt, flipByte } from './helpers/repo.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/tree.js';

const FILES = 6;

describe('backup with a damaged parent tree', () => {
  let tmp: TempDir;
  let src: string;
  let repo: Repository;

  before(async () => {
    tmp = await tempDir('obnam-damaged-parent-');
    src = path.join(tmp.path, 'src');
    for (const d of ['a', 'b']) {
      fs.mkdirSync(path.join(src, d), { recursive: true });
      // Large enough to be chunked (not bundled or inline): reading one again shows in filesRead.
      for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(src, d, `f${i}`), prngBytes(`${d} ${i}`, 20_000));
    }
    const dir = path.join(tmp.path, 'repo');
    repo = await Repository.init(await LocalStore.create(dir), { type: 'local', dir }, 'pass', undefined, { kdf: TEST_KDF });
  });
  after(async () => {
    await repo.close();
    await tmp.remove();
  });

  it('reads again only the files of the damaged directory, and the new snapshot restores', async () => {
    const pool = startRepoPool(repo, { size: 1 });
    try {
      const first = await backup(repo, { paths: [src], pool });
      const damaged = subtreeOf(await entryAt(repo, path.join(src, 'a')))!;
      await flipByte(repo, 'tree', damaged.id);
      const second = await backup(repo, { paths: [src], pool });
      assert.equal(second.snapshot.summary.filesRead, FILES, 'the files of a/ are read again, those of b/ are taken from the parent');
      assert.equal(second.snapshot.summary.newChunks, 0, 'their content is stored already');
      // The damaged copy was replaced: both snapshots name the same node, and both restore; fsck finds nothing.
      assert.deepEqual((await fsck(repo, { pool })).problems, []);
      for (const [name, id] of [['out1', first.id], ['out2', second.id]] as const) {
        const target = path.join(tmp.path, name);
        fs.mkdirSync(target);
        await restore(repo, await repo.getSnapshot(id), { target, pool });
        assertSameTree(src, path.join(target, src));
      }
    } finally {
      await pool.close();
    }
  });

  it('where the store forbids deletion (append-only), the backup warns that its snapshot names the damaged node, and completes', async () => {
    const dir = path.join(tmp.path, 'repo-append');
    const setup = await Repository.init(await LocalStore.create(dir), { type: 'local', dir }, 'pass', undefined, { kdf: TEST_KDF });
    let pool = startRepoPool(setup, { size: 1 });
    try {
      await backup(setup, { paths: [src], pool });
      await flipByte(setup, 'tree', subtreeOf(await entryAt(setup, path.join(src, 'b')))!.id);
    } finally {
      await pool.close();
      await setup.close();
    }
    const guarded = await Repository.open(appendOnly(await LocalStore.open(dir)), 'pass');
    pool = startRepoPool(guarded, { size: 1 });
    try {
      const warnings: string[] = [];
      const r = await backup(guarded, { paths: [src], pool, onWarning: (_p, m) => warnings.push(m) });
      assert.equal(r.snapshot.summary.filesRead, FILES);
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.match(warnings[0]!, /damaged and cannot be replaced here .*append-only.*run obnam fsck/);
      assert.equal(r.snapshot.summary.errors, 1);
    } finally {
      await pool.close();
      await guarded.close();
    }
  });
});
