/**
 * `obnam mount` for real: a repository backed up twice by the CLI, mounted
 * by the CLI in a child process, and read with ordinary tools (cp -a,
 * diff -r, find) and ordinary system calls from this process. Every test
 * leaves nothing mounted (checked in the after hooks).
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../lib/repo/repository.js';
import { resolvePath } from '../lib/repo/treewalk.js';
import { openStore } from '../lib/store/open.js';
import {
  assertErrno,
  backup,
  changeSourceTree,
  cleanupMount,
  corruptStoredObject,
  describeTree,
  exec,
  fuseAvailable,
  initRepo,
  inSnapshot,
  makeSourceTree,
  mountedAt,
  MountProcess,
  NOT_UTF8_NAME,
  PASSPHRASE,
  repoEnv,
  startMount,
} from './helpers/mount.js';
import { obnam } from './helpers/cli.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { setXattr } from './helpers/tree.js';


/** A process's fds and what each refers to. */
async function fdTable(pid: number): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const n of await fs.readdir(`/proc/${pid}/fd`)) {
    const link = await fs.readlink(`/proc/${pid}/fd/${n}`).catch(() => undefined);
    if (link !== undefined) out.set(Number(n), link);
  }
  return out;
}

/** The pid of the fusermount auto_unmount helper of the mount at `mountpoint`. */
async function helperPid(mountpoint: string): Promise<number | undefined> {
  for (const p of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const argv = (await fs.readFile(`/proc/${p}/cmdline`).catch(() => Buffer.alloc(0))).toString().split('\0');
    if (/fusermount/.test(argv[0] ?? '') && argv.includes(mountpoint) && argv.some((a) => a.includes('auto_unmount'))) return Number(p);
  }
  return undefined;
}

/** Runs a tool, resolving with its exit code and output. */
const tool = (cmd: string, args: string[], cwd?: string) => exec(cmd, args, cwd);

