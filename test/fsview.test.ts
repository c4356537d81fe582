/**
 * The file-system view (lib/fsview), without FUSE: a real repository made by
 * the CLI from a tree with every kind of file, read back through the view
 * with the real worker pool. The pool's reader is wrapped only to record
 * which objects each operation fetched.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ObnamError } from '../lib/errors.js';
import type { TreeEntry } from '../lib/format/tree.js';
import type { Kind } from '../lib/format/version.js';
import { FsError } from '../lib/fsview/errors.js';
import { poolReader } from '../lib/fsview/objects.js';
import type { ObjectReader } from '../lib/repo/views.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../lib/fsview/stat.js';
import { FsView, FsViewOptions } from '../lib/fsview/view.js';
import { Repository } from '../lib/repo/repository.js';
import { resolvePath } from '../lib/repo/treewalk.js';
import { openStore } from '../lib/store/open.js';
import { EnginePool, startRepoPool } from '../lib/engine-workers/start.js';
import { backup, changeSourceTree, corruptStoredObject, initRepo, makeSourceTree, NOT_UTF8_NAME, PASSPHRASE } from './helpers/mount.js';
import { tempDir, TempDir } from './helpers/tmp.js';

interface Opened {
  repo: Repository;
  pool: EnginePool;
  loads: [Kind, string][];
  /** How many times the view listed the snapshots. */
  lists: number;
  /** Makes the view's listings fail (as an unreachable server's would). */
  listFails: boolean;
  open(opts?: FsViewOptions): Promise<FsView>;
  close(): Promise<void>;
}

async function openRepo(dir: string): Promise<Opened> {
  const spec = { type: 'local' as const, dir };
  const repo = await Repository.open(await openStore(spec), PASSPHRASE);
  const pool = startRepoPool(repo, { size: 2 });
  const inner = poolReader(pool);
  const loads: [Kind, string][] = [];
  const reader: ObjectReader = {
    getObject: (kind, id) => {
      loads.push([kind, id]);
      return inner.getObject(kind, id);
    },
    getTree: (id) => {
      loads.push(['tree', id]);
      return inner.getTree(id);
    },
    getSnapshot: (id) => {
      loads.push(['snapshot', id]);
      return inner.getSnapshot(id);
    },
  };
  const opened: Opened = {
    repo,
    pool,
    loads,
    lists: 0,
    listFails: false,
    open: async (opts) => {
      loads.length = 0;
      const listSnapshotIds = () => {
        opened.lists++;
        if (opened.listFails) throw new ObnamError('IO', 'the repository cannot be listed');
        return repo.listSnapshotIds();
      };
      return FsView.open({ ...reader, listSnapshotIds }, opts);
    },
    close: async () => {
      await pool.close();
      await repo.close();
    },
  };
  return opened;
}

const b = (s: string) => Buffer.from(s);

