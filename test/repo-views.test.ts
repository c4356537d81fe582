/**
 * The repository's narrow views (lib/repo/views.ts) and the one tree walker
 * (lib/repo/treewalk.ts), on a real repository written by the backup
 * engine: the store is private, every view reads the same objects, and a
 * path resolves the same way for the commands (resolvePath) and the
 * file-system view, which reads the repository through its ObjectReader.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { backup } from '../lib/backup/engine.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { FsError } from '../lib/fsview/errors.js';
import { poolReader } from '../lib/fsview/objects.js';
import { FsView } from '../lib/fsview/view.js';
import { Repository } from '../lib/repo/repository.js';
import { lookupPath, resolvePath, snapshotPathComponents } from '../lib/repo/treewalk.js';
import type { ObjectReader, SnapshotCatalog } from '../lib/repo/views.js';
import { LocalStore } from '../lib/store/local.js';
import { TEST_KDF } from './helpers/kdf.js';
import { tempDir } from './helpers/tmp.js';

/** Compile-time proof (tsc fails otherwise): nothing outside the class reaches the repository's store. */
export function storeIsPrivate(repo: Repository): void {
  // @ts-expect-error the store is private: engines get the views
  void repo.store;
}

describe('repository views and the tree walker', () => {
  it('read the same objects through the repository and the pool, and resolve paths in one way for ls and the mount', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(path.join(src, 'dir', 'sub'), { recursive: true });
      fs.writeFileSync(path.join(src, 'dir', 'sub', 'big'), Buffer.alloc(300_000, 7));
      fs.writeFileSync(path.join(src, 'dir', 'small'), 'small\n');
      const dir = path.join(tmp.path, 'repo');
      const repo = await Repository.init(await LocalStore.create(dir), { type: 'local', dir }, 'pass', undefined, { kdf: TEST_KDF });
      const pool = startRepoPool(repo, { size: 1 });
      try {
        const { id, snapshot } = await backup(repo, { paths: [src], pool });
        const pooled = poolReader(pool);
        const readers: [string, ObjectReader][] = [['repository', repo], ['pool', pooled]];
        for (const [name, reader] of readers) {
          assert.deepEqual((await reader.getSnapshot(id)).tree, snapshot.tree, name);
          assert.deepEqual(await reader.getTree(snapshot.tree), await repo.getTree(snapshot.tree), name);
        }
        const ids: string[] = [];
        const catalog: SnapshotCatalog = repo;
        for await (const s of catalog.listSnapshotIds()) ids.push(s);
        assert.deepEqual(ids, [id]);

        const load = (t: string) => repo.getTree(t);
        const at = (p: string) => lookupPath(load, snapshot.tree, snapshotPathComponents(p));
        const root = await at('/');
        assert.ok(root.found && root.entry === undefined && root.tree?.id === snapshot.tree, 'the root is found without an entry');
        const big = await at(path.join(src, 'dir', 'sub', 'big'));
        assert.ok(big.found && big.entry?.type === 'file' && big.entry.size === 300_000 && big.tree === undefined);
        const sub = await at(path.join(src, 'dir', 'sub'));
        assert.ok(sub.found && sub.entry?.type === 'dir' && sub.tree?.id === sub.entry.subtree);
        const parts = snapshotPathComponents(path.join(src, 'dir', 'nothing', 'x'));
        assert.deepEqual(await at(path.join(src, 'dir', 'nothing', 'x')), { found: false, depth: parts.length - 2, notDir: false });
        assert.deepEqual(await at(path.join(src, 'dir', 'small', 'x')), { found: false, depth: parts.length - 2, notDir: true });
        await assert.rejects(resolvePath(load, snapshot.tree, snapshotPathComponents(path.join(src, 'dir', 'small', 'x'))), {
          code: 'NOT_FOUND',
          message: `${path.join(src, 'dir', 'small')} is not a directory`,
        });

        // The file-system view over the pool's reader beside the repository's listing finds the same entries.
        const view = await FsView.open({ ...pooled, listSnapshotIds: () => repo.listSnapshotIds() }, { refreshMs: Infinity });
        const inView = (p: string) => Buffer.from(`/ids/${id}${p}`);
        assert.equal((await view.getattr(inView(path.join(src, 'dir', 'sub', 'big')))).size, 300_000);
        const h = await view.open(inView(path.join(src, 'dir', 'small')));
        assert.equal((await view.read(h, 0, 100)).toString(), 'small\n');
        view.release(h);
        await assert.rejects(view.getattr(inView(path.join(src, 'dir', 'nothing', 'x'))), (e) => e instanceof FsError && e.code === 'NO_ENTRY');
        await assert.rejects(view.getattr(inView(path.join(src, 'dir', 'small', 'x'))), (e) => e instanceof FsError && e.code === 'NOT_DIR');
        // And so does a view over the repository itself: it is an ObjectReader and a snapshot catalog.
        const direct = await FsView.open(repo, { refreshMs: Infinity });
        assert.deepEqual(await direct.readdir(inView(path.join(src, 'dir'))).then((es) => es.map((e) => e.name.toString())), ['small', 'sub']);
      } finally {
        await pool.close();
        await repo.close();
      }
    } finally {
      await tmp.remove();
    }
  });
});
