/**
 * Packed stores on a disk that fills up (root only: a small tmpfs): no flush
 * acknowledges an object that is not stored whole, an object put is never
 * forgotten (the pack that could not be written is kept and written by a
 * later flush), and once space is freed every object reads back byte for
 * byte and scrub finds nothing. Runs for the local directory store flushing
 * by journal (obnam-server), finishing packs (the obnam client), and the
 * packed store holding packs in memory (as on S3) on a local blob backend.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { LocalBlobBackend } from '../lib/blob/local.js';
import { LocalStore } from '../lib/store/local.js';
import { PackedStore } from '../lib/store/packed.js';
import type { ObjectStore } from '../lib/store/store.js';
import { tempDir } from './helpers/tmp.js';

const isRoot = process.getuid?.() === 0;
const newId = () => randomBytes(32).toString('hex');

type Opened = ObjectStore & { flush(): Promise<void>; close(): Promise<void>; scrub(): AsyncIterable<unknown> };
const kinds: { name: string; open: (dir: string) => Promise<Opened> }[] = [
  { name: 'local store flushing by journal', open: (dir) => LocalStore.create(dir, { journalFlush: true, packSize: 1 << 20 }) },
  { name: 'local store finishing packs', open: (dir) => LocalStore.create(dir, { packSize: 1 << 20 }) },
  { name: 'packed store in memory on local blobs', open: async (dir) => PackedStore.create(await LocalBlobBackend.create(dir), { packSize: 1 << 20 }) },
];

describe('packed stores on a disk that fills up', { skip: !isRoot && 'needs root to mount a small tmpfs' }, () => {
  for (const k of kinds) {
    it(`${k.name}: nothing unstored is acknowledged, nothing put is lost, and all reads back once space is freed`, async () => {
      const tmp = await tempDir('obnam-fill-');
      const mnt = path.join(tmp.path, 'mnt');
      await fs.mkdir(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt]);
      try {
        const dir = path.join(mnt, 'store');
        const s = await k.open(dir);
        // Leave about 700 KiB, then store 40 objects of 60-100 KiB (odd sizes: writes end mid-page).
        const { bavail, bsize } = await fs.statfs(mnt);
        const ballast = path.join(mnt, 'ballast');
        await fs.writeFile(ballast, Buffer.alloc(Math.max(0, bavail * bsize - 700 * 1024), 1));
        const objects = new Map<string, Buffer>();
        const acknowledged: string[] = [];
        let failures = 0;
        for (let i = 0; i < 40; i++) {
          const id = newId();
          const data = randomBytes(60_000 + ((i * 7919) % 40_000));
          try {
            if (await s.put('chunk', id, data)) objects.set(id, data);
            await s.flush();
            acknowledged.push(...objects.keys());
          } catch (e) {
            failures++;
            assert.ok(['NO_SPACE', 'IO'].includes((e as { code?: string }).code ?? ''), `a clear error: ${String(e)}`);
          }
        }
        assert.ok(failures > 0, 'the disk did fill up');
        // Everything put is still there, in this process, before any space is freed.
        for (const [id, data] of objects) assert.deepEqual(Buffer.from(await s.get('chunk', id)), data, `object ${id} read back before freeing`);
        await fs.rm(ballast);
        await s.flush();
        await s.close();
        const again = await LocalBlobBackend.create(dir).then((b) => (k.name.startsWith('packed') ? PackedStore.open(b) : LocalStore.open(dir)));
        for (const [id, data] of objects) assert.deepEqual(Buffer.from(await again.get('chunk', id)), data, `object ${id} after reopening`);
        assert.ok(acknowledged.length > 0);
        const problems = [];
        for await (const p of again.scrub()) problems.push(p);
        assert.deepEqual(problems, []);
        await again.close();
      } finally {
        execFileSync('umount', ['-l', mnt]);
        await tmp.remove();
      }
    });
  }
});