async function rejectsWith(p: Promise<unknown>, code: string, match?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof FsError, `expected an FsError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (match) assert.match(e.message, match);
    return true;
  });
}

describe('file-system view', () => {
  let tmp: TempDir;
  let data: string;
  let repoDir: string;
  let id1: string;
  let id2: string;
  let r: Opened;
  /** Path of the data directory inside a snapshot: /ids/<id>/tmp/.../data */
  const at = (id: string, rel = '') => `/ids/${id}${path.resolve(data)}${rel ? '/' + rel : ''}`;

  /** The tree entry of `rel` in a snapshot, read with the library (to know a file's chunks). */
  async function entryOf(id: string, rel: string): Promise<TreeEntry> {
    const snap = await r.repo.getSnapshot(id);
    const parts = [...path.resolve(data).slice(1).split('/'), ...rel.split('/')].map((p) => Buffer.from(p));
    return (await resolvePath((t) => r.repo.getTree(t), snap.tree, parts)).entry!;
  }

  before(async () => {
    tmp = await tempDir();
    data = path.join(tmp.path, 'data');
    repoDir = path.join(tmp.path, 'repo');
    await makeSourceTree(data, { bigDir: true });
    await initRepo(repoDir);
    id1 = await backup(repoDir, data);
    await changeSourceTree(data);
    id2 = await backup(repoDir, data);
    r = await openRepo(repoDir);
  });

  after(async () => {
    await r?.close();
    await tmp?.remove();
  });

  it('opening reads the snapshot objects and nothing else', async () => {
    const view = await r.open();
    assert.deepEqual(r.loads.map(([k]) => k).sort(), ['snapshot', 'snapshot']);
    assert.deepEqual(view.snapshots.map((s) => s.info.id), [id1, id2]);
  });

  it('shows snapshots/<time>, ids/<id> and a latest symlink', async () => {
    const view = await r.open();
    assert.deepEqual((await view.readdir(b('/'))).map((e) => e.name.toString()), ['snapshots', 'ids', 'latest']);
    assert.deepEqual((await view.readdir(b('/ids'))).map((e) => e.name.toString()), [id1, id2]);
    const names = (await view.readdir(b('/snapshots'))).map((e) => e.name.toString());
    assert.equal(names.length, 2);
    for (const n of names) assert.match(n, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(-[0-9a-f]{8})?$/);
    const latest = (await view.readlink(b('/latest'))).toString();
    assert.equal(latest, `snapshots/${names[1]}`);
    assert.equal((await view.getattr(b('/latest'))).mode & S_IFMT, S_IFLNK);
    assert.equal((await view.getattr(b('/latest'))).size, latest.length);
    // The same snapshot under both names is the same directory.
    const byTime = await view.getattr(b(`/${latest}`));
    const byId = await view.getattr(b(`/ids/${id2}`));
    assert.equal(byTime.ino, byId.ino);
    assert.equal(byTime.mode, S_IFDIR | 0o555);
    assert.deepEqual(
      (await view.readdir(b(`/${latest}${path.resolve(data)}`))).map((e) => e.name.toString()),
      (await view.readdir(b(at(id2)))).map((e) => e.name.toString()),
    );
  });

  it('listing a directory fetches only the tree nodes on its path', async () => {
    const view = await r.open();
    r.loads.length = 0;
    const entries = await view.readdir(b(at(id2, 'sub')));
    assert.deepEqual(entries.map((e) => e.name.toString()).sort(), ['deeper', 'hard1', 'hard2']);
    // The snapshot's root tree, one per directory down to data/, and sub/ itself.
    const depth = path.resolve(data).split('/').length - 1;
    assert.ok(r.loads.every(([k]) => k === 'tree'), `only trees: ${JSON.stringify(r.loads)}`);
    assert.equal(r.loads.length, depth + 2);
    // Listing it again is answered from the cache.
    r.loads.length = 0;
    await view.readdir(b(at(id2, 'sub')));
    assert.equal(r.loads.length, 0);
  });

  it('reports the recorded attributes of every kind of file', async () => {
    const view = await r.open();
    for (const rel of ['big.bin', 'small.txt', 'empty', 'secret', 'tool.sh', 'link', 'dangling', 'sub', 'sub/deeper', 'sub/hard1', 'fifo', 'tagged']) {
      const want = await fs.lstat(path.join(data, rel), { bigint: true });
      const got = await view.getattr(b(at(id2, rel)));
      assert.equal(got.mode, Number(want.mode), `${rel} mode`);
      assert.equal(got.uid, Number(want.uid), `${rel} uid`);
      assert.equal(got.gid, Number(want.gid), `${rel} gid`);
      if (!want.isDirectory()) assert.equal(got.size, Number(want.size), `${rel} size`);
      assert.equal(BigInt(got.mtime.sec) * 1_000_000_000n + BigInt(got.mtime.nsec), want.mtimeNs, `${rel} mtime`);
      assert.equal(got.nlink, Number(want.nlink), `${rel} nlink`);
    }
    // Nanoseconds and times before 1970 survive.
    assert.deepEqual((await view.getattr(b(at(id1, 'small.txt')))).mtime, { sec: 1600000000, nsec: 123456789 });
    assert.deepEqual((await view.getattr(b(at(id2, 'secret')))).mtime, { sec: -86401, nsec: 750000000 });
    // Directories report their type bits; files theirs.
    assert.equal((await view.getattr(b(at(id2, 'sub')))).mode & S_IFMT, S_IFDIR);
    assert.equal((await view.getattr(b(at(id2, 'big.bin')))).mode & S_IFMT, S_IFREG);
  });

  it('gives a hardlink its target’s content, attributes and inode; other paths their own inodes', async () => {
    const view = await r.open();
    const h1 = await view.getattr(b(at(id2, 'sub/hard1')));
    const h2 = await view.getattr(b(at(id2, 'sub/hard2')));
    assert.equal(h1.ino, h2.ino);
    assert.equal(h2.nlink, 2);
    assert.equal(h2.size, h1.size);
    const fh = await view.open(b(at(id2, 'sub/hard2')));
    assert.equal((await view.read(fh, 0, 100)).toString(), 'linked twice\n');
    view.release(fh);
    // readdir agrees with getattr on inode numbers.
    const listed = await view.readdir(b(at(id2, 'sub')));
    assert.equal(listed.find((e) => e.name.toString() === 'hard2')!.ino, h1.ino);
    // The same path in two snapshots is two files.
    assert.notEqual((await view.getattr(b(at(id1, 'small.txt')))).ino, (await view.getattr(b(at(id2, 'small.txt')))).ino);
  });

  it('lists directories completely, including one split into pages', async () => {
    const view = await r.open();
    const names = (await view.readdir(b(at(id2)))).map((e) => e.name.toString('latin1')).sort();
    assert.deepEqual(names, (await fs.readdir(data, { encoding: 'buffer' })).map((n) => n.toString('latin1')).sort());
    const many = await view.readdir(b(at(id2, 'many')));
    assert.equal(many.length, 5000);
    assert.equal(new Set(many.map((e) => e.ino)).size, 5000);
    const fh = await view.open(b(at(id2, 'many/f04321')));
    assert.equal((await view.read(fh, 0, 100)).toString(), '4321\n');
    await rejectsWith(view.getattr(b(at(id2, 'many/f05000'))), 'NO_ENTRY');
  });

  it('takes and gives names as bytes, UTF-8 or not', async () => {
    const view = await r.open();
    const names = (await view.readdir(b(at(id2)))).map((e) => e.name);
    assert.ok(names.some((n) => n.equals(NOT_UTF8_NAME)));
    assert.ok(names.some((n) => n.equals(Buffer.from('naïve ünïcode'))));
    const p = Buffer.concat([b(at(id2)), b('/'), NOT_UTF8_NAME]);
    const fh = await view.open(p);
    assert.equal((await view.read(fh, 0, 100)).toString(), 'latin-1 name\n');
    assert.equal((await view.getattr(p)).size, 13);
  });

  it('reads symlink targets and extended attributes', async () => {
    const view = await r.open();
    assert.equal((await view.readlink(b(at(id2, 'link')))).toString(), 'small.txt');
    assert.equal((await view.readlink(b(at(id2, 'dangling')))).toString(), '/nonexistent/target');
    assert.deepEqual((await view.listxattr(b(at(id2, 'tagged')))).map(String).sort(), ['user.binary', 'user.comment']);
    assert.deepEqual(await view.getxattr(b(at(id2, 'tagged')), b('user.binary')), Buffer.from([0, 1, 2, 255]));
    assert.equal((await view.getxattr(b(at(id2, 'tagged')), b('user.comment'))).toString(), 'a comment');
    assert.deepEqual(await view.listxattr(b(at(id2, 'small.txt'))), []);
    await rejectsWith(view.getxattr(b(at(id2, 'tagged')), b('user.none')), 'NO_ATTR');
  });

  it('reads any byte range of a file, fetching only the chunks that cover it', async () => {
    const view = await r.open({ readAhead: 0 });
    const source = await fs.readFile(path.join(data, 'big.bin'));
    const entry = await entryOf(id2, 'big.bin');
    assert.ok(entry.chunks!.length >= 4, `big.bin has ${entry.chunks!.length} chunks`);
    const fh = await view.open(b(at(id2, 'big.bin')));
    for (let i = 0; i < 40; i++) {
      const offset = randomInt(source.length);
      const length = randomInt(1, 3 * 1024 * 1024);
      const got = await view.read(fh, offset, length);
      assert.ok(got.equals(source.subarray(offset, offset + length)), `read at ${offset} of ${length}`);
    }
    assert.equal((await view.read(fh, source.length, 10)).length, 0);
    assert.equal((await view.read(fh, source.length + 5, 10)).length, 0);
    view.release(fh);

    // A fresh view: one small read in the middle of chunk 2 fetches chunk 2 only.
    const fresh = await r.open({ readAhead: 0 });
    const c = entry.chunks!;
    const start2 = c[0]!.length + c[1]!.length;
    const fh2 = await fresh.open(b(at(id2, 'big.bin')));
    r.loads.length = 0;
    const got = await fresh.read(fh2, start2 + 10, 1000);
    assert.ok(got.equals(source.subarray(start2 + 10, start2 + 1010)));
    assert.deepEqual(r.loads, [['chunk', c[2]!.id]]);
    // A read across the boundary of chunks 2 and 3 fetches chunk 3 (2 is cached).
    r.loads.length = 0;
    const boundary = start2 + c[2]!.length;
    assert.ok((await fresh.read(fh2, boundary - 5, 10)).equals(source.subarray(boundary - 5, boundary + 5)));
    assert.deepEqual(r.loads, [['chunk', c[3]!.id]]);
  });

  it('reads small inline files and empty files', async () => {
    const view = await r.open();
    const fh = await view.open(b(at(id2, 'small.txt')));
    assert.equal((await view.read(fh, 0, 4096)).toString(), 'hello again, snapshot\n');
    assert.equal((await view.read(fh, 6, 5)).toString(), 'again');
    const empty = await view.open(b(at(id2, 'empty')));
    assert.equal((await view.read(empty, 0, 4096)).length, 0);
    assert.equal(r.loads.filter(([k]) => k === 'chunk').length, 0);
  });

  it('fetches ahead of sequential reads', async () => {
    const view = await r.open({ readAhead: 2 });
    const c = (await entryOf(id2, 'big.bin')).chunks!;
    const fh = await view.open(b(at(id2, 'big.bin')));
    await view.read(fh, 0, 128 * 1024);
    await view.idle();
    const chunkLoads = () => r.loads.filter(([k]) => k === 'chunk').map(([, id]) => id);
    assert.deepEqual(chunkLoads().sort(), [c[0]!.id, c[1]!.id, c[2]!.id].sort());
    // Reading on into chunk 1 needs no fetch for it, and fetches chunk 3 ahead.
    await view.read(fh, c[0]!.length, 128 * 1024);
    await view.idle();
    assert.deepEqual(chunkLoads().sort(), [c[0]!.id, c[1]!.id, c[2]!.id, c[3]!.id].sort());
    // A jump elsewhere is not sequential: nothing is fetched ahead of it.
    assert.ok(c.length >= 6, `big.bin has ${c.length} chunks`);
    const jump = c.length - 2;
    const far = c.slice(0, jump).reduce((n, x) => n + x.length, 0);
    r.loads.length = 0;
    await view.read(fh, far + 1, 10);
    await view.idle();
    assert.deepEqual(chunkLoads(), [c[jump]!.id]);
  });

  it('fetches a chunk once for many concurrent readers', async () => {
    const view = await r.open({ readAhead: 0 });
    const source = await fs.readFile(path.join(data, 'big.bin'));
    const c = (await entryOf(id2, 'big.bin')).chunks!;
    const start = c[0]!.length + c[1]!.length + c[2]!.length;
    const handles = await Promise.all(Array.from({ length: 12 }, () => view.open(b(at(id2, 'big.bin')))));
    r.loads.length = 0;
    const reads = await Promise.all(handles.map((fh, i) => view.read(fh, start + i * 1000, 5000)));
    reads.forEach((got, i) => assert.ok(got.equals(source.subarray(start + i * 1000, start + i * 1000 + 5000))));
    assert.deepEqual(r.loads, [['chunk', c[3]!.id]]);
    assert.ok(view.stats().cache.joined >= 1);
  });

  it('keeps the cache within its size', async () => {
    const view = await r.open({ cacheBytes: 3 * 1024 * 1024, readAhead: 0 });
    const fh = await view.open(b(at(id2, 'big.bin')));
    const size = (await view.getattr(b(at(id2, 'big.bin')))).size;
    for (let off = 0; off < size; off += 1024 * 1024) await view.read(fh, off, 1024 * 1024);
    assert.ok(view.stats().cache.bytes <= 3 * 1024 * 1024, `cache holds ${view.stats().cache.bytes}`);
  });

  it('keeps trees apart from chunks: reading a large file does not push out the trees of a walk', async () => {
    const view = await r.open({ cacheBytes: 4 * 1024 * 1024, readAhead: 0 });
    const listed = await view.readdir(b(at(id2, 'many')));
    for (const e of listed.slice(0, 50)) await view.getattr(b(at(id2, `many/${e.name.toString()}`)));
    const fh = await view.open(b(at(id2, 'big.bin')));
    const size = (await view.getattr(b(at(id2, 'big.bin')))).size;
    for (let off = 0; off < size; off += 1024 * 1024) await view.read(fh, off, 1024 * 1024);
    view.release(fh);
    assert.ok(view.stats().cache.bytes <= 4 * 1024 * 1024, `cache holds ${view.stats().cache.bytes}`);
    r.loads.length = 0;
    for (const e of listed.slice(0, 50)) await view.getattr(b(at(id2, `many/${e.name.toString()}`)));
    assert.deepEqual(r.loads, []);
  });

  it('fails with typed errors', async () => {
    const view = await r.open();
    await rejectsWith(view.getattr(b(at(id2, 'nothing'))), 'NO_ENTRY');
    await rejectsWith(view.getattr(b('/snapshots/1999-01-01T00:00:00Z')), 'NO_ENTRY');
    await rejectsWith(view.getattr(b('/elsewhere')), 'NO_ENTRY');
    await rejectsWith(view.getattr(b(at(id2, 'small.txt/x'))), 'NOT_DIR');
    await rejectsWith(view.readdir(b(at(id2, 'small.txt'))), 'NOT_DIR');
    await rejectsWith(view.readlink(b(at(id2, 'small.txt'))), 'NOT_LINK');
    await rejectsWith(view.open(b(at(id2, 'sub'))), 'IS_DIR');
    await rejectsWith(view.open(b(at(id2, 'fifo'))), 'NOT_FILE');
    await rejectsWith(view.read(12345, 0, 10), 'BAD_HANDLE');
  });

  describe('following the repository', () => {
    let copy: string;
    let o: Opened;
    let id3: string;
    let clock = 0;
    const names = async (view: FsView, dir: string) => (await view.readdir(b(dir))).map((e) => e.name.toString());

    before(async () => {
      // A copy, so the other tests keep their two snapshots.
      copy = path.join(tmp.path, 'following');
      await fs.cp(repoDir, copy, { recursive: true });
      o = await openRepo(copy);
    });

    after(async () => {
      await o?.close();
    });

    it('reads the snapshot list again at the top once the interval has passed, one reading for concurrent callers', async () => {
      const view = await o.open({ refreshMs: 1000, now: () => clock });
      o.lists = 0;
      const top = () => [view.readdir(b('/ids')), view.readdir(b('/snapshots')), view.readlink(b('/latest')), view.getattr(b(`/ids/${id2}`)), view.readdir(b('/'))];
      await Promise.all(top());
      assert.equal(o.lists, 0, 'fresh: not listed again');
      id3 = await backup(copy, data);
      clock += 999;
      assert.deepEqual(await names(view, '/ids'), [id1, id2]);
      assert.equal(o.lists, 0);
      clock += 1;
      const answers = await Promise.all([...top(), ...top(), ...top()]);
      assert.equal(o.lists, 1, 'concurrent callers share one reading');
      assert.deepEqual(answers[0], answers[5]);
      assert.deepEqual(await names(view, '/ids'), [id1, id2, id3]);
      assert.deepEqual(view.snapshots.map((s) => s.info.id), [id1, id2, id3]);
      const latest = (await view.readlink(b('/latest'))).toString();
      assert.equal((await view.getattr(b(`/${latest}`))).ino, (await view.getattr(b(`/ids/${id3}`))).ino, 'latest is the newest');
      // Paths inside a snapshot never wait for a reading.
      clock += 5000;
      await view.getattr(b(at(id3, 'small.txt')));
      await view.readdir(b(at(id3, 'sub')));
      assert.equal(o.lists, 1);
      await view.readdir(b('/snapshots'));
      assert.equal(o.lists, 2);
    });

    it('a deleted snapshot disappears; files open in it keep reading; a failed listing keeps the list as it was', async () => {
      const warnings: string[] = [];
      const view = await o.open({ refreshMs: 1000, now: () => clock, onWarning: (w) => warnings.push(w) });
      assert.deepEqual(await names(view, '/ids'), [id1, id2, id3]);
      await view.getattr(b(at(id3, 'small.txt')));
      const fh = await view.open(b(at(id3, 'big.bin')));
      await o.repo.deleteSnapshot(id3);
      clock += 1000;
      assert.deepEqual(await names(view, '/ids'), [id1, id2]);
      assert.equal((await names(view, '/snapshots')).length, 2);
      await rejectsWith(view.getattr(b(at(id3, 'small.txt'))), 'NO_ENTRY');
      await rejectsWith(view.getattr(b(`/ids/${id3}`)), 'NO_ENTRY');
      const latest = (await view.readlink(b('/latest'))).toString();
      assert.equal((await view.getattr(b(`/${latest}`))).ino, (await view.getattr(b(`/ids/${id2}`))).ino, 'latest is the newest left');
      const want = await fs.readFile(path.join(data, 'big.bin'));
      assert.ok((await view.read(fh, 0, want.length)).equals(want), 'the open file reads on');
      view.release(fh);
      // A listing that fails: the list stays as it was, and the failure is named.
      o.listFails = true;
      clock += 1000;
      try {
        assert.deepEqual(await names(view, '/ids'), [id1, id2]);
      } finally {
        o.listFails = false;
      }
      assert.ok(warnings.some((w) => /cannot refresh the snapshot list.*cannot be listed/.test(w)), warnings.join('\n'));
    });
  });

  describe('the inode table', () => {
    it('stays within its capacity while a walk visits more paths, and keeps numbers stable while it remembers them', async () => {
      const view = await r.open({ inodes: { capacity: 100, linkedCapacity: 10 } });
      const h1 = (await view.getattr(b(at(id1, 'sub/hard1')))).ino;
      const small = (await view.getattr(b(at(id1, 'small.txt')))).ino;
      assert.equal((await view.getattr(b(at(id1, 'small.txt')))).ino, small, 'stable while remembered');
      // 5000 names: far more than the table holds.
      const many = await view.readdir(b(at(id1, 'many')));
      assert.equal(many.length, 5000);
      assert.equal(new Set(many.map((e) => e.ino)).size, 5000, 'distinct files, distinct numbers');
      for (const e of many.slice(-50)) assert.equal((await view.getattr(b(at(id1, `many/${e.name}`)))).ino, e.ino, 'a recent one keeps its number');
      assert.ok(view.stats().inodes <= 110, `${view.stats().inodes} remembered`);
      // Files with several links are remembered apart: the walk did not push the hardlink out.
      assert.equal((await view.getattr(b(at(id1, 'sub/hard2')))).ino, h1);
      // A forgotten path gets a new number, one no remembered path has.
      const again = (await view.getattr(b(at(id1, 'small.txt')))).ino;
      assert.notEqual(again, small);
      assert.ok(!many.some((e) => e.ino === again));
    });

    it('without a bound, remembers every path (what it did before)', async () => {
      const view = await r.open({ inodes: { capacity: Infinity } });
      await view.readdir(b(at(id1, 'many')));
      assert.ok(view.stats().inodes >= 5000);
    });
  });

  describe('with damaged objects', () => {
    let damaged: Opened;
    let bad: { file: string; chunk: string; index: number };
    let lostTree: string;

    before(async () => {
      // Damage a copy, so the other tests keep an intact repository.
      const copy = path.join(tmp.path, 'damaged');
      await fs.cp(repoDir, copy, { recursive: true });
      const c = (await entryOf(id1, 'medium.bin')).chunks!;
      assert.ok(c.length >= 2);
      bad = { file: 'medium.bin', chunk: c[1]!.id, index: 1 };
      const store = await openStore({ type: 'local', dir: copy });
      await corruptStoredObject(copy, store, 'chunk', bad.chunk);
      lostTree = (await entryOf(id2, 'sub/deeper')).subtree!;
      await store.delete('tree', lostTree);
      await store.close();
      damaged = await openRepo(copy);
    });

    after(async () => {
      await damaged?.close();
    });

    it('a corrupt chunk fails only the reads that need it', async () => {
      const view = await damaged.open({ readAhead: 0 });
      const c = (await entryOf(id1, 'medium.bin')).chunks!;
      const fh = await view.open(b(at(id1, 'medium.bin')));
      await rejectsWith(view.read(fh, c[0]!.length + 10, 100), 'UNREADABLE', new RegExp(bad.chunk));
      // The same file's other chunks, and other files, read fine.
      const source1 = (await view.read(fh, 0, c[0]!.length)).length;
      assert.equal(source1, c[0]!.length);
      const big = await view.open(b(at(id2, 'big.bin')));
      const want = await fs.readFile(path.join(data, 'big.bin'));
      assert.ok((await view.read(big, 0, want.length)).equals(want));
      // Failures are not cached: it fails again (and would succeed once repaired).
      await rejectsWith(view.read(fh, c[0]!.length, 10), 'UNREADABLE');
    });

    it('leaves out an unreadable snapshot, and refuses to open if none is readable', async () => {
      const copy = path.join(tmp.path, 'unreadable');
      await fs.cp(repoDir, copy, { recursive: true });
      const store = await openStore({ type: 'local', dir: copy });
      await corruptStoredObject(copy, store, 'snapshot', id1);
      const broken = await openRepo(copy);
      try {
        const warnings: string[] = [];
        const view = await broken.open({ onWarning: (w) => warnings.push(w) });
        assert.deepEqual(view.snapshots.map((s) => s.info.id), [id2]);
        assert.equal(warnings.length, 1);
        assert.match(warnings[0]!, new RegExp(`snapshot ${id1} left out`));
        await corruptStoredObject(copy, store, 'snapshot', id2);
        await assert.rejects(broken.open(), (e: unknown) => e instanceof ObnamError && /no snapshot could be read/.test(e.message));
      } finally {
        await store.close();
        await broken.close();
      }
    });

    it('a tree node that authenticates but breaks the rules (a name with a slash) is UNREADABLE: the workers only decrypt, the view decodes and checks', async () => {
      const copy = path.join(tmp.path, 'repo-hostile-node');
      await fs.cp(repoDir, copy, { recursive: true });
      const hostile = await openRepo(copy);
      try {
        const T = { sec: 1_000_000_000, nsec: 0 };
        const entry = (name: string, type: TreeEntry['type'], extra: Partial<TreeEntry> = {}): TreeEntry => ({
          name: Buffer.from(name), type, mode: 0o755, uid: 0, gid: 0, mtime: T, ctime: T, size: 0, ...extra,
        });
        // putTree encodes what it is given: a key holder can store such a node under its true id.
        const evil = await hostile.repo.putTree({ kind: 'leaf', entries: [entry('a/b', 'file', { data: Buffer.alloc(0) })] });
        const root = await hostile.repo.putTree({ kind: 'leaf', entries: [entry('evil', 'dir', { subtree: evil.id })] });
        const zero = { files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0, filesRead: 0, newChunks: 0, newTrees: 0, newBytes: 0, storedBytes: 0, errors: 0 };
        const snap = await hostile.repo.putSnapshot({ tree: root.id, time: T, end: T, hostname: 'h', username: 'u', paths: ['/'], tags: [], program: 'test', summary: zero });
        const view = await hostile.open();
        assert.deepEqual((await view.readdir(b(`/ids/${snap.id}`))).map((e) => e.name.toString()), ['evil']);
        await rejectsWith(view.readdir(b(`/ids/${snap.id}/evil`)), 'UNREADABLE', /unsafe file name/);
      } finally {
        await hostile.close();
      }
    });

    it('a missing tree fails only the directory it describes', async () => {
      const view = await damaged.open();
      await rejectsWith(view.readdir(b(at(id2, 'sub/deeper'))), 'UNREADABLE', new RegExp(lostTree));
      await rejectsWith(view.getattr(b(at(id2, 'sub/deeper/file.txt'))), 'UNREADABLE');
      assert.equal((await view.getattr(b(at(id2, 'sub/deeper')))).mode & S_IFMT, S_IFDIR);
      assert.equal((await view.readdir(b(at(id2, 'sub')))).length, 3);
    });
  });
});

describe('file-system view: a walk through small files', () => {
  let tmp: TempDir;
  let data: string;
  let r: Opened;
  let id: string;
  const FILES = 300;
  const SIZE = 3000;
  /** Files of at most 64 bytes stay inline in their tree (format-spec 6.7); the others go into bundles. */
  const TINY = 50;
  const TINY_SIZE = 40;
  const at = (rel = '') => `/ids/${id}${path.resolve(data)}${rel ? '/' + rel : ''}`;

  before(async () => {
    tmp = await tempDir();
    data = path.join(tmp.path, 'data');
    await fs.mkdir(data);
    for (let i = 0; i < FILES; i++) await fs.writeFile(path.join(data, `f${String(i).padStart(3, '0')}`), randomBytes(SIZE));
    for (let i = 0; i < TINY; i++) await fs.writeFile(path.join(data, `t${String(i).padStart(3, '0')}`), randomBytes(TINY_SIZE));
    const repoDir = path.join(tmp.path, 'repo');
    await initRepo(repoDir);
    id = await backup(repoDir, data);
    r = await openRepo(repoDir);
  });

  after(async () => {
    await r?.close();
    await tmp?.remove();
  });

  it('caches names and attributes, not the contents of the files it passes; opening a bundled file reads its bundle, an inline one its node in full', async () => {
    const view = await r.open();
    const listed = await view.readdir(b(at()));
    assert.equal(listed.length, FILES + TINY);
    for (const e of listed) assert.equal((await view.getattr(b(at(e.name.toString())))).size, e.name[0] === 0x74 ? TINY_SIZE : SIZE);
    const cached = view.stats().cache.bytes;
    assert.ok(cached < (FILES * SIZE) / 4, `the cache holds ${cached} bytes after a walk past ${FILES * SIZE} bytes of small files`);
    const readWhole = async (name: string, size: number) => {
      const fh = await view.open(b(at(name)));
      const want = await fs.readFile(path.join(data, name));
      assert.ok((await view.read(fh, 0, size + 10)).equals(want), name);
      assert.ok((await view.read(fh, 10, 20)).equals(want.subarray(10, 30)), name);
      view.release(fh);
    };
    // Bundled files (3000 bytes: about 21 to a 64 KiB bundle): f000, f150 and f299 are in three bundles; no tree is read again.
    r.loads.length = 0;
    for (const name of ['f000', 'f150', 'f299']) await readWhole(name, SIZE);
    assert.equal(r.loads.filter(([k]) => k === 'tree').length, 0);
    assert.equal(r.loads.filter(([k]) => k === 'chunk').length, 3, 'one bundle read per file, in three bundles');
    // A neighbour of f000 is in the same bundle, which the cache holds.
    r.loads.length = 0;
    await readWhole('f001', SIZE);
    assert.equal(r.loads.length, 0, `loads for a file of a cached bundle: ${JSON.stringify(r.loads)}`);
    // Inline files: opening one reads its directory's node in full once; the next ones in that directory need no fetch.
    r.loads.length = 0;
    for (const name of ['t000', 't025', 't049']) await readWhole(name, TINY_SIZE);
    const trees = r.loads.filter(([k]) => k === 'tree').length;
    assert.equal(trees, 1, `${trees} tree loads for three inline files in one directory (one leaf node)`);
    assert.equal(r.loads.filter(([k]) => k === 'chunk').length, 0);
  });
});
