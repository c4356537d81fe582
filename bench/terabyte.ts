/**
 * The terabyte benchmark's read part (issue 12): back up FILES x GIB GiB of
 * large files through the ordinary backup path (lstat, read, chunk, id,
 * dedup, compress, encrypt, pack), served by a synthetic FUSE file system
 * (bench/bigfs.ts) so that none of it needs disk space, of which only
 * UNIQUE files' worth is distinct. Then fsck (which reads and decrypts every
 * stored object) and `obnam dump` of the last file, whose bytes are hashed
 * and compared with the source's. Reports time, MB/s (10^6 bytes of source
 * per second), CPU seconds and peak RSS of each step, and the repository's
 * size, for obnam and (with BENCH_PEERS=restic) restic on the same source.
 *
 *   npx tsc -p . && node dist/bench/terabyte.js
 *
 * Settings (environment):
 *   BENCH_TB_FILES   number of files (default 10)
 *   BENCH_TB_GIB     GiB per file (default 10: 107 GB in all)
 *   BENCH_TB_UNIQUE  distinct contents among them (default 1; file i has the
 *                    content of file i mod UNIQUE); the repository needs
 *                    about UNIQUE x GIB GiB of disk
 *   BENCH_PEERS      comma-separated peers (default none; "restic" runs
 *                    restic backup, check --read-data and dump beside obnam)
 *   BENCH_DIR        work directory (default a new one under /tmp, removed)
 *   BENCH_OUT        output directory (default ./bench-terabyte-results):
 *                    terabyte.md and terabyte.json
 *   BENCH_NOTE       a line for the header (e.g. "loaded machine")
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BigSet, bigName, fillAt } from './bigfs.js';
import { BenchContext, Measurement, run } from './measure.js';
import { cleanUp, cleanups, exited, fusermountU, procUsage, say, waitExit } from './proc.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OBNAM = path.join(ROOT, 'bin', 'obnam');
const BIGFS = path.join(ROOT, 'dist', 'bench', 'bigfs.js');
const GNU_TIME = '/usr/bin/time';

const num = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: a positive number`);
  return v;
};

/** Mounts bigfs at dir in its own process; the returned function stops it and unmounts. */
async function mountSource(set: BigSet, dir: string): Promise<() => Promise<void>> {
  fs.mkdirSync(dir, { recursive: true });
  await fusermountU(dir, true);
  const gib = set.bytesPerFile / 2 ** 30;
  const child = spawn(process.execPath, [BIGFS, dir, String(set.files), String(gib), String(set.unique)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    void exited(child).then(() => reject(new Error('bigfs exited before it mounted')));
  });
  if (first !== 'mounted') throw new Error(`bigfs: ${first}`);
  const stop = async () => {
    cleanups.delete(stop);
    const u = procUsage(child.pid!);
    say(`bigfs (the source): peak RSS ${u.peakRssMb?.toFixed(0) ?? '?'} MiB, ${u.cpuSeconds?.toFixed(0) ?? '?'} CPU s`);
    child.stdin!.end();
    if (!(await waitExit(child, 10_000))) child.kill('SIGKILL');
    await fusermountU(dir, true);
  };
  cleanups.add(stop);
  return stop;
}

/** SHA-256 of file i as bigfs serves it, computed here (not through FUSE). */
function expectedDigest(set: BigSet, i: number): string {
  const h = createHash('sha256');
  const buf = Buffer.alloc(8 << 20);
  for (let pos = 0; pos < set.bytesPerFile; pos += buf.length) {
    const n = fillAt(set, i, buf, pos, buf.length);
    h.update(buf.subarray(0, n));
  }
  return h.digest('hex');
}