describe('obnam mount', { skip: !fuseAvailable && 'no /dev/fuse' }, () => {
  let tmp: TempDir;
  let data: string;
  let repo: string;
  let mnt: string;
  let id1: string;
  let id2: string;
  let bigV1: Buffer;
  let changes: Awaited<ReturnType<typeof changeSourceTree>>;

  before(async () => {
    tmp = await tempDir();
    data = path.join(tmp.path, 'data');
    repo = path.join(tmp.path, 'repo');
    mnt = path.join(tmp.path, 'mnt');
    await fs.mkdir(mnt);
    await makeSourceTree(data);
    bigV1 = await fs.readFile(path.join(data, 'big.bin'));
    await initRepo(repo);
    id1 = await backup(repo, data);
    changes = await changeSourceTree(data);
    id2 = await backup(repo, data);
  });

  after(async () => {
    await tmp?.remove();
  });

  describe('a mounted repository', () => {
    let m: MountProcess | undefined;
    const snap = (id: string) => inSnapshot(path.join(mnt, 'ids', id), data);

    before(async () => {
      m = await startMount(repo, mnt);
    });

    after(async () => {
      await cleanupMount(m, mnt);
      assert.equal(await mountedAt(mnt), undefined, 'nothing left mounted');
    });

    it('is mounted read-only, as fuse.obnam, with snapshots, ids and latest', async () => {
      const mi = await fs.readFile('/proc/self/mountinfo', 'utf8');
      const line = mi.split('\n').find((l) => l.split(' ')[4] === mnt)!;
      assert.match(line, / - fuse\.obnam obnam /);
      assert.match(line.split(' ')[5]!, /^ro,/);
      assert.deepEqual((await fs.readdir(mnt)).sort(), ['ids', 'latest', 'snapshots']);
      assert.deepEqual((await fs.readdir(path.join(mnt, 'ids'))).sort(), [id1, id2].sort());
      const latest = await fs.readlink(path.join(mnt, 'latest'));
      assert.match(latest, /^snapshots\/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(-[0-9a-f]{8})?$/);
      // latest leads to the same files as ids/<newest>.
      assert.equal(
        await fs.readFile(inSnapshot(path.join(mnt, 'latest'), path.join(data, 'new.txt')), 'utf8'),
        await fs.readFile(path.join(snap(id2), 'new.txt'), 'utf8'),
      );
    });

    it('reads a large multi-chunk file at random offsets, with many readers at once', async () => {
      // Snapshot 1's big.bin: nothing has read it yet, so no page is in the kernel's cache.
      const file = path.join(snap(id1), 'big.bin');
      assert.equal((await fs.stat(file)).size, bigV1.length);
      const reader = async () => {
        const fh = await fs.open(file, 'r');
        try {
          for (let i = 0; i < 12; i++) {
            const offset = randomInt(bigV1.length);
            const length = randomInt(1, 300_000);
            const buf = Buffer.alloc(length);
            const { bytesRead } = await fh.read(buf, 0, length, offset);
            assert.equal(bytesRead, Math.min(length, bigV1.length - offset));
            assert.ok(buf.subarray(0, bytesRead).equals(bigV1.subarray(offset, offset + bytesRead)), `read at ${offset}`);
          }
        } finally {
          await fh.close();
        }
      };
      await Promise.all(Array.from({ length: 16 }, reader));
      // Whole files, all at once, by many readers.
      const wanted = ['big.bin', 'small.txt', 'sub/deeper/file.txt', 'new.txt', 'tagged', 'sub/hard2'];
      const reads = await Promise.all(
        Array.from({ length: 24 }, (_, i) => wanted[i % wanted.length]!).map(async (rel) => ({
          rel,
          got: await fs.readFile(path.join(snap(id2), rel)),
        })),
      );
      for (const { rel, got } of reads) assert.ok(got.equals(await fs.readFile(path.join(data, rel))), rel);
    });

    it('cp -a of a snapshot directory equals the original, bytes and metadata', async () => {
      const copy = path.join(tmp.path, 'copy');
      const r = await tool('cp', ['-a', snap(id2), copy]);
      assert.equal(r.code, 0, r.stderr);
      const want = await describeTree(data);
      const got = await describeTree(copy);
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
      for (const [rel, w] of want) assert.deepEqual(got.get(rel), w, rel || '(top)');
      // The things this checks are really there.
      assert.equal(want.get('sub/hard2')!.links, 'sub/hard1,sub/hard2');
      assert.ok(want.get('tagged')!.xattrs!['user.binary']);
      assert.equal(want.get('link')!.target, 'small.txt');
      assert.equal(want.get('fifo')!.type, 'fifo');
      assert.ok(want.has(NOT_UTF8_NAME.toString('latin1')) && want.has(Buffer.from('naïve ünïcode').toString('latin1')));
      await fs.rm(copy, { recursive: true });
    });

    it('diff -r between two snapshots reports exactly the files that changed', async () => {
      const a = snap(id1);
      const b = snap(id2);
      const r = await tool('diff', ['-rq', '--no-dereference', '--exclude=fifo', a, b]);
      assert.equal(r.code, 1, r.stderr);
      const want = [
        ...changes.changed.map((f) => `Files ${a}/${f} and ${b}/${f} differ`),
        ...changes.removed.map((f) => `Only in ${a}: ${f}`),
        ...changes.added.map((f) => `Only in ${b}: ${f}`),
      ].sort();
      assert.deepEqual(r.stdout.trim().split('\n').sort(), want);
    });

    it('shows recorded times to the nanosecond, including times before 1970', async () => {
      const small = await fs.lstat(path.join(snap(id1), 'small.txt'), { bigint: true });
      assert.equal(small.mtimeNs, 1600000000123456789n);
      const secret = await fs.lstat(path.join(snap(id2), 'secret'), { bigint: true });
      assert.equal(secret.mtimeNs, -86400250000000n);
      const link = await fs.lstat(path.join(snap(id2), 'link'), { bigint: true });
      assert.equal(link.mtimeNs, 1500000000987654321n);
    });

    it('find lists the same tree as in the original', async () => {
      const fmt = ['.', '-printf', '%y %m %n %s %p\\n'];
      const want = await tool('find', fmt, data);
      const got = await tool('find', fmt, snap(id2));
      assert.equal(got.code, 0, got.stderr);
      const norm = (s: string) => s.trim().split('\n').map((l) => (l.startsWith('d ') ? l.replace(/^d (\d+) (\d+) \d+/, 'd $1 $2') : l)).sort();
      assert.deepEqual(norm(got.stdout), norm(want.stdout));
    });

    it('refuses every kind of write with EROFS', async () => {
      const s = snap(id2);
      const attempts: [string, () => Promise<unknown>][] = [
        ['create', () => fs.writeFile(path.join(s, 'created'), 'x')],
        ['write', () => fs.writeFile(path.join(s, 'small.txt'), 'x')],
        ['append', () => fs.appendFile(path.join(s, 'small.txt'), 'x')],
        ['open rw', () => fs.open(path.join(s, 'small.txt'), fsc.O_RDWR)],
        ['truncate', () => fs.truncate(path.join(s, 'small.txt'), 0)],
        ['mkdir', () => fs.mkdir(path.join(s, 'newdir'))],
        ['rmdir', () => fs.rmdir(path.join(s, 'sub', 'deeper'))],
        ['unlink', () => fs.unlink(path.join(s, 'small.txt'))],
        ['rename', () => fs.rename(path.join(s, 'small.txt'), path.join(s, 'renamed'))],
        ['symlink', () => fs.symlink('x', path.join(s, 'newlink'))],
        ['link', () => fs.link(path.join(s, 'small.txt'), path.join(s, 'newhard'))],
        ['chmod', () => fs.chmod(path.join(s, 'small.txt'), 0o777)],
        ['chown', () => fs.chown(path.join(s, 'small.txt'), 1, 1)],
        ['utimes', () => fs.utimes(path.join(s, 'small.txt'), 1, 1)],
        ['setxattr', async () => setXattr(path.join(s, 'small.txt'), 'user.x', 'y')],
        ['mkdir in the root', () => fs.mkdir(path.join(mnt, 'x'))],
      ];
      for (const [what, attempt] of attempts) await assertErrno(attempt(), 'EROFS', what);
      const r = await exec('mkfifo', [path.join(s, 'newfifo')]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Read-only file system/);
    });
  });

  describe('a damaged repository', () => {
    let m: MountProcess | undefined;
    let badChunk: string;
    const snap = (id: string) => inSnapshot(path.join(mnt, 'ids', id), data);

    before(async () => {
      // Flip a byte in the second chunk of medium.bin (found with the library).
      const spec = { type: 'local' as const, dir: repo };
      const store = await openStore(spec);
      const r = await Repository.open(store, PASSPHRASE);
      const s = await r.getSnapshot(id1);
      const parts = [...path.resolve(data, 'medium.bin').slice(1).split('/')].map((p) => Buffer.from(p));
      const { entry } = await resolvePath((t) => r.getTree(t), s.tree, parts);
      badChunk = entry!.chunks![1]!.id;
      await corruptStoredObject(repo, store, 'chunk', badChunk);
      await r.close();
      m = await startMount(repo, mnt);
    });

    after(async () => {
      await cleanupMount(m, mnt);
      assert.equal(await mountedAt(mnt), undefined, 'nothing left mounted');
    });

    it('a corrupted chunk gives EIO on that file only; the rest reads fine', async () => {
      const medium = path.join(snap(id1), 'medium.bin');
      await assertErrno(fs.readFile(medium), 'EIO', 'reading medium.bin');
      // The first chunk of the same file is intact.
      const fh = await fs.open(medium, 'r');
      const head = Buffer.alloc(4096);
      assert.equal((await fh.read(head, 0, 4096, 0)).bytesRead, 4096);
      await fh.close();
      // Other files of both snapshots, and listings, are unaffected.
      assert.ok((await fs.readFile(path.join(snap(id1), 'big.bin'))).equals(bigV1));
      assert.ok((await fs.readFile(path.join(snap(id2), 'big.bin'))).equals(await fs.readFile(path.join(data, 'big.bin'))));
      assert.equal(await fs.readFile(path.join(snap(id2), 'small.txt'), 'utf8'), 'hello again, snapshot\n');
      assert.ok((await fs.readdir(snap(id1))).includes('medium.bin'));
      // And it is logged, naming the chunk.
      assert.match(m!.stderr(), new RegExp(`read .*medium\\.bin.*chunk ${badChunk}`));
    });
  });

  describe('unmounting', () => {
    for (const how of ['fusermount -u', 'SIGINT', 'SIGTERM'] as const) {
      it(`${how} ends the foreground process cleanly and leaves nothing mounted`, async () => {
        let m: MountProcess | undefined;
        try {
          m = await startMount(repo, mnt);
          assert.equal((await fs.readdir(path.join(mnt, 'ids'))).length, 2, m.stderr());
          if (how === 'fusermount -u') {
            const r = await exec('fusermount', ['-u', mnt]);
            assert.equal(r.code, 0, r.stderr);
          } else m.child.kill(how);
          assert.deepEqual(await m.exited, { code: 0, signal: null }, m.stderr());
          assert.equal(await mountedAt(mnt), undefined);
        } finally {
          await cleanupMount(m, mnt);
        }
      });
    }

    it('a killed mount process is unmounted by the auto_unmount helper, every time', async () => {
      // Five kills of a fully mounted process (startMount waits until it has said so). Before the fix (mount/helper-socket.ts),
      // libfuse's helper left 11 dead mounts in 60 such kills on a loaded machine.
      for (let round = 0; round < 5; round++) {
        let m: MountProcess | undefined;
        try {
          m = await startMount(repo, mnt);
          // The helper's socket must be released after the /dev/fuse fd: it must have the lower number.
          const fds = await fdTable(m.child.pid!);
          const fuseFds = [...fds].filter(([, l]) => l === '/dev/fuse').map(([n]) => n);
          const sockets = [...fds].filter(([n, l]) => n > 2 && l.startsWith('socket:')).map(([n]) => n);
          assert.equal(fuseFds.length, 1, JSON.stringify([...fds]));
          assert.equal(sockets.length, 1, JSON.stringify([...fds]));
          assert.ok(sockets[0]! < fuseFds[0]!, `helper socket fd ${sockets[0]} is above the /dev/fuse fd ${fuseFds[0]}`);
          m.child.kill('SIGKILL');
          await m.exited;
          // The helper notices the process is gone and unmounts: wait for that (bounded, generously for busy machines).
          for (let i = 0; i < 2400 && (await mountedAt(mnt)); i++) await new Promise((r) => setTimeout(r, 25));
          assert.equal(await mountedAt(mnt), undefined, `round ${round}: ${m.stderr()}`);
        } finally {
          await cleanupMount(m, mnt);
        }
      }
    });

    it('mounting on a dead mount says so and how to free it (exit 1)', async () => {
      let m: MountProcess | undefined;
      try {
        m = await startMount(repo, mnt);
        // A dead mount: the helper is gone too (kill -9 of both), so nothing unmounts it.
        const helper = await helperPid(mnt);
        assert.ok(helper, 'a fusermount helper serves the mount');
        process.kill(helper, 'SIGKILL');
        m.child.kill('SIGKILL');
        await m.exited;
        await assertErrno(fs.stat(mnt), 'ENOTCONN', 'the dead mount');
        const r = await obnam(['mount', mnt], { env: repoEnv(repo) });
        assert.equal(r.code, 1, r.stderr);
        assert.doesNotMatch(r.stderr, /--help/);
        assert.match(r.stderr, new RegExp(`${mnt} is a dead mount .*free it with: fusermount -u ${mnt}`));
      } finally {
        await cleanupMount(m, mnt);
      }
      assert.equal(await mountedAt(mnt), undefined);
    });
  });
});
