/**
 * Mount benchmark: how long `obnam mount` takes until the file system is
 * there, how long until the first byte of a file arrives, and how fast the
 * file reads sequentially through the mount, beside a plain `obnam restore`
 * of the same file. Everything runs through the real CLI in child processes
 * (as users run it); the kernel's page cache is empty for the file because
 * each run mounts afresh.
 *
 * From the bench runner (bench/run.ts): benchMountPart(ctx), which uses the
 * local part's repository and big file when they are there.
 * As a library: await benchMount({ repo, passphrase, file }).
 * Standalone (makes its own repository with a random file of SIZE MiB):
 *   node dist/bench/mount.js [--size 256] [--repo DIR --file /ABS/PATH] [--json]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, Measurement } from './measure.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OBNAM = path.join(ROOT, 'bin', 'obnam');

export interface MountBenchOptions {
  /** Repository: a directory or an https:// URL (then pass OBNAM_TOKEN etc. in env). */
  repo: string;
  passphrase: string;
  /** The file to read, by the absolute path it was backed up from. */
  file: string;
  /** Snapshot id (default: the latest). */
  snapshot?: string;
  /** More environment for the obnam processes. */
  env?: Record<string, string>;
}

export interface MountBenchResult {
  bytes: number;
  /** From starting `obnam mount` until the file system is mounted. */
  mountSeconds: number;
  /** From mounted until the first byte of the file was read (path lookup and first chunk). */
  firstByteSeconds: number;
  /** Reading the whole file sequentially through the mount. */
  readSeconds: number;
  readMBps: number;
  /** `obnam restore --path FILE` of the same file, process start to exit. */
  restoreSeconds: number;
  restoreMBps: number;
}

const MB = 1024 * 1024;
const now = () => performance.now() / 1000;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function env(opts: MountBenchOptions): NodeJS.ProcessEnv {
  return { ...process.env, OBNAM_REPO: opts.repo, OBNAM_PASSPHRASE: opts.passphrase, OBNAM_NO_PROGRESS: '1', ...opts.env };
}

