/**
 * Mount walk benchmark: the memory of a mount while `find` walks a snapshot
 * of many entries (a synthetic tree written as backups write trees, into a
 * real local repository), with the bounded inode table against an unbounded
 * one (what the mount had before). Each configuration mounts in a process of
 * its own; `find -printf %s` stats every entry (and the numbers it prints
 * must all differ); after the walk, and after a second walk, it reports its JavaScript
 * heap (after a full GC), its RSS and the paths its inode table remembers.
 * RSS also holds libfuse's own table of the nodes the kernel still caches,
 * which the kernel alone bounds (it forgets them under memory pressure).
 *
 *   npx tsc -p . && node dist/bench/mount-walk.js
 *
 * Settings (environment): BENCH_WALK_DIRS (directories, default 200),
 * BENCH_WALK_FILES (files in each, default 1000), BENCH_WALK_CACHE_MB (the
 * view's object cache, default the mount's 256), BENCH_DIR (work directory,
 * kept if given). Needs /dev/fuse and root, as the mount tests do.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Snapshot, SUMMARY_FIELDS } from '../lib/format/snapshot.js';
import type { TreeEntry } from '../lib/format/tree.js';
import { writeDirectory } from '../lib/format/treesplit.js';
import { poolReader } from '../lib/fsview/objects.js';
import { FsView } from '../lib/fsview/view.js';
import { Repository } from '../lib/repo/repository.js';
import { LocalStore } from '../lib/store/local.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { mountView } from '../mount/mount.js';

const DIRS = Number(process.env.BENCH_WALK_DIRS ?? 200);
const FILES = Number(process.env.BENCH_WALK_FILES ?? 1000);
const CACHE = process.env.BENCH_WALK_CACHE_MB === undefined ? undefined : Number(process.env.BENCH_WALK_CACHE_MB) * 1024 * 1024;
const PASSPHRASE = 'bench';
/** The passphrase's cost is not what is measured. */
const CHEAP_KDF = { logN: 10, r: 8, p: 1 };
const SELF = fileURLToPath(import.meta.url);
const T0 = { sec: 1_700_000_000, nsec: 0 };
const MB = 1024 * 1024;

const file = (name: string, data: string): TreeEntry => ({
  name: Buffer.from(name),
  type: 'file',
  mode: 0o644,
  uid: 1000,
  gid: 1000,
  mtime: T0,
  ctime: T0,
  size: data.length,
  data: Buffer.from(data),
});
const dir = (name: string, subtree: string): TreeEntry => ({ ...file(name, ''), type: 'dir', mode: 0o755, data: undefined, size: 0, subtree });

/** Writes the synthetic snapshot; its id. Names are of a typical length (a path inside it is about 60 bytes). */
async function build(repoDir: string): Promise<string> {
  const store = await LocalStore.create(repoDir);
  const repo = await Repository.init(store, { type: 'local', dir: repoDir }, PASSPHRASE, undefined, { kdf: CHEAP_KDF });
  try {
    const put = async (entries: TreeEntry[]) => writeDirectory(entries, repo.keys.chunker, async (n) => (await repo.putTree(n)).id);
    const dirs: TreeEntry[] = [];
    for (let d = 0; d < DIRS; d++) {
      const files = Array.from({ length: FILES }, (_, f) => file(`a-file-of-typical-name-${String(f).padStart(6, '0')}.txt`, `file ${d}/${f}\n`));
      dirs.push(dir(`project-directory-${String(d).padStart(5, '0')}`, await put(files)));
    }
    const root = await put(dirs);
    const summary = Object.fromEntries(SUMMARY_FIELDS.map((k) => [k, 0])) as unknown as Snapshot['summary'];
    const { id } = await repo.putSnapshot({ tree: root, time: T0, end: T0, hostname: 'bench', username: 'bench', paths: ['/'], tags: [], program: 'bench', summary });
    await store.flush();
    return id;
  } finally {
    await repo.close();
  }
}

