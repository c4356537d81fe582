/**
 * `obnam mount` of a remote repository: the same CLI, backing up to and
 * mounting from a real obnam-server over HTTPS, read with cp -a and diff -r,
 * a corrupted chunk on the server giving EIO on that file only, and the
 * mount following backups and deletions on the server.
 *
 * The server runs in its own process: in this one, its file reads would queue
 * behind this process's own reads of the mount (both use libuv's small thread
 * pool), which wait for the mount, which waits for the server.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Repository } from '../lib/repo/repository.js';
import { resolvePath } from '../lib/repo/treewalk.js';
import { openStore } from '../lib/store/open.js';
import { obnamOk } from './helpers/cli.js';
import {
  changeSourceTree,
  cleanupMount,
  corruptStoredObject,
  describeTree,
  exec,
  fuseAvailable,
  inSnapshot,
  makeSourceTree,
  mountedAt,
  MountProcess,
  PASSPHRASE,
  startMount,
} from './helpers/mount.js';
import { addClient } from '../server/admin.js';
import { initServerDir } from '../server/init.js';
import { serverDir } from '../server/layout.js';
import { namespaceDirOf, ServerProcess, spawnServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';


describe('obnam mount of a repository on an obnam-server', { skip: !fuseAvailable && 'no /dev/fuse' }, () => {
  let server: ServerProcess | undefined;
  let serverHome: string;
  let tmp: TempDir;
  let env: Record<string, string>;
  let data: string;
  let mnt: string;
  let id1: string;
  let id2: string;
  let bigV1: Buffer;
  let changes: Awaited<ReturnType<typeof changeSourceTree>>;
  let m: MountProcess | undefined;
  const snap = (id: string) => inSnapshot(path.join(mnt, 'ids', id), data);

  const backup = async () => (JSON.parse((await obnamOk(['backup', '--json', data], { env })).stdout) as { snapshot: string }).snapshot;

  before(async () => {
    tmp = await tempDir();
    data = path.join(tmp.path, 'data');
    mnt = path.join(tmp.path, 'mnt');
    serverHome = path.join(tmp.path, 'server');
    await fs.mkdir(mnt);
    const { fingerprint } = await initServerDir(serverHome);
    const token = (await addClient(serverDir(serverHome), 'mounter', false)).token;
    server = await spawnServer(serverHome);
    env = { OBNAM_REPO: server.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: PASSPHRASE };
    await makeSourceTree(data);
    bigV1 = await fs.readFile(path.join(data, 'big.bin'));
    await obnamOk(['init'], { env });
    id1 = await backup();
    changes = await changeSourceTree(data);
    id2 = await backup();

    // Corrupt one chunk of medium.bin where the server keeps it.
    const spec = { type: 'http' as const, url: server.url, token, fingerprint };
    const repo = await Repository.open(await openStore(spec), PASSPHRASE);
    const s = await repo.getSnapshot(id1);
    const parts = path.resolve(data, 'medium.bin').slice(1).split('/').map((p) => Buffer.from(p));
    const chunk = (await resolvePath((t) => repo.getTree(t), s.tree, parts)).entry!.chunks![1]!.id;
    await repo.close();
    const nsDir = await namespaceDirOf(serverHome, 'mounter');
    const local = await openStore({ type: 'local', dir: nsDir });
    await corruptStoredObject(nsDir, local, 'chunk', chunk);
    await local.close();

    m = await startMount(server.url, mnt, [], env);
  });

  after(async () => {
    await cleanupMount(m, mnt);
    assert.equal(await mountedAt(mnt), undefined, 'nothing left mounted');
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await tmp?.remove();
  });

  it('reads a large file at random offsets, with many readers at once', async () => {
    const file = path.join(snap(id1), 'big.bin');
    const reader = async () => {
      const fh = await fs.open(file, 'r');
      try {
        for (let i = 0; i < 8; i++) {
          const offset = randomInt(bigV1.length);
          const length = randomInt(1, 300_000);
          const buf = Buffer.alloc(length);
          const { bytesRead } = await fh.read(buf, 0, length, offset);
          assert.ok(buf.subarray(0, bytesRead).equals(bigV1.subarray(offset, offset + length)), `read at ${offset}`);
        }
      } finally {
        await fh.close();
      }
    };
    await Promise.all(Array.from({ length: 8 }, reader));
  });

  it('cp -a of a snapshot equals the original', async () => {
    const copy = path.join(tmp.path, 'copy');
    const r = await exec('cp', ['-a', snap(id2), copy]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await describeTree(copy), await describeTree(data));
  });

  it('diff -r between the snapshots reports exactly the changed files', async () => {
    const [a, b] = [snap(id1), snap(id2)];
    const r = await exec('diff', ['-rq', '--no-dereference', '--exclude=fifo', '--exclude=medium.bin', a, b]);
    assert.equal(r.code, 1, r.stderr);
    const want = [
      ...changes.changed.map((f) => `Files ${a}/${f} and ${b}/${f} differ`),
      ...changes.added.map((f) => `Only in ${b}: ${f}`),
    ].sort();
    assert.deepEqual(r.stdout.trim().split('\n').sort(), want);
  });

  it('shows a backup made while mounted, and drops a snapshot deleted on the server, within the default interval', async () => {
    const ids = () => fs.readdir(path.join(mnt, 'ids'));
    /** Polls the listing (read again at most every 5 s); bounded generously for a busy machine. */
    const until = async (ok: (listed: string[]) => boolean): Promise<string[]> => {
      const deadline = Date.now() + 60_000;
      let listed = await ids();
      while (!ok(listed) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        listed = await ids();
      }
      return listed;
    };
    await fs.writeFile(path.join(data, 'while-mounted.txt'), 'made while mounted\n');
    const id3 = await backup();
    let listed = await until((l) => l.includes(id3));
    assert.deepEqual([...listed].sort(), [id1, id2, id3].sort(), m!.stderr());
    assert.equal(await fs.readFile(inSnapshot(path.join(mnt, 'latest'), path.join(data, 'while-mounted.txt')), 'utf8'), 'made while mounted\n');
    const spec = { type: 'http' as const, url: env.OBNAM_REPO!, token: env.OBNAM_TOKEN!, fingerprint: env.OBNAM_SERVER_FINGERPRINT! };
    const store = await openStore(spec);
    try {
      await store.delete('snapshot', id3);
    } finally {
      await store.close();
    }
    listed = await until((l) => !l.includes(id3));
    assert.deepEqual([...listed].sort(), [id1, id2].sort(), m!.stderr());
    await assert.rejects(fs.readFile(inSnapshot(path.join(mnt, 'latest'), path.join(data, 'while-mounted.txt'))), { code: 'ENOENT' });
  });

  it('a chunk corrupted on the server gives EIO on its file only', async () => {
    await assert.rejects(fs.readFile(path.join(snap(id1), 'medium.bin')), { code: 'EIO' });
    assert.equal(await fs.readFile(path.join(snap(id1), 'small.txt'), 'utf8'), 'hello, snapshot\n');
    assert.ok((await fs.readFile(path.join(snap(id1), 'big.bin'))).equals(bigV1));
  });
});