function obnam(args: string[], e: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OBNAM, ...args], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`obnam ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

async function isMounted(mountpoint: string): Promise<boolean> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[4] === mountpoint);
}

async function stopMount(child: ChildProcess, mountpoint: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  if (await isMounted(mountpoint)) {
    await new Promise((r) => spawn('fusermount', ['-u', '-z', mountpoint], { stdio: 'ignore' }).on('close', r));
  }
}

async function readAll(file: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: MB })) n += (chunk as Buffer).length;
  return n;
}

export async function benchMount(opts: MountBenchOptions): Promise<MountBenchResult> {
  const e = env(opts);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'obnam-bench-mount-'));
  const mountpoint = path.join(work, 'mnt');
  await fs.mkdir(mountpoint);
  const snapshot = opts.snapshot ?? (JSON.parse(await obnam(['list', '--json'], e)) as { id: string }[]).at(-1)!.id;
  let child: ChildProcess | undefined;
  try {
    const t0 = now();
    child = spawn(process.execPath, [OBNAM, 'mount', mountpoint], { env: e, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    while (!(await isMounted(mountpoint))) {
      if (child.exitCode !== null) throw new Error(`obnam mount failed: ${stderr}`);
      await pause(2);
    }
    const mountSeconds = now() - t0;

    const inMount = path.join(mountpoint, 'ids', snapshot, path.resolve(opts.file).slice(1));
    const t1 = now();
    const fh = await fs.open(inMount, 'r');
    await fh.read(Buffer.alloc(1), 0, 1, 0);
    const firstByteSeconds = now() - t1;
    await fh.close();

    const t2 = now();
    const bytes = await readAll(inMount);
    const readSeconds = now() - t2;
    await stopMount(child, mountpoint);

    const target = path.join(work, 'restored');
    const t3 = now();
    await obnam(['restore', snapshot, target, '--path', path.resolve(opts.file)], e);
    const restoreSeconds = now() - t3;

    return {
      bytes,
      mountSeconds,
      firstByteSeconds,
      readSeconds,
      readMBps: bytes / MB / readSeconds,
      restoreSeconds,
      restoreMBps: bytes / MB / restoreSeconds,
    };
  } finally {
    if (child) await stopMount(child, mountpoint);
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Human-readable lines for a result. */
export function formatMountBench(r: MountBenchResult): string {
  const mb = (r.bytes / MB).toFixed(0);
  return [
    `mount: time to mount            ${(r.mountSeconds * 1000).toFixed(0)} ms`,
    `mount: time to first byte       ${(r.firstByteSeconds * 1000).toFixed(1)} ms`,
    `mount: sequential read          ${r.readMBps.toFixed(1)} MB/s (${mb} MiB in ${r.readSeconds.toFixed(2)} s)`,
    `restore of the same file        ${r.restoreMBps.toFixed(1)} MB/s (${mb} MiB in ${r.restoreSeconds.toFixed(2)} s, process included)`,
  ].join('\n');
}

/** Best effort: empty the page cache so the repository is read from disk (root only). */
async function dropCaches(): Promise<void> {
  await new Promise((r) => spawn('sync', { stdio: 'ignore' }).on('close', r).on('error', r));
  await fs.writeFile('/proc/sys/vm/drop_caches', '3').catch(() => undefined);
}

/**
 * The bench runner's mount part: mounts the local part's repository (or makes
 * one) and reads the big file through the mount, beside a restore of it.
 */
export async function benchMountPart(ctx: BenchContext): Promise<Measurement[]> {
  const file = path.join(ctx.work, 'big-file');
  if (!(await fs.stat(file).catch(() => undefined))?.isFile()) {
    process.stdout.write('mount bench needs the big file (BENCH_BIG_MB > 0): skipped\n');
    return [];
  }
  let repo = path.join(ctx.work, 'obnam-repo');
  const opts = (): MountBenchOptions => ({ repo, passphrase: ctx.env.OBNAM_PASSPHRASE ?? '', file, env: ctx.env });
  if (!(await fs.stat(repo).catch(() => undefined))) {
    repo = path.join(ctx.work, 'obnam-mount-repo');
    await obnam(['init'], env(opts()));
    await obnam(['backup', file], env(opts()));
  }
  await dropCaches();
  const r = await benchMount(opts());
  const lines = formatMountBench(r).split('\n');
  for (const l of lines) process.stdout.write(`${l}\n`);
  return [
    { tool: 'obnam', phase: 'mount', seconds: r.mountSeconds, bytes: 0, note: 'time to mount' },
    { tool: 'obnam', phase: 'mount 1st byte', seconds: r.firstByteSeconds, bytes: 0, note: 'time to first byte' },
    { tool: 'obnam', phase: 'mount read', seconds: r.readSeconds, bytes: r.bytes, note: 'big file through the mount' },
    { tool: 'obnam', phase: 'restore file', seconds: r.restoreSeconds, bytes: r.bytes, note: 'same file, obnam restore' },
  ];
}

async function standalone(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  let opts: MountBenchOptions;
  let cleanup = async () => undefined as void;
  if (arg('--repo')) {
    opts = { repo: arg('--repo')!, passphrase: process.env.OBNAM_PASSPHRASE ?? '', file: arg('--file')! };
  } else {
    const size = Number(arg('--size') ?? 256) * MB;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'obnam-bench-data-'));
    cleanup = () => fs.rm(dir, { recursive: true, force: true });
    const file = path.join(dir, 'data', 'random.bin');
    await fs.mkdir(path.dirname(file));
    const fh = await fs.open(file, 'w');
    const { randomFill } = await import('node:crypto');
    const block = Buffer.alloc(8 * MB);
    for (let done = 0; done < size; done += block.length) {
      await new Promise<void>((res, rej) => randomFill(block, (err) => (err ? rej(err) : res())));
      await fh.write(block, 0, Math.min(block.length, size - done));
    }
    await fh.close();
    opts = { repo: path.join(dir, 'repo'), passphrase: 'bench', file };
    await obnam(['init'], env(opts));
    await obnam(['backup', path.dirname(file)], env(opts));
  }
  try {
    const r = await benchMount(opts);
    process.stdout.write(argv.includes('--json') ? JSON.stringify(r) + '\n' : formatMountBench(r) + '\n');
  } finally {
    await cleanup();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  standalone(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
