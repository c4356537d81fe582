/**
 * Helpers for the mount and file-system view tests: a source tree with every
 * kind of file and metadata a snapshot records, a repository backed up from
 * it with the real CLI, `obnam mount` as a child process, and cleanup that
 * never leaves a mount behind (even a hung one).
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Kind } from '../../lib/format/version.js';
import type { ObjectStore } from '../../lib/store/store.js';
import { fileURLToPath } from 'node:url';
import { baseEnv, obnamOk, OBNAM, RunResult, runCommand } from './cli.js';
import type { LibraryMountReply, LibraryMountRequest, LibraryMountSettings } from './library-mount.js';
import { setXattr, xattrsOf } from './tree.js';

export const PASSPHRASE = 'mount test passphrase';

export function repoEnv(repo: string): Record<string, string> {
  return { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASSPHRASE };
}

/** Runs a tool (cp, diff, fusermount, ...); resolves with its exit code and output. */
export function exec(cmd: string, args: string[], cwd?: string): Promise<RunResult> {
  return runCommand(cmd, args, { cwd });
}

/** Whether FUSE can be used here at all (the FUSE tests skip themselves otherwise). */
export const fuseAvailable = await fs.access('/dev/fuse').then(
  () => true,
  () => false,
);

async function run(cmd: string, args: string[]): Promise<void> {
  const r = await exec(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
}

/** Sets a file's mtime to the nanosecond (Node's utimes cannot), without following symlinks. */
export function touchNs(file: string, epochSeconds: string): Promise<void> {
  return run('touch', ['-h', '-m', '-d', `@${epochSeconds}`, file]);
}

export const BIG_SIZE = 12 * 1024 * 1024 + 12345;
/** medium.bin: above DEFAULT_CHUNKER.max, so always two chunks or more. */
export const MEDIUM_SIZE = 4 * 1024 * 1024 + 300 * 1024 + 7;
/** A file name that is not valid UTF-8. */
export const NOT_UTF8_NAME = Buffer.from([0x63, 0x61, 0x66, 0xe9]);

/**
 * Creates the first version of the test data under `root`: multi-chunk and
 * inline files, an empty file, modes, nanosecond and pre-1970 times,
 * symlinks, a hardlink pair, xattrs, a fifo, nested directories and a
 * directory large enough to be split into pages.
 */
export async function makeSourceTree(root: string, opts: { bigDir?: boolean } = {}): Promise<void> {
  await fs.mkdir(path.join(root, 'sub', 'deeper'), { recursive: true });
  await fs.writeFile(path.join(root, 'big.bin'), randomBytes(BIG_SIZE));
  // Longer than the chunker's largest chunk (4 MiB), so it has at least two chunks whatever the
  // repository's random chunker key (at 3 MiB it sometimes got one chunk, failing the tests that damage its second).
  await fs.writeFile(path.join(root, 'medium.bin'), randomBytes(MEDIUM_SIZE));
  await fs.writeFile(path.join(root, 'small.txt'), 'hello, snapshot\n');
  await fs.writeFile(path.join(root, 'empty'), '');
  await fs.writeFile(path.join(root, 'secret'), 'only for me\n', { mode: 0o600 });
  await fs.writeFile(path.join(root, 'tool.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await fs.writeFile(path.join(root, 'sub', 'deeper', 'file.txt'), 'deep down\n');
  await fs.writeFile(path.join(root, 'sub', 'hard1'), 'linked twice\n');
  await fs.link(path.join(root, 'sub', 'hard1'), path.join(root, 'sub', 'hard2'));
  await fs.symlink('small.txt', path.join(root, 'link'));
  await fs.symlink('/nonexistent/target', path.join(root, 'dangling'));
  await fs.writeFile(path.join(root, 'tagged'), 'with attributes\n');
  setXattr(path.join(root, 'tagged'), 'user.comment', Buffer.from('a comment'));
  setXattr(path.join(root, 'tagged'), 'user.binary', Buffer.from([0, 1, 2, 255]));
  await run('mkfifo', [path.join(root, 'fifo')]);
  // Names: UTF-8 beyond ASCII, and bytes that are not UTF-8 at all (Latin-1 "café").
  await fs.writeFile(path.join(root, 'naïve ünïcode'), 'utf-8 name\n');
  await fs.writeFile(Buffer.concat([Buffer.from(`${root}/`), NOT_UTF8_NAME]), 'latin-1 name\n');
  setXattr(Buffer.concat([Buffer.from(`${root}/`), NOT_UTF8_NAME]), 'user.latin1', 'xattr of a name that is not UTF-8');
  if (opts.bigDir) {
    await fs.mkdir(path.join(root, 'many'));
    for (let i = 0; i < 5000; i += 500) {
      await Promise.all(
        Array.from({ length: 500 }, (_, j) => fs.writeFile(path.join(root, 'many', `f${String(i + j).padStart(5, '0')}`), `${i + j}\n`)),
      );
    }
  }
  await touchNs(path.join(root, 'small.txt'), '1600000000.123456789');
  await touchNs(path.join(root, 'link'), '1500000000.987654321');
  await touchNs(path.join(root, 'secret'), '-86400.25'); // 1969-12-31
  await touchNs(path.join(root, 'sub', 'deeper'), '1234567890.000000001');
}

/**
 * Changes the tree for a second snapshot. Returns the paths (relative to
 * root) whose contents differ, and those only in the first or the second.
 */
export async function changeSourceTree(root: string): Promise<{ changed: string[]; removed: string[]; added: string[] }> {
  await fs.writeFile(path.join(root, 'small.txt'), 'hello again, snapshot\n');
  const big = await fs.open(path.join(root, 'big.bin'), 'r+');
  await big.write(Buffer.from('CHANGED'), 0, 7, 5 * 1024 * 1024);
  await big.close();
  await fs.writeFile(path.join(root, 'sub', 'deeper', 'file.txt'), 'deeper still\n');
  await fs.rm(path.join(root, 'medium.bin'));
  await fs.writeFile(path.join(root, 'new.txt'), 'brand new\n');
  await fs.chmod(path.join(root, 'tool.sh'), 0o700); // metadata only: diff does not report it
  return { changed: ['big.bin', 'small.txt', 'sub/deeper/file.txt'], removed: ['medium.bin'], added: ['new.txt'] };
}

export async function backup(repo: string, dir: string): Promise<string> {
  const r = await obnamOk(['backup', '--json', dir], { env: repoEnv(repo) });
  return (JSON.parse(r.stdout) as { snapshot: string }).snapshot;
}

export async function initRepo(repo: string): Promise<void> {
  await obnamOk(['init'], { env: repoEnv(repo) });
}

/** The path of `dir` (absolute) inside a snapshot directory of the mount. */
export function inSnapshot(snapshotDir: string, dir: string): string {
  return path.join(snapshotDir, path.resolve(dir).slice(1));
}

// ---- damaging a repository ----

async function* filesBelow(dir: string): AsyncGenerator<string> {
  for (const d of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) yield* filesBelow(p);
    else if (d.isFile()) yield p;
  }
}

/**
 * Flips one byte of a stored object, wherever the store keeps it (a file of
 * its own or a pack): found by searching the repository's files for the
 * object's stored bytes, so this does not depend on the store's layout.
 */
export async function corruptStoredObject(repoDir: string, store: ObjectStore, kind: Kind, id: string): Promise<void> {
  const stored = Buffer.from(await store.get(kind, id));
  const at = stored.length >> 1;
  const needle = stored.subarray(Math.max(0, at - 32), at + 32);
  for await (const file of filesBelow(repoDir)) {
    const bytes = await fs.readFile(file);
    const i = bytes.indexOf(needle);
    if (i < 0) continue;
    bytes[i + 32] ^= 0x10;
    await fs.writeFile(file, bytes);
    return;
  }
  throw new Error(`${kind} ${id}: stored bytes not found under ${repoDir}`);
}

// ---- comparing trees ----

interface Described {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  nlink: bigint;
  target?: string;
  sha256?: string;
  xattrs?: Record<string, string>;
  /** Other names of the same inode, relative to the tree's root. */
  links: string;
}

function typeOf(st: import('node:fs').BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

/**
 * Everything `cp -a` preserves about every path below `root`, keyed by
 * relative path (as a latin1 string: one character per byte, so names that
 * are not UTF-8 are compared exactly).
 */
export async function describeTree(root: string): Promise<Map<string, Described>> {
  const out = new Map<string, Described>();
  const byIno = new Map<bigint, string[]>();
  const visit = async (rel: string) => {
    const p = Buffer.from(rel ? `${root}/${rel}` : root, 'latin1');
    const st = await fs.lstat(p, { bigint: true });
    const d: Described = {
      type: typeOf(st),
      mode: Number(st.mode),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: st.isDirectory() ? 0n : st.size,
      mtimeNs: st.mtimeNs,
      nlink: st.nlink,
      links: '',
    };
    if (st.isSymbolicLink()) d.target = (await fs.readlink(p, { encoding: 'buffer' })).toString('latin1');
    if (st.isFile()) d.sha256 = createHash('sha256').update(await fs.readFile(p)).digest('hex');
    if (st.isFile() || st.isDirectory()) {
      const user = Object.entries(xattrsOf(p)).filter(([n]) => n.startsWith('user.'));
      if (user.length) d.xattrs = Object.fromEntries(user);
    }
    if (!st.isDirectory()) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), rel]);
    out.set(rel, d);
    if (st.isDirectory()) {
      const names = (await fs.readdir(p, { encoding: 'buffer' })).map((n) => n.toString('latin1')).sort();
      for (const name of names) await visit(rel ? `${rel}/${name}` : name);
    }
  };
  await visit('');
  for (const names of byIno.values()) for (const n of names) out.get(n)!.links = [...names].sort().join(',');
  return out;
}

