/**
 * The backup engine through its library interface, for cases the CLI cannot
 * stage: a file that disappears between the directory scan and the read.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { backup } from '../lib/backup/engine.js';
import { Repository } from '../lib/repo/repository.js';
import { resolvePath, snapshotPathComponents } from '../lib/repo/treewalk.js';
import { LocalStore } from '../lib/store/local.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { TEST_KDF } from './helpers/kdf.js';
import { tempDir } from './helpers/tmp.js';

describe('backup engine', () => {
  it('when the first link of a hardlinked file vanishes before it is read, the next link carries the content', async () => {
    const tmp = await tempDir();
    try {
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'a'), 'shared content\n'.repeat(5000));
      fs.linkSync(path.join(src, 'a'), path.join(src, 'b'));
      fs.linkSync(path.join(src, 'a'), path.join(src, 'c'));
      const dir = path.join(tmp.path, 'repo');
      const repo = await Repository.init(await LocalStore.create(dir), { type: 'local', dir }, 'pass', undefined, { kdf: TEST_KDF });
      const pool = startRepoPool(repo, { size: 1 });
      const warnings: string[] = [];
      try {
        const r = await backup(repo, {
          paths: [src],
          pool,
          onWarning: (p, m) => warnings.push(`${p}: ${m}`),
          onFileRead: (p) => {
            if (p === path.join(src, 'a')) fs.unlinkSync(p); // gone before its content is read
          },
        });
        const load = (id: string) => repo.getTree(id);
        const at = async (name: string) => (await resolvePath(load, r.snapshot.tree, snapshotPathComponents(path.join(src, name)))).entry;
        await assert.rejects(at('a'), { code: 'NOT_FOUND' });
        const b = (await at('b'))!;
        const c = (await at('c'))!;
        assert.equal(b.type, 'file', 'b holds the content now');
        assert.equal(b.size, 'shared content\n'.length * 5000);
        assert.equal(c.type, 'hardlink');
        assert.equal(c.link!.toString(), path.join(src, 'b').slice(1));
        assert.deepEqual(warnings, [], 'a vanished file is not an error');
      } finally {
        await pool.close();
        await repo.close();
      }
    } finally {
      await tmp.remove();
    }
  });
});
