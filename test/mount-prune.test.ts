/**
 * A mount and garbage collection (issue 9: "a file open in a forgotten
 * snapshot keeps reading until the sweep removes its chunks, then fails with
 * EIO, never with wrong bytes"). The real FUSE file system, mounted through
 * the library in a child process with a clock the test moves; forget and
 * prune are the real CLI. A file is opened in a snapshot, the snapshot is
 * forgotten (another one stays): the listing drops it, the open file keeps
 * reading the right bytes. After `obnam prune --exclusive` has swept its
 * chunks, reads of parts the kernel has not cached fail with EIO within one
 * refresh interval — also parts the view had fetched ahead into its own
 * cache — while the other snapshot reads as before.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as pause } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { ChunkRef } from '../lib/format/tree.js';
import { Repository } from '../lib/repo/repository.js';
import { resolvePath } from '../lib/repo/treewalk.js';
import { openStore } from '../lib/store/open.js';
import { obnamOk } from './helpers/cli.js';
import {
  assertErrno,
  backup,
  cleanupMount,
  fuseAvailable,
  initRepo,
  inSnapshot,
  LibraryMountProcess,
  mountedAt,
  PASSPHRASE,
  repoEnv,
  startLibraryMount,
} from './helpers/mount.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const REFRESH_MS = 5000;

describe('a mount and garbage collection', { skip: !fuseAvailable && 'no /dev/fuse' }, () => {
  let tmp: TempDir;
  let data: string;
  let repo: string;
  let mnt: string;
  let m: LibraryMountProcess | undefined;

  before(async () => {
    tmp = await tempDir();
    data = path.join(tmp.path, 'data');
    repo = path.join(tmp.path, 'repo');
    mnt = path.join(tmp.path, 'mnt');
    await fs.mkdir(mnt);
    await fs.mkdir(data);
    await initRepo(repo);
  });

  after(async () => {
    await cleanupMount(m, mnt);
    assert.equal(await mountedAt(mnt), undefined, 'nothing left mounted');
    await tmp?.remove();
  });

  /** The chunks of a file in a snapshot (with the library). */
  async function chunksOf(id: string, file: string): Promise<readonly ChunkRef[]> {
    const r = await Repository.open(await openStore({ type: 'local', dir: repo }), PASSPHRASE);
    try {
      const s = await r.getSnapshot(id);
      const parts = file.slice(1).split('/').map((p) => Buffer.from(p));
      return (await resolvePath((t) => r.getTree(t), s.tree, parts)).entry!.chunks!;
    } finally {
      await r.close();
    }
  }

  it('a file open in a forgotten snapshot reads the right bytes until prune sweeps its chunks, then fails with EIO, never with other bytes', { timeout: 180_000 }, async () => {
    const common = path.join(data, 'common.txt');
    const onlyFile = path.join(data, 'only.bin');
    await fs.writeFile(common, 'in both snapshots\n');
    // Random bytes: no chunk of only.bin is shared with the snapshot that stays.
    const only = randomBytes(24 * 1024 * 1024);
    await fs.writeFile(onlyFile, only);
    const forgotten = await backup(repo, data);
    await fs.rm(onlyFile);
    await fs.writeFile(path.join(data, 'second.txt'), 'only in the second\n');
    const kept = await backup(repo, data);
    const chunks = await chunksOf(forgotten, onlyFile);
    assert.ok(chunks.length >= 16, `only.bin has ${chunks.length} chunks`);
    const starts = chunks.map((_, i) => chunks.slice(0, i).reduce((n, c) => n + c.length, 0));

    m = await startLibraryMount(repo, mnt, { refreshMs: REFRESH_MS, manualClock: true });
    const ids = async () => (await fs.readdir(path.join(mnt, 'ids'))).sort();
    assert.deepEqual(await ids(), [forgotten, kept].sort());
    const fh = await fs.open(inSnapshot(path.join(mnt, 'ids', forgotten), onlyFile), 'r');
    try {
      const readAt = async (offset: number) => {
        const buf = Buffer.alloc(4096);
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        return buf.subarray(0, bytesRead);
      };
      const inChunk = (i: number) => starts[i]! + 100;
      const expectRight = async (i: number, what: string) => {
        const at = inChunk(i);
        assert.ok((await readAt(at)).equals(only.subarray(at, at + 4096)), what);
      };
      // A read at the start: the view fetches the next chunks ahead into its cache.
      await expectRight(0, 'the first read');
      const ahead = starts[4]!;
      for (let t = 0; (await m.stats()).view.cache.bytes < ahead; t++) {
        assert.ok(t < 400, 'the chunks after the first are fetched ahead');
        await pause(25);
      }

      // Forgotten: the listing drops it after the refresh interval, the other snapshot stays.
      await obnamOk(['forget', forgotten], { env: repoEnv(repo) });
      await m.advance(REFRESH_MS);
      assert.deepEqual(await ids(), [kept], 'the forgotten snapshot is not listed');
      await assert.rejects(fs.stat(inSnapshot(path.join(mnt, 'ids', forgotten), common)), { code: 'ENOENT' });
      // The open file keeps reading: a chunk never fetched, and one the view fetched ahead.
      await expectRight(Math.floor(chunks.length / 2), 'a read of the open file after the forget (a chunk not fetched before)');
      await expectRight(2, 'a read of the open file after the forget (a chunk fetched ahead)');

      // Prune sweeps its chunks (and repacks, where the store does).
      const pruned = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], { env: repoEnv(repo) })).stdout) as {
        deleted: { chunks: number };
      };
      assert.ok(pruned.deleted.chunks >= chunks.length, JSON.stringify(pruned));
      // Within one refresh interval (no listing needed), reads that need a swept chunk fail with EIO.
      await m.advance(REFRESH_MS);
      await assertErrno(readAt(inChunk(3)), 'EIO', 'a chunk the view had fetched ahead, swept');
      await assertErrno(readAt(inChunk(chunks.length - 1)), 'EIO', 'a chunk never fetched, swept');
      await assertErrno(readAt(inChunk(Math.floor(chunks.length / 2) + 2)), 'EIO', 'another chunk never fetched, swept');
      assert.match(m.stderr(), new RegExp(`read .*only\\.bin.*chunk (${chunks.map((c) => c.id).join('|')})`));
    } finally {
      await fh.close();
    }
    // The snapshot that stays reads as before.
    assert.equal(await fs.readFile(inSnapshot(path.join(mnt, 'ids', kept), common), 'utf8'), 'in both snapshots\n');
    assert.equal(await fs.readFile(inSnapshot(path.join(mnt, 'ids', kept), path.join(data, 'second.txt')), 'utf8'), 'only in the second\n');
    await assert.rejects(fs.stat(inSnapshot(path.join(mnt, 'ids', kept), onlyFile)), { code: 'ENOENT' });
  });
});