// ---- running obnam mount ----

export interface MountProcess {
  mountpoint: string;
  /** The FUSE connection's number (the mount's device minor): /sys/fs/fuse/connections/N. */
  connection: string;
  child: ChildProcess;
  /** Everything the mount process wrote to stderr so far. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function mountedAt(mountpoint: string): Promise<{ device: string } | undefined> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[4] === mountpoint) return { device: f[2]! };
  }
  return undefined;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A deadline for a race: it does not keep the test process alive once what it races has ended. */
const deadline = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Starts `obnam mount` and resolves once the process says it is mounted: it then holds the FUSE fd,
 * not only the kernel's mount (which appears a moment earlier). Rejects if the process ends first.
 */
export async function startMount(repo: string, mountpoint: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<MountProcess> {
  const child = spawn(process.execPath, [OBNAM, 'mount', mountpoint, ...extraArgs], {
    env: baseEnv({ ...repoEnv(repo), ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = await whenMounted(child, mountpoint);
  for (let i = 0; i < 3000 && !/mounted read-only at/.test(m.stderr()); i++) {
    if (!alive(m)) throw new Error(`obnam mount exited before saying it is mounted: ${m.stderr()}`);
    await pause(10);
  }
  if (!/mounted read-only at/.test(m.stderr())) throw new Error(`obnam mount did not say it is mounted: ${m.stderr()}`);
  return m;
}

export interface LibraryMountProcess extends MountProcess {
  /** Moves the mount's clock on (it must have been started with manualClock). */
  advance(ms: number): Promise<void>;
  /** The view's counters and the process's memory. */
  stats(): Promise<Extract<LibraryMountReply, { type: 'stats' }>>;
}

const LIBRARY_MOUNT = fileURLToPath(new URL('./library-mount.js', import.meta.url));

/** Mounts through the library in a child process (library-mount.ts), with the settings the library lets a test inject. */
export async function startLibraryMount(repo: string, mountpoint: string, settings: LibraryMountSettings = {}): Promise<LibraryMountProcess> {
  const child = spawn(process.execPath, [LIBRARY_MOUNT, JSON.stringify({ ...settings, repo, mountpoint, passphrase: PASSPHRASE })], {
    env: baseEnv(),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const m = await whenMounted(child, mountpoint);
  const ask = <T extends LibraryMountReply['type']>(req: LibraryMountRequest, want: T) =>
    new Promise<Extract<LibraryMountReply, { type: T }>>((resolve, reject) => {
      const onMessage = (r: LibraryMountReply) => {
        if (r.type !== want) return;
        child.off('message', onMessage);
        resolve(r as Extract<LibraryMountReply, { type: T }>);
      };
      child.on('message', onMessage);
      child.send(req, (e) => e && reject(e));
    });
  return {
    ...m,
    advance: async (ms) => void (await ask({ type: 'advance', ms }, 'advanced')),
    stats: () => ask({ type: 'stats' }, 'stats'),
  };
}

async function whenMounted(child: ChildProcess, mountpoint: string): Promise<MountProcess> {
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  if (process.env.OBNAM_TEST_VERBOSE) child.stderr!.pipe(process.stderr);
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let ended = false;
  void exited.then(() => (ended = true));
  let mounted: { device: string } | undefined;
  while (!(mounted = await mountedAt(mountpoint))) {
    if (ended) throw new Error(`obnam mount exited before mounting: ${stderr}`);
    await pause(25);
  }
  return { mountpoint, connection: mounted.device.split(':')[1]!, child, stderr: () => stderr, exited };
}

const alive = (m: MountProcess) => m.child.exitCode === null && m.child.signalCode === null;

/**
 * Makes sure nothing is mounted at `mountpoint` and the mount process is
 * gone: SIGTERM, then fusermount -u -z, then aborting the FUSE connection
 * (which frees even a hung mount and anything waiting on it), then SIGKILL.
 */
export async function cleanupMount(m: MountProcess | undefined, mountpoint: string): Promise<void> {
  if (m && alive(m)) {
    m.child.kill('SIGTERM');
    await Promise.race([m.exited, deadline(15_000)]);
  }
  const mounted = await mountedAt(mountpoint);
  if (mounted) await exec('fusermount', ['-u', '-z', mountpoint]);
  if ((await mountedAt(mountpoint)) || (m && alive(m))) {
    await abortConnection(m?.connection ?? mounted?.device.split(':')[1]);
    await exec('fusermount', ['-u', '-z', mountpoint]);
  }
  if (m && alive(m)) {
    m.child.kill('SIGKILL');
    const gone = await Promise.race([m.exited.then(() => true), deadline(15_000).then(() => false)]);
    if (!gone) throw new Error(`obnam mount (pid ${m.child.pid}) does not exit; its stderr: ${m.stderr()}`);
  }
}

async function abortConnection(connection: string | undefined): Promise<void> {
  if (!connection) return;
  const dir = '/sys/fs/fuse/connections';
  if ((await fs.readdir(dir).catch(() => [])).length === 0) await exec('mount', ['-t', 'fusectl', 'none', dir]);
  await fs.writeFile(path.join(dir, connection, 'abort'), '1').catch(() => undefined);
}

/** Awaits p and checks that it rejects with this errno code. */
export async function assertErrno(p: Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(p, (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, code, `${what}: ${e.message}`);
    return true;
  });
}

/** `cp -a FROM COPY` (FROM inside a mount), then asserts COPY describes exactly as `source`: names, types, modes, times, content. */
export async function assertCopiesExactly(from: string, copy: string, source: string): Promise<void> {
  const r = await exec('cp', ['-a', from, copy]);
  assert.equal(r.code, 0, r.stderr);
  const want = await describeTree(source);
  const got = await describeTree(copy);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [rel, w] of want) assert.deepEqual(got.get(rel), w, rel || '(top)');
}
