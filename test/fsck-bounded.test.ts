/**
 * fsck holds a bounded working set whatever the repository's size: it reads
 * a few directories at a time (not every directory of a snapshot at once,
 * each holding its decoded tree until its whole subtree is checked) and
 * keeps a bounded number of object checks in flight. Counted through the
 * engine's trace hook, not by memory use; and it still finds and attributes
 * damage deep in a wide tree.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backup } from '../lib/backup/engine.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { fsck, FsckTrace } from '../lib/fsck/engine.js';
import { Repository } from '../lib/repo/repository.js';
import { LocalStore } from '../lib/store/local.js';
import { flipByte, entryAt } from './helpers/repo.js';
import { TEST_KDF } from './helpers/kdf.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const DIRS = 120;

describe('fsck working set', () => {
  let tmp: TempDir;
  let src: string;
  let repo: Repository;

  before(async () => {
    tmp = await tempDir();
    src = path.join(tmp.path, 'src');
    // DIRS directories, each with a subdirectory, each holding a file too large to inline (a chunk of its own).
    for (let d = 0; d < DIRS; d++) {
      const dir = path.join(src, `d${d}`, 'sub');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'f.bin'), randomBytes(20_000));
      fs.writeFileSync(path.join(src, `d${d}`, 'note.txt'), `small ${d}\n`);
    }
    const dir = path.join(tmp.path, 'repo');
    repo = await Repository.init(await LocalStore.create(dir), { type: 'local', dir }, 'pass', undefined, { kdf: TEST_KDF });
    const pool = startRepoPool(repo, { size: 1 });
    try {
      await backup(repo, { paths: [src], pool });
    } finally {
      await pool.close();
    }
  });
  after(async () => {
    await repo.close();
    await tmp.remove();
  });

  async function run(quick: boolean): Promise<{ report: Awaited<ReturnType<typeof fsck>>; trace: FsckTrace }> {
    const trace: FsckTrace = { peakDirectoriesHeld: 0, peakChecksInFlight: 0 };
    const pool = startRepoPool(repo, { size: 1 });
    try {
      return { report: await fsck(repo, { pool, quick, trace }), trace };
    } finally {
      await pool.close();
    }
  }

  it('reads a few directories at a time and bounds the checks in flight, in full and quick mode', async () => {
    for (const quick of [false, true]) {
      const { report, trace } = await run(quick);
      assert.deepEqual(report.problems, []);
      assert.ok(report.trees > 2 * DIRS, `all ${2 * DIRS} directories were read (${report.trees})`);
      assert.ok(report.chunks >= DIRS, `every chunk was checked (${report.chunks})`);
      assert.ok(trace.peakDirectoriesHeld >= 1 && trace.peakDirectoriesHeld <= 8, `directories held at once: ${trace.peakDirectoriesHeld} (quick: ${quick})`);
      assert.ok(trace.peakChecksInFlight >= 1 && trace.peakChecksInFlight <= 64, `checks in flight at once: ${trace.peakChecksInFlight} (quick: ${quick})`);
    }
  });

  it('still names the path a damaged chunk deep in the tree breaks', async () => {
    const victim = path.join(src, `d${DIRS - 7}`, 'sub', 'f.bin');
    const chunk = (await entryAt(repo, victim)).chunks![0]!.id;
    await flipByte(repo, 'chunk', chunk);
    const { report, trace } = await run(false);
    assert.equal(report.problems.length, 1);
    assert.deepEqual([report.problems[0]!.id, report.problems[0]!.paths], [chunk, [victim]]);
    assert.equal(report.problems[0]!.snapshots.length, 1);
    assert.ok(trace.peakDirectoriesHeld <= 8);
  });
});
