/**
 * A mounted repository follows the repository without a remount: backups
 * made while it is mounted appear in snapshots/, ids/ and latest once the
 * refresh interval has passed (not before: the list is read at most once per
 * interval), deleted snapshots disappear, a file open in a deleted snapshot
 * keeps reading until its chunks are gone and then fails with EIO, and a
 * damaged snapshot object is left out and named. The real FUSE file system,
 * mounted through the library in a child process with a clock the test moves
 * (so nothing here depends on timing); one test runs the real `obnam mount`
 * with its default interval. Every test leaves nothing mounted.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChunkRef } from '../lib/format/tree.js';
import { Repository } from '../lib/repo/repository.js';
import { resolvePath } from '../lib/repo/treewalk.js';
import { openStore } from '../lib/store/open.js';
import {
  assertErrno,
  backup,
  cleanupMount,
  corruptStoredObject,
  fuseAvailable,
  initRepo,
  inSnapshot,
  LibraryMountProcess,
  mountedAt,
  MountProcess,
  PASSPHRASE,
  startLibraryMount,
  startMount,
} from './helpers/mount.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const REFRESH_MS = 5000;

const sorted = (a: string[]) => [...a].sort();

describe('a mount follows the repository', { skip: !fuseAvailable && 'no /dev/fuse' }, () => {
  let tmp: TempDir;
  let data: string;
  let repo: string;
  let mnt: string;
  let id1: string;

  /** Backs up `data` with which.txt saying `label`. */
  async function backupLabelled(label: string): Promise<string> {
    await fs.writeFile(path.join(data, 'which.txt'), `${label}\n`);
    return backup(repo, data);
  }

  /** The chunks of a file in a snapshot (with the library). */
  async function chunksOf(id: string, rel: string): Promise<readonly ChunkRef[]> {
    const spec = { type: 'local' as const, dir: repo };
    const r = await Repository.open(await openStore(spec), PASSPHRASE);
    try {
      const s = await r.getSnapshot(id);
      const parts = path.resolve(data, rel).slice(1).split('/').map((p) => Buffer.from(p));
      return (await resolvePath((t) => r.getTree(t), s.tree, parts)).entry!.chunks!;
    } finally {
      await r.close();
    }
  }

  /** Does something with the repository's store, as another program would. */
  async function withStore<T>(f: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
    const store = await openStore({ type: 'local', dir: repo });
    try {
      return await f(store);
    } finally {
      await store.close();
    }
  }

  const latestLabel = async () => (await fs.readFile(inSnapshot(path.join(mnt, 'latest'), path.join(data, 'which.txt')), 'utf8')).trim();

  before(async () => {
    tmp = await tempDir();
    data = path.join(tmp.path, 'data');
    repo = path.join(tmp.path, 'repo');
    mnt = path.join(tmp.path, 'mnt');
    await fs.mkdir(mnt);
    await fs.mkdir(data);
    await fs.writeFile(path.join(data, 'common.txt'), 'in every snapshot\n');
    await initRepo(repo);
    id1 = await backupLabelled('one');
  });

  after(async () => {
    await tmp?.remove();
  });

  describe('mounted through the library, with a clock the test moves', () => {
    let m: LibraryMountProcess | undefined;
    let id2: string;
    let id3: string;
    const ids = () => fs.readdir(path.join(mnt, 'ids'));

    before(async () => {
      m = await startLibraryMount(repo, mnt, { refreshMs: REFRESH_MS, manualClock: true });
    });

    after(async () => {
      await cleanupMount(m, mnt);
      assert.equal(await mountedAt(mnt), undefined, 'nothing left mounted');
    });

    it('a backup made while mounted appears in snapshots/, ids/ and latest once the interval has passed', async () => {
      assert.deepEqual(await ids(), [id1]);
      assert.equal(await latestLabel(), 'one');
      id2 = await backupLabelled('two');
      // Within the interval the list is not read again.
      assert.deepEqual(await ids(), [id1], 'read again before the interval passed');
      assert.equal((await fs.readdir(path.join(mnt, 'snapshots'))).length, 1);
      await m!.advance(REFRESH_MS - 1);
      assert.deepEqual(await ids(), [id1], 'read again before the interval passed');
      await m!.advance(1);
      assert.deepEqual(sorted(await ids()), sorted([id1, id2]));
      assert.equal((await fs.readdir(path.join(mnt, 'snapshots'))).length, 2);
      assert.equal(await latestLabel(), 'two', 'latest follows the newest');
      assert.equal(await fs.readFile(inSnapshot(path.join(mnt, 'ids', id2), path.join(data, 'common.txt')), 'utf8'), 'in every snapshot\n');
      // latest names the newest under snapshots/.
      const target = await fs.readlink(path.join(mnt, 'latest'));
      assert.equal(await fs.readFile(inSnapshot(path.join(mnt, target), path.join(data, 'which.txt')), 'utf8'), 'two\n');
    });

    it('a deleted snapshot disappears; a file open in it keeps reading, then fails with EIO once its chunks are gone', async () => {
      // A snapshot with a file of its own (random bytes: no chunk is shared with another snapshot).
      const only = randomBytes(24 * 1024 * 1024);
      await fs.writeFile(path.join(data, 'only3.bin'), only);
      id3 = await backupLabelled('three');
      await fs.rm(path.join(data, 'only3.bin'));
      await m!.advance(REFRESH_MS);
      assert.deepEqual(sorted(await ids()), sorted([id1, id2, id3]));
      assert.equal(await latestLabel(), 'three');
      const chunks = await chunksOf(id3, 'only3.bin');
      assert.ok(chunks.length >= 6, `only3.bin has ${chunks.length} chunks`);
      const starts = chunks.map((_, i) => chunks.slice(0, i).reduce((n, c) => n + c.length, 0));
      const fh = await fs.open(inSnapshot(path.join(mnt, 'ids', id3), path.join(data, 'only3.bin')), 'r');
      try {
        const readAt = async (offset: number) => {
          const buf = Buffer.alloc(4096);
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
          return buf.subarray(0, bytesRead);
        };
        assert.ok((await readAt(0)).equals(only.subarray(0, 4096)));

        await withStore((store) => store.delete('snapshot', id3));
        await m!.advance(REFRESH_MS);
        assert.deepEqual(sorted(await ids()), sorted([id1, id2]), 'the deleted snapshot is not listed');
        assert.equal((await fs.readdir(path.join(mnt, 'snapshots'))).length, 2);
        assert.equal(await latestLabel(), 'two', 'latest follows the newest left');
        // Nothing in it can be looked up or opened any more.
        await assertErrno(fs.stat(inSnapshot(path.join(mnt, 'ids', id3), path.join(data, 'common.txt'))), 'ENOENT', 'a path in the deleted snapshot');

        // The open file still reads while its chunks exist (a chunk no read has fetched yet).
        const middle = Math.floor(chunks.length / 3);
        const at = starts[middle]! + 100;
        assert.ok((await readAt(at)).equals(only.subarray(at, at + 4096)), 'read of the open file after the snapshot was deleted');

        // Its chunks gone (damaged in place, so they no longer read back as what their ids say): EIO, never other bytes.
        for (const c of chunks) await withStore((store) => corruptStoredObject(repo, store, 'chunk', c.id));
        const last = chunks.length - 1;
        await assertErrno(readAt(starts[last]! + 100), 'EIO', 'reading a chunk that is gone');
        await assertErrno(readAt(starts[last - 1]! + 100), 'EIO', 'reading another chunk that is gone');
        assert.match(m!.stderr(), new RegExp(`read .*only3\\.bin.*chunk (${chunks.map((c) => c.id).join('|')})`));
      } finally {
        await fh.close();
      }
    });

    it('a damaged snapshot object is left out of the listing and named in the log', async () => {
      const id4 = await backupLabelled('four');
      try {
        await withStore(async (store) => corruptStoredObject(repo, store, 'snapshot', id4));
        await m!.advance(REFRESH_MS);
        assert.deepEqual(sorted(await ids()), sorted([id1, id2]));
        assert.equal(await latestLabel(), 'two');
        assert.match(m!.stderr(), new RegExp(`snapshot ${id4} left out`));
        // Named once, not at every reading of the list.
        await m!.advance(REFRESH_MS);
        assert.deepEqual(sorted(await ids()), sorted([id1, id2]));
        assert.equal(m!.stderr().split(`snapshot ${id4} left out`).length - 1, 1, m!.stderr());
      } finally {
        // (obnam backup refuses to run while a snapshot is damaged.)
        await withStore((store) => store.delete('snapshot', id4));
      }
    });
  });

  it('obnam mount shows a backup made while mounted within its default interval', async () => {
    let m: MountProcess | undefined;
    try {
      m = await startMount(repo, mnt);
      const before = await fs.readdir(path.join(mnt, 'ids'));
      const id = await backupLabelled('five');
      assert.ok(!before.includes(id));
      // Polled (a listing reads the list again at most every 5 s); bounded generously for a busy machine.
      const deadline = Date.now() + 60_000;
      let listed = before;
      while (!listed.includes(id) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        listed = await fs.readdir(path.join(mnt, 'ids'));
      }
      assert.ok(listed.includes(id), `${id} not listed: ${listed.join(' ')}; ${m.stderr()}`);
      assert.equal(await latestLabel(), 'five');
    } finally {
      await cleanupMount(m, mnt);
    }
    assert.equal(await mountedAt(mnt), undefined, 'nothing left mounted');
  });
});