interface Report {
  heapMB: number;
  rssMB: number;
  inodes: number;
}

/** The mount process: mounts, then answers 'measure' with its memory after a full GC. */
async function serve(repoDir: string, mnt: string, capacity: number): Promise<void> {
  const repo = await Repository.open(await LocalStore.open(repoDir), PASSPHRASE);
  const pool = startRepoPool(repo);
  const view = await FsView.open(
    { ...poolReader(pool), listSnapshotIds: () => repo.listSnapshotIds(), refresh: () => repo.refresh() },
    { inodes: { capacity }, cacheBytes: CACHE },
  );
  const m = await mountView({ view, mountpoint: mnt, log: (l) => process.stderr.write(`${l}\n`) });
  process.once('SIGTERM', () => void m.unmount());
  process.on('message', (msg: string) => {
    if (msg !== 'measure') return;
    (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    process.send!({ heapMB: mem.heapUsed / MB, rssMB: mem.rss / MB, inodes: view.stats().inodes } satisfies Report);
  });
  process.send!('ready');
  await m.closed;
  process.disconnect();
  await pool.close();
  await repo.close();
}

function ask(child: ChildProcess): Promise<Report> {
  return new Promise((resolve) => {
    child.once('message', (r: Report) => resolve(r));
    child.send('measure');
  });
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}`))));
  });
}

async function measure(repoDir: string, mnt: string, id: string, capacity: number): Promise<{ before: Report; walked: number; after: Report; again: Report; seconds: number }> {
  const child = spawn(process.execPath, ['--expose-gc', SELF, '--serve', repoDir, mnt, String(capacity)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`the mount process exited ${code}`)));
    });
    const before = await ask(child);
    const started = performance.now();
    // -printf %s stats every entry (a lookup each, as du, cp -a or rsync do).
    const lines = (await run('find', [path.join(mnt, 'ids', id), '-printf', '%i %s %p\n'])).split('\n').filter((l) => l);
    const seconds = (performance.now() - started) / 1000;
    const inodes = new Set(lines.map((l) => l.slice(0, l.indexOf(' '))));
    if (inodes.size !== lines.length) throw new Error(`${lines.length} entries but ${inodes.size} distinct inode numbers`);
    const after = await ask(child);
    await run('find', [path.join(mnt, 'ids', id), '-printf', '%i %s\n']);
    const again = await ask(child);
    return { before, walked: lines.length, after, again, seconds };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

async function main(): Promise<void> {
  const work = process.env.BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-bench-walk-'));
  const repoDir = path.join(work, 'repo');
  const mnt = path.join(work, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  try {
    const started = performance.now();
    const id = await build(repoDir);
    console.log(`built ${(DIRS * FILES + DIRS + 1).toLocaleString('en')} entries in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    console.log('| inode table | entries walked | walk time | JS heap before / after / after a 2nd walk | RSS before / after / 2nd | paths remembered |');
    console.log('|---|---|---|---|---|---|');
    for (const [label, capacity] of [['bounded (default)', 0], ['unbounded (as before)', Infinity]] as const) {
      const r = await measure(repoDir, mnt, id, capacity);
      const mb = (x: number) => `${x.toFixed(0)} MB`;
      console.log(
        `| ${label} | ${r.walked.toLocaleString('en')} | ${r.seconds.toFixed(1)} s | ${mb(r.before.heapMB)} / ${mb(r.after.heapMB)} / ${mb(r.again.heapMB)} | ` +
          `${mb(r.before.rssMB)} / ${mb(r.after.rssMB)} / ${mb(r.again.rssMB)} | ${r.after.inodes.toLocaleString('en')} |`,
      );
    }
  } finally {
    if (!process.env.BENCH_DIR) fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') {
  const capacity = Number(process.argv[5]);
  await serve(process.argv[3]!, process.argv[4]!, capacity === 0 ? (undefined as unknown as number) : capacity);
} else {
  await main();
}
