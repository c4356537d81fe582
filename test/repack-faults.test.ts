/**
 * kill -9 of a repack (obnam prune in a child process, on a real local
 * repository whose packs are half garbage) at random points of its repack
 * phase, over several seeds and repeatedly on one repository: after each
 * kill fsck passes and every kept snapshot restores byte for byte; the next
 * prune completes (taking over the dead repack's lock) and gives the space
 * back.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { fsck } from '../lib/fsck/engine.js';
import { Repository } from '../lib/repo/repository.js';
import { LocalStore } from '../lib/store/local.js';
import { obnamOk } from './helpers/cli.js';
import { diskBytes } from './helpers/disk.js';
import { killDuring } from './helpers/kill.js';
import { expectedContent, restoredContent } from './helpers/gc-harness.js';
import { prngBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';

const PASS = 'repack faults passphrase';

describe('a repack killed with SIGKILL', () => {
  it('at random points, several seeds, twice in a row: fsck passes, kept snapshots restore, the next prune completes and frees the space', async (t) => {
    const tmp = await tempDir();
    try {
      const template = path.join(tmp.path, 'template');
      const src = path.join(tmp.path, 'src');
      const envFor = (repo: string) => ({ OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path, OBNAM_PACK_SIZE: '65536' });
      const env = envFor(template);
      await obnamOk(['init'], { env });
      // W: a base directory. X: base and 120 files, kept and doomed ones interleaved (so every pack mixes them).
      // Y: base and the kept half. X is forgotten and swept: its half of the mixed packs is garbage.
      fs.mkdirSync(path.join(src, 'base'), { recursive: true });
      for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(src, 'base', `b${i}`), prngBytes(`base ${i}`, 20_000));
      await obnamOk(['backup', src], { env });
      const w = expectedContent(src);
      fs.mkdirSync(path.join(src, 'mixed'));
      for (let i = 0; i < 120; i++) fs.writeFileSync(path.join(src, 'mixed', `m${String(i).padStart(3, '0')}`), prngBytes(`mixed ${i}`, 18_000 + (i % 7) * 1000));
      await obnamOk(['backup', src], { env });
      for (let i = 1; i < 120; i += 2) fs.rmSync(path.join(src, 'mixed', `m${String(i).padStart(3, '0')}`));
      await obnamOk(['backup', src], { env });
      const y = expectedContent(src);
      const [sw, sx, sy] = JSON.parse((await obnamOk(['list', '--json'], { env })).stdout).map((s: { id: string }) => s.id);
      await obnamOk(['forget', sx], { env });
      // Sweep now, repack nothing yet (no limit is exceeded at 100%).
      await obnamOk(['prune', '--exclusive', '--max-unused', '100'], { env });
      const templateBytes = diskBytes(template);

      // fsck (full: every chunk read and checked) and both kept snapshots read back, through the library.
      const check = async (dir: string, label: string) => {
        const repo = await Repository.open(await LocalStore.open(dir), PASS);
        const pool = startRepoPool(repo, { size: 1 });
        try {
          assert.deepEqual((await fsck(repo, { pool })).problems, [], `${label}: fsck`);
          assert.deepEqual(await restoredContent(repo, sw), w, `${label}: the first snapshot restores`);
          assert.deepEqual(await restoredContent(repo, sy), y, `${label}: the last snapshot restores`);
        } finally {
          await pool.close();
          await repo.close();
        }
      };

      // How long an uninterrupted repack takes, to spread the kills over it.
      const probe = path.join(tmp.path, 'probe');
      fs.cpSync(template, probe, { recursive: true });
      const full = await killDuring(['prune', '--exclusive', '--max-unused', '0'], envFor(probe), /repacking: rewriting/, 60_000);
      assert.equal(full.code, 0, full.stderr);
      const span = Math.max(20, full.afterPhaseMs!);
      const freed = templateBytes - diskBytes(probe);
      assert.ok(freed > templateBytes * 0.3, `an uninterrupted repack freed ${freed} of ${templateBytes}`);
      fs.rmSync(probe, { recursive: true });

      let killed = 0;
      for (const seed of ['a', 'b', 'c']) {
        const repo = path.join(tmp.path, `repo-${seed}`);
        fs.cpSync(template, repo, { recursive: true });
        const r = prngBytes(`kill points ${seed}`, 8);
        for (let round = 0; round < 2; round++) {
          const delay = Math.floor((r.readUInt16BE(round * 2) / 65536) * span);
          const k = await killDuring(['prune', '--exclusive', '--max-unused', '0'], envFor(repo), /repacking: rewriting/, delay);
          t.diagnostic(`seed ${seed} round ${round}: kill at ${delay} of ${span} ms: ${k.killed ? 'killed' : `exited ${k.code}`}`);
          if (k.killed) killed++;
          else assert.equal(k.code, 0, k.stderr);
          await check(repo, `${seed}-${round}`);
        }
        // The next prune completes and gives the space back (a dead repack's lock is taken over).
        const done = JSON.parse((await obnamOk(['prune', '--exclusive', '--max-unused', '0', '--json'], { env: envFor(repo) })).stdout);
        assert.equal(done.repack.done, true);
        assert.ok(!fs.existsSync(path.join(repo, 'repack-lock')), 'no lock is left');
        await check(repo, `${seed}-done`);
        const left = diskBytes(repo);
        assert.ok(templateBytes - left > freed * 0.9, `seed ${seed}: ${templateBytes - left} freed (uninterrupted: ${freed})`);
        const again = JSON.parse((await obnamOk(['prune', '--exclusive', '--max-unused', '0', '--json'], { env: envFor(repo) })).stdout);
        assert.equal(again.repack.packsRemoved, 0, 'nothing left to repack');
        fs.rmSync(repo, { recursive: true });
      }
      assert.ok(killed >= 3, `${killed} of 6 runs were killed during the repack`);
    } finally {
      await tmp.remove();
    }
  });
});