/** Runs cmd with its stdout hashed here; time, CPU and peak RSS of the child by GNU time. */
async function hashedOutput(ctx: BenchContext, tool: string, phase: string, cmd: string, args: string[], bytes: number): Promise<{ m: Measurement; digest: string }> {
  const timeFile = path.join(ctx.work, `time-dump-${process.pid}.txt`);
  const started = process.hrtime.bigint();
  const h = createHash('sha256');
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(GNU_TIME, ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], { env: { ...process.env, ...ctx.env }, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (d: Buffer) => h.update(d));
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`${tool} ${phase} failed (exit ${code})`);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const [, user, sys, rssKb] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  fs.rmSync(timeFile, { force: true });
  say(`${tool.padEnd(14)} ${phase.padEnd(12)} ${seconds.toFixed(1).padStart(7)} s`);
  return { m: { tool, phase, seconds, cpuSeconds: user! + sys!, peakRssMb: rssKb! / 1024, bytes }, digest: h.digest('hex') };
}

function duBytes(dir: string): number {
  const r = spawnSync('du', ['-sb', dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]) || 0;
}

interface ToolResult {
  tool: string;
  steps: Measurement[];
  repoBytes: number;
  dumpIdentical: boolean;
}

async function main(): Promise<void> {
  const set: BigSet = {
    files: num('BENCH_TB_FILES', 10),
    bytesPerFile: Math.round(num('BENCH_TB_GIB', 10) * 2 ** 30),
    unique: num('BENCH_TB_UNIQUE', 1),
  };
  const peers = (process.env.BENCH_PEERS ?? '').split(',').filter(Boolean);
  const work = process.env.BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-bench-tb-'));
  const out = path.resolve(process.env.BENCH_OUT ?? 'bench-terabyte-results');
  const note = process.env.BENCH_NOTE ?? '';
  if (!fs.existsSync(GNU_TIME)) throw new Error('GNU time (/usr/bin/time) is needed: apt-get install time');
  fs.mkdirSync(work, { recursive: true });
  fs.mkdirSync(out, { recursive: true });
  const total = set.files * set.bytesPerFile;
  const uniqueBytes = Math.min(set.unique, set.files) * set.bytesPerFile;
  const tools = ['obnam', ...peers.filter((p) => p === 'restic' && spawnSync('sh', ['-c', 'command -v restic']).status === 0)];
  for (const p of peers) if (!tools.includes(p)) say(`${p}: not installed or unknown, skipped`);
  const free = fs.statfsSync(work).bavail * fs.statfsSync(work).bsize;
  if (free < uniqueBytes * 1.1 * tools.length + 2 ** 30) {
    throw new Error(`${work}: ${(free / 2 ** 30).toFixed(0)} GiB free, the repositories need about ${((uniqueBytes * 1.1 * tools.length) / 2 ** 30).toFixed(0)} GiB`);
  }
  const src = path.join(work, 'src');
  const stopSource = await mountSource(set, src);
  const last = set.files - 1;
  const lastFile = path.join(src, bigName(last));
  const ctx: BenchContext = { work, sources: [src], bytes: total, env: { OBNAM_PASSPHRASE: 'bench', RESTIC_PASSWORD: 'bench', OBNAM_NO_PROGRESS: '1' } };
  say(`terabyte bench: ${set.files} files of ${(set.bytesPerFile / 2 ** 30).toFixed(1)} GiB (${(total / 1e9).toFixed(1)} GB, ${(uniqueBytes / 1e9).toFixed(1)} GB distinct) served by bigfs`);
  const results: ToolResult[] = [];
  try {
    const digest = expectedDigest(set, last);
    for (const tool of tools) {
      const repo = path.join(work, `${tool}-repo`);
      fs.rmSync(repo, { recursive: true, force: true });
      const steps: Measurement[] = [];
      let dumped: string;
      if (tool === 'obnam') {
        const ob = (args: string[]) => ({ cmd: process.execPath, args: [OBNAM, '--repo', repo, ...args] });
        await run(ctx, tool, 'init', ob(['init']));
        steps.push(await run(ctx, tool, 'backup', ob(['backup', src]), { dropCaches: true }));
        steps.push(await run(ctx, tool, 'fsck', ob(['fsck']), { dropCaches: true, bytes: uniqueBytes }));
        const d = await hashedOutput(ctx, tool, 'dump', process.execPath, [OBNAM, '--repo', repo, 'dump', 'latest', lastFile], set.bytesPerFile);
        steps.push(d.m);
        dumped = d.digest;
      } else {
        const rs = (args: string[]) => ({ cmd: 'restic', args: ['-q', '-r', repo, '--cache-dir', path.join(work, 'restic-cache'), ...args] });
        await run(ctx, tool, 'init', rs(['init']));
        steps.push(await run(ctx, tool, 'backup', rs(['backup', src]), { dropCaches: true }));
        steps.push(await run(ctx, tool, 'fsck', rs(['check', '--read-data']), { dropCaches: true, bytes: uniqueBytes }));
        const d = await hashedOutput(ctx, tool, 'dump', 'restic', ['-q', '-r', repo, '--cache-dir', path.join(work, 'restic-cache'), 'dump', 'latest', lastFile], set.bytesPerFile);
        steps.push(d.m);
        dumped = d.digest;
      }
      const repoBytes = duBytes(repo);
      results.push({ tool, steps, repoBytes, dumpIdentical: dumped === digest });
      say(`${tool}: repository ${(repoBytes / 1e9).toFixed(2)} GB; dump of ${bigName(last)} ${dumped === digest ? 'identical to the source' : 'DIFFERS from the source'}`);
      fs.rmSync(repo, { recursive: true, force: true });
      fs.rmSync(path.join(work, 'restic-cache'), { recursive: true, force: true });
    }
  } finally {
    await stopSource();
    if (!process.env.BENCH_DIR) fs.rmSync(work, { recursive: true, force: true });
  }
  const header =
    `## obnam terabyte benchmark, read part (bench/terabyte.ts)\n\n` +
    `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}` +
    (note ? `; ${note}` : '') +
    `.\n\nSource: ${set.files} files of ${(set.bytesPerFile / 2 ** 30).toFixed(1)} GiB served by a synthetic FUSE file system (bench/bigfs.ts), ` +
    `${(total / 1e9).toFixed(1)} GB in all, incompressible, of which ${(uniqueBytes / 1e9).toFixed(1)} GB distinct (the other files deduplicate). ` +
    `MB/s is 10^6 bytes per second of what the step reads: the whole source for backup, the distinct bytes for fsck, one file for dump.\n\n`;
  const rows = results.flatMap((r) =>
    r.steps.map(
      (m) =>
        `| ${r.tool} | ${m.phase} | ${m.seconds.toFixed(1)} | ${((m.bytes ?? total) / 1e6 / m.seconds).toFixed(1)} | ${m.cpuSeconds?.toFixed(0) ?? '?'} | ` +
        `${m.cpuSeconds ? (m.cpuSeconds / ((m.bytes ?? total) / 1e9)).toFixed(1) : '?'} | ${m.peakRssMb?.toFixed(0) ?? '?'} |`,
    ),
  );
  const table =
    `| tool | step | s | MB/s | CPU s | CPU s/GB | peak RSS MiB |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n\n` +
    results.map((r) => `- ${r.tool}: repository ${(r.repoBytes / 1e9).toFixed(2)} GB; dump of ${bigName(last)} ${r.dumpIdentical ? 'byte-identical to the source (SHA-256)' : 'DIFFERENT from the source'}`).join('\n') +
    '\n';
  fs.writeFileSync(path.join(out, 'terabyte.md'), header + table);
  fs.writeFileSync(path.join(out, 'terabyte.json'), JSON.stringify({ set, results }, null, 2));
  say('\n' + header + table);
  if (results.some((r) => !r.dumpIdentical)) process.exitCode = 1;
}

const onSignal = () => void cleanUp().then(() => process.exit(130));
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
main()
  .catch(async (e: unknown) => {
    process.stderr.write(`terabyte bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanUp());
