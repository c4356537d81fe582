/**
 * npm run bench:scale: obnam (and restic, when installed) on the same data
 * set at growing file counts, step by step, with wall time, CPU seconds and
 * peak RSS of every step (the tools run as child processes under GNU time;
 * mounts are sampled through /proc). Steps: first backup, unchanged
 * re-backup, re-backup after a 1% mutation, ls of the latest snapshot, fsck
 * (restic check --read-data), restore, a walk of the mounted repository
 * (find + reading 1% of the files, picked by a hash of the name) and prune (forget all but the latest
 * snapshot, then prune; skipped with a note where obnam has no prune).
 *
 * The data set (bench/scale-data.ts) is derived from the file index alone:
 * about 11 KB a file on average (most small, a tail up to 8 MiB, 10% shared
 * content). It is written to disk, or served by a synthetic read-only FUSE
 * file system (bench/synthfs.ts, in its own process), which every tool
 * reads through its ordinary backup path like any directory.
 *
 * Settings (environment):
 *   BENCH_FILES        comma-separated file counts (default 100000; the issue's
 *                      scales are 100000,1000000,10000000)
 *   BENCH_SOURCE       disk, fuse or auto (default auto: disk up to 1,000,000
 *                      files, the synthetic FUSE file system above)
 *   BENCH_PEERS        comma-separated peers (default restic; empty for none)
 *   BENCH_OBNAM        0: leave obnam out (a peer-only run, e.g. where the disk
 *                      holds one repository at a time)
 *   BENCH_STEPS        comma-separated steps (default all: backup,re-backup,
 *                      mutated backup,ls,fsck,restore,walk,prune); the first
 *                      backup always runs, the others only when listed (without
 *                      the mutated backup, later steps see the unmutated data)
 *   BENCH_MIX          realistic (default, about 11 KB a file) or small (no file
 *                      over 64 KiB, about 4.8 KB a file: 10,000,000 files are
 *                      48 GB instead of 110); give each mix its own BENCH_OUT
 *   BENCH_RESTORE_MAX  largest file count restored whole (default 1000000);
 *                      above it, only the top directory t00 (1% of the files)
 *   BENCH_DIR          work directory (default a new one under /tmp, removed at
 *                      the end); when given, generated data is kept for reuse
 *   BENCH_OUT          output directory (default ./bench-scale-results):
 *                      results.json (merged across runs: a new run replaces the
 *                      rows of the file counts and tools it ran), scale.md,
 *                      scale.svg
 *   BENCH_KDF          default or cheap: obnam's repository gets the production
 *                      scrypt cost (default: 128 MiB, which is then the floor
 *                      of every obnam step's peak RSS) or the test suites' (1 MiB),
 *                      to see the working set alone
 *   BENCH_NOTE         a line for the table's header (e.g. "loaded machine")
 *   BENCH_FORCE        1: run even if the disk check says space is short
 *
 * Run time (both tools, all steps), measured on 2 heavily loaded vCPUs:
 * 10 minutes at 100,000 files (1.2 GB; data written in 26 s). Expected from
 * that: 1.5-2 hours at 1,000,000 (12 GB on disk), and 8-12 hours at
 * 10,000,000 (120 GB served by synthfs, which reads at about 35 MB/s and
 * lists 15,000 files/s on the loaded machine, so it bounds both tools'
 * first backup at about an hour). Disk: the repositories take about 0.7 of
 * the data each (85 GB at 10,000,000 files): with less than 2 x 90 GB free,
 * run BENCH_PEERS= (obnam only) and BENCH_OBNAM=0 (restic only) one after
 * the other into the same BENCH_OUT. The script checks free space first.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BenchContext, Phase, run } from './measure.js';
import { Epoch, layout, Layout, SizeMix, mutateTree, topFiles, totals, writeTree } from './scale-data.js';
import { markdown, ScaleRow, STEPS, svgChart } from './scale-report.js';
import { cleanUp, cleanups, exited, fusermountU, isMounted, pause, procUsage, say, waitExit } from './proc.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OBNAM = path.join(ROOT, 'bin', 'obnam');
const OBNAM_CHEAP_KDF = path.join(ROOT, 'dist', 'test', 'helpers', 'obnam-entry.js');
const SYNTHFS = path.join(ROOT, 'dist', 'bench', 'synthfs.js');
const MB = 1e6;

type Step = (typeof STEPS)[number];
type Tool = 'obnam' | 'restic';

interface Settings {
  counts: number[];
  mix: SizeMix;
  source: 'disk' | 'fuse' | 'auto';
  peers: Tool[];
  steps: Set<Step>;
  restoreMax: number;
  work: string;
  keepWork: boolean;
  out: string;
  note: string;
  force: boolean;
  obnam: boolean;
}

function settings(): Settings {
  const env = process.env;
  const counts = (env.BENCH_FILES ?? '100000').split(',').filter(Boolean).map(Number);
  if (!counts.length || counts.some((n) => !Number.isSafeInteger(n) || n < 100 || n > 100_000_000)) {
    throw new Error('BENCH_FILES: comma-separated file counts between 100 and 100,000,000');
  }
  const source = (env.BENCH_SOURCE ?? 'auto') as Settings['source'];
  if (!['disk', 'fuse', 'auto'].includes(source)) throw new Error('BENCH_SOURCE: disk, fuse or auto');
  const mix = (env.BENCH_MIX ?? 'realistic') as SizeMix;
  if (mix !== 'realistic' && mix !== 'small') throw new Error('BENCH_MIX: realistic or small');
  const peers = (env.BENCH_PEERS ?? 'restic').split(',').filter(Boolean) as Tool[];
  for (const p of peers) if (p !== 'restic') throw new Error(`BENCH_PEERS: unknown peer ${p} (known: restic)`);
  const steps = new Set((env.BENCH_STEPS ?? STEPS.join(',')).split(',').filter(Boolean) as Step[]);
  for (const s of steps) if (!STEPS.includes(s)) throw new Error(`BENCH_STEPS: unknown step ${s} (known: ${STEPS.join(',')})`);
  return {
    counts: counts.sort((a, b) => a - b),
    source,
    peers,
    steps,
    mix,
    restoreMax: Number(env.BENCH_RESTORE_MAX ?? 1_000_000),
    work: env.BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-bench-scale-')),
    keepWork: !!env.BENCH_DIR,
    out: path.resolve(env.BENCH_OUT ?? 'bench-scale-results'),
    note: env.BENCH_NOTE ?? '',
    force: env.BENCH_FORCE === '1',
    obnam: env.BENCH_OBNAM !== '0',
  };
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function obnamHasCommand(name: string): boolean {
  const r = spawnSync(process.execPath, [OBNAM, '--help'], { encoding: 'utf8' });
  return new RegExp(`^\\s+obnam ${name}\\b`, 'm').test(r.stdout + r.stderr);
}

function duBytes(dir: string): number {
  const r = spawnSync('du', ['-sb', dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]) || 0;
}

function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}


/** The data set as a directory: on disk (made or brought to the epoch) or served by synthfs. */
interface Source {
  kind: 'disk' | 'fuse';
  dir: string;
  setEpoch(e: Epoch): Promise<void>;
  close(): Promise<void>;
}

async function diskSource(l: Layout, base: string): Promise<Source> {
  const dir = path.join(base, 'src');
  const stateFile = path.join(base, 'epoch');
  let epoch: Epoch | undefined = fs.existsSync(stateFile) ? (Number(fs.readFileSync(stateFile, 'utf8')) as Epoch) : undefined;
  if (epoch === undefined) {
    fs.rmSync(base, { recursive: true, force: true });
    fs.mkdirSync(base, { recursive: true });
    const t0 = performance.now();
    say(`writing ${l.files.toLocaleString('en-US')} files to ${dir} ...`);
    await writeTree(l, dir, 0);
    epoch = 0;
    fs.writeFileSync(stateFile, '0');
    say(`  written in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const setEpoch = async (e: Epoch) => {
    if (e === epoch) return;
    fs.rmSync(stateFile); // a half-made change is never reused
    await mutateTree(l, dir, epoch!, e);
    epoch = e;
    fs.writeFileSync(stateFile, String(e));
  };
  await setEpoch(0);
  return { kind: 'disk', dir, setEpoch, close: async () => undefined };
}

async function fuseSource(l: Layout, base: string): Promise<Source> {
  const dir = path.join(base, 'src');
  fs.mkdirSync(dir, { recursive: true });
  await fusermountU(dir, true); // a leftover from an interrupted run
  const child = spawn(process.execPath, [SYNTHFS, dir, String(l.files), l.mix], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      waiting.push(resolve);
      void exited(child).then(() => reject(new Error('the synthetic file system exited')));
    });
  const close = async () => {
    const u = procUsage(child.pid!);
    say(`synthfs (the source): peak RSS ${u.peakRssMb?.toFixed(0) ?? '?'} MiB, ${u.cpuSeconds?.toFixed(0) ?? '?'} CPU s`);
    child.stdin!.end();
    if (!(await waitExit(child, 10_000))) child.kill('SIGKILL');
    await fusermountU(dir, true);
  };
  cleanups.add(close);
  const first = await nextLine();
  if (first !== 'mounted') throw new Error(`synthfs: ${first}`);
  return {
    kind: 'fuse',
    dir,
    setEpoch: async (e) => {
      child.stdin!.write(`epoch ${e}\n`);
      const answer = await nextLine();
      if (answer !== `epoch ${e}`) throw new Error(`synthfs: ${answer}`);
      await pause(2500); // the kernel's attribute and name caches (1 s) expire
    },
    close: async () => {
      cleanups.delete(close);
      await close();
    },
  };
}

class ToolRunner {
  readonly repo: string;
  constructor(
    readonly tool: Tool,
    readonly ctx: BenchContext,
  ) {
    this.repo = path.join(ctx.work, `${tool}-repo`);
  }

  phase(args: string[]): Phase {
    if (this.tool === 'obnam') return { cmd: process.execPath, args: [OBNAM, '--repo', this.repo, ...args] };
    return { cmd: 'restic', args: ['-q', '-r', this.repo, '--cache-dir', path.join(this.ctx.work, 'restic-cache'), ...args] };
  }

  async untimed(args: string[]): Promise<void> {
    const p = this.phase(args);
    // BENCH_KDF=cheap: the repository's key slot gets the test suites' scrypt cost (1 MiB instead of 128 MiB).
    if (this.tool === 'obnam' && args[0] === 'init' && process.env.BENCH_KDF === 'cheap') p.args[0] = OBNAM_CHEAP_KDF;
    const r = spawnSync(p.cmd, p.args, { env: { ...process.env, ...this.ctx.env }, encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${this.tool} ${args[0]} failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  }

  /** Mount root of the latest snapshot's copy of `dir`. */
  mountedPath(mnt: string, dir: string): string {
    return this.tool === 'obnam' ? path.join(mnt, 'latest', dir) : path.join(mnt, 'snapshots', 'latest', dir);
  }
}

async function measured(files: number, source: string, t: ToolRunner, step: Step, args: string[], opts: { note?: string; repoSize?: boolean; after?: () => void } = {}): Promise<ScaleRow> {
  try {
    const m = await run(t.ctx, t.tool, step, t.phase(args), { dropCaches: true, after: opts.after });
    return {
      files,
      source,
      tool: t.tool,
      step,
      seconds: m.seconds,
      cpuSeconds: m.cpuSeconds,
      peakRssMb: m.peakRssMb,
      repoMb: opts.repoSize ? duBytes(t.repo) / MB : undefined,
      note: opts.note,
    };
  } catch (e) {
    say(`  ${(e as Error).message}`);
    return { files, source, tool: t.tool, step, seconds: NaN, note: `failed: ${(e as Error).message.slice(0, 200)}` };
  }
}

function countFiles(dir: string): number {
  const r = spawnSync('sh', ['-c', 'find "$1" -type f | wc -l', 'sh', dir], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

/** The walk reads a file if this says so: 1% of the names, the same for every tool whatever order find lists them in. */
function picks(name: string): boolean {
  let h = 0x811c9dc5;
  for (let k = 0; k < name.length; k++) h = Math.imul(h ^ name.charCodeAt(k), 0x01000193);
  return (h >>> 0) % 100 === 0;
}

/** Mounts the repository, finds every file of the latest snapshot and reads 1% of them (the same for every tool). */
async function walkStep(files: number, source: string, t: ToolRunner, dir: string, expected: number): Promise<ScaleRow> {
  const mnt = path.join(t.ctx.work, `mnt-${t.tool}`);
  fs.mkdirSync(mnt, { recursive: true });
  const p = t.phase(['mount', mnt]);
  const child = spawn(p.cmd, p.args, { env: { ...process.env, ...t.ctx.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const stop = async () => {
    await fusermountU(mnt);
    if (!(await waitExit(child, 20_000))) {
      child.kill('SIGTERM');
      if (!(await waitExit(child, 5_000))) child.kill('SIGKILL');
    }
    await fusermountU(mnt, true);
  };
  cleanups.add(stop);
  try {
    const started = performance.now();
    while (!(await isMounted(mnt))) {
      if (child.exitCode !== null) throw new Error(`mount exited ${child.exitCode}: ${stderr.trim()}`);
      if (performance.now() - started > 600_000) throw new Error('not mounted after 10 minutes');
      await pause(20);
    }
    const mountSeconds = (performance.now() - started) / 1000;
    const root = t.mountedPath(mnt, dir);
    for (let i = 0; !fs.existsSync(root) && i < 500; i++) await pause(20); // restic fills snapshots/ in the background
    const t0 = performance.now();
    const picked: string[] = [];
    let found = 0;
    const find = spawn('find', [root, '-type', 'f'], { stdio: ['ignore', 'pipe', 'pipe'] });
    for await (const line of readline.createInterface({ input: find.stdout! })) {
      found++;
      if (picks(path.basename(line))) picked.push(line);
    }
    await exited(find);
    if (find.exitCode !== 0) throw new Error(`find exited ${find.exitCode}`);
    const findSeconds = (performance.now() - t0) / 1000;
    let bytes = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < picked.length) {
          const file = picked[next++]!;
          bytes += (await fs.promises.readFile(file)).length;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const usage = procUsage(child.pid!);
    const mismatch = found === expected ? '' : ` MISMATCH: expected ${expected}`;
    say(`${t.tool.padEnd(14)} ${'walk'.padEnd(12)} ${seconds.toFixed(1).padStart(7)} s`);
    return {
      files,
      source,
      tool: t.tool,
      step: 'walk',
      seconds,
      ...usage,
      note: `mounted in ${mountSeconds.toFixed(1)} s; find ${found} files ${findSeconds.toFixed(1)} s${mismatch}; read ${picked.length} files (${(bytes / MB).toFixed(0)} MB)`,
    };
  } catch (e) {
    say(`  ${t.tool} walk: ${(e as Error).message}`);
    return { files, source, tool: t.tool, step: 'walk', seconds: NaN, note: `failed: ${(e as Error).message.slice(0, 200)}` };
  } finally {
    cleanups.delete(stop);
    await stop();
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}

async function pruneStep(files: number, source: string, t: ToolRunner, snapshots: number): Promise<ScaleRow> {
  if (t.tool === 'obnam' && !(obnamHasCommand('prune') && obnamHasCommand('forget'))) {
    say(`${'obnam'.padEnd(14)} ${'prune'.padEnd(12)} skipped: not implemented`);
    return { files, source, tool: 'obnam', step: 'prune', seconds: NaN, note: 'skipped: not implemented' };
  }
  try {
    await t.untimed(['forget', '--keep-last', '1']);
  } catch (e) {
    return { files, source, tool: t.tool, step: 'prune', seconds: NaN, note: `failed: forget: ${(e as Error).message.slice(0, 200)}` };
  }
  return measured(files, source, t, 'prune', ['prune'], { repoSize: true, note: `after forget --keep-last 1 (of ${snapshots} snapshot${snapshots === 1 ? '' : 's'})` });
}

/** Runs every step at `files` files; `record` gets each result as soon as it is measured. */
async function benchCount(s: Settings, files: number, tools: ToolRunner[], ctx: BenchContext, record: (r: ScaleRow) => void): Promise<void> {
  const l = layout(files, s.mix);
  const kind = s.source === 'auto' ? (files > 1_000_000 ? 'fuse' : 'disk') : s.source;
  const t0 = totals(l, 0);
  const t1 = totals(l, 1);
  say(`\n== ${files.toLocaleString('en-US')} files, ${(t0.bytes / MB).toFixed(0)} MB in ${t0.dirs} directories, source: ${kind}`);
  for (const t of tools) fs.rmSync(t.repo, { recursive: true, force: true });
  fs.rmSync(path.join(ctx.work, 'restic-cache'), { recursive: true, force: true });

  const restoreWhole = files <= s.restoreMax;
  const stored = t0.bytes * 0.8; // compressed and deduplicated: measured 0.70 (obnam) and 0.72 (restic)
  const need = (kind === 'disk' && !fs.existsSync(path.join(ctx.work, `data-${files}`, 'epoch')) ? t0.bytes * 1.05 : 0) + tools.length * stored + (restoreWhole ? t0.bytes : t0.bytes / 100) * 1.05;
  const free = freeBytes(ctx.work);
  if (need > free) {
    const msg = `needs about ${(need / 1e9).toFixed(0)} GB of disk, ${(free / 1e9).toFixed(0)} GB free in ${ctx.work}`;
    if (!s.force) throw new Error(`${msg} (BENCH_FORCE=1 to try anyway)`);
    say(`warning: ${msg}`);
  }

  const base = path.join(ctx.work, `${kind === 'disk' ? 'data' : 'fuse'}-${files}${s.mix === 'small' ? '-small' : ''}`);
  const src = kind === 'disk' ? await diskSource(l, base) : await fuseSource(l, base);
  const rows = { push: record };
  try {
    for (const t of tools) await t.untimed(['init']);
    for (const t of tools) rows.push(await measured(files, kind, t, 'backup', ['backup', src.dir], { repoSize: true }));
    const rebackup = s.steps.has('re-backup');
    if (rebackup) for (const t of tools) rows.push(await measured(files, kind, t, 're-backup', ['backup', src.dir], { repoSize: true }));
    const mutated = s.steps.has('mutated backup');
    if (mutated) {
      await src.setEpoch(1);
      for (const t of tools) rows.push(await measured(files, kind, t, 'mutated backup', ['backup', src.dir], { repoSize: true }));
    }
    const epoch: Epoch = mutated ? 1 : 0;
    const now = mutated ? t1 : t0;
    const snapshots = 1 + (rebackup ? 1 : 0) + (mutated ? 1 : 0);
    if (s.steps.has('ls')) for (const t of tools) rows.push(await measured(files, kind, t, 'ls', ['ls', 'latest']));
    if (s.steps.has('fsck')) {
      for (const t of tools) rows.push(await measured(files, kind, t, 'fsck', t.tool === 'obnam' ? ['fsck'] : ['check', '--read-data'], { note: t.tool === 'restic' ? 'check --read-data' : undefined }));
    }
    if (s.steps.has('restore')) {
      const subset = path.join(src.dir, 't00');
      for (const t of tools) {
        const target = path.join(ctx.work, `restore-${t.tool}`);
        fs.rmSync(target, { recursive: true, force: true });
        const args =
          t.tool === 'obnam'
            ? ['restore', 'latest', target, ...(restoreWhole ? [] : ['--path', subset])]
            : ['restore', 'latest', '--target', target, ...(restoreWhole ? [] : ['--include', subset])];
        let note = restoreWhole ? 'whole snapshot' : 'top directory t00 only (1% of the files)';
        const row = await measured(files, kind, t, 'restore', args, {
          after: () => {
            const n = countFiles(target);
            const want = restoreWhole ? now.files : topFiles(l, 0, epoch);
            note += `; ${n} files restored${n !== want ? ` MISMATCH: expected ${want}` : ''}`;
          },
        });
        if (!row.note?.startsWith('failed')) row.note = note;
        rows.push(row);
        fs.rmSync(target, { recursive: true, force: true });
      }
    }
    if (s.steps.has('walk')) for (const t of tools) rows.push(await walkStep(files, kind, t, src.dir, now.files));
    if (s.steps.has('prune')) for (const t of tools) rows.push(await pruneStep(files, kind, t, snapshots));
  } finally {
    await src.close();
    if (kind === 'disk') await src.setEpoch(0).catch(() => undefined); // ready for the next run
    for (const t of tools) fs.rmSync(t.repo, { recursive: true, force: true });
    fs.rmSync(path.join(ctx.work, 'restic-cache'), { recursive: true, force: true });
  }
}

function loadResults(file: string): ScaleRow[] {
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { rows: ScaleRow[] }).rows.map((r) => ({ ...r, seconds: r.seconds ?? NaN }));
  } catch {
    return [];
  }
}

function writeOutputs(s: Settings, rows: ScaleRow[], machine: string): void {
  fs.mkdirSync(s.out, { recursive: true });
  const file = path.join(s.out, 'results.json');
  const ran = new Set(rows.map((r) => `${r.files} ${r.tool}`));
  const all = [...loadResults(file).filter((r) => !ran.has(`${r.files} ${r.tool}`)), ...rows].sort((a, b) => a.files - b.files);
  fs.writeFileSync(file, JSON.stringify({ machine, rows: all.map((r) => ({ ...r, seconds: Number.isFinite(r.seconds) ? r.seconds : null })) }, null, 1) + '\n');
  const header = [
    '## obnam scale benchmark (npm run bench:scale)',
    '',
    `${machine}${s.note ? `; ${s.note}` : ''}. Data: bench/scale-data.ts, ${s.mix === 'small' ? 'the small mix (about 4.8 KB a file: 2% empty, 78% up to 4 KiB, 20% 4-64 KiB' : 'the realistic mix (about 11 KB a file: 2% empty, 78% up to 4 KiB, 18% 4-64 KiB, 1.9% 64-512 KiB, 0.1% 512 KiB-8 MiB'}` +
      '; 10% shared content; half text-like). Times in seconds (wall), RSS = peak resident memory of ' +
      'the tool\'s process, repo = repository size after the step. The mutation: 1% of the files changed, 0.1% deleted, 0.2% added. ' +
      'fsck is restic check --read-data for restic; walk = mount, find every file, read 1% of them (by a hash of the name) (RSS and CPU of the mount process).',
  ].join('\n');
  fs.writeFileSync(path.join(s.out, 'scale.md'), markdown(all, header));
  fs.writeFileSync(path.join(s.out, 'scale.svg'), svgChart(all, `obnam scale benchmark: ${machine}`));
}

/** Removes the work directory unless BENCH_DIR named it (never into a mount left behind: rm stops at its EROFS). */
function removeWork(s: Settings): void {
  if (s.keepWork) return;
  try {
    fs.rmSync(s.work, { recursive: true, force: true });
  } catch (e) {
    say(`could not remove ${s.work}: ${(e as Error).message}`);
  }
}

async function main(): Promise<void> {
  const s = settings();
  fs.mkdirSync(s.work, { recursive: true });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      say(`\n${sig}: cleaning up`);
      void cleanUp().finally(() => {
        removeWork(s);
        process.exit(sig === 'SIGINT' ? 130 : 143);
      });
    });
  }
  const ctx: BenchContext = { work: s.work, sources: [], bytes: 0, env: { OBNAM_PASSPHRASE: 'bench', RESTIC_PASSWORD: 'bench', OBNAM_NO_PROGRESS: '1' } };
  const tools = s.obnam ? [new ToolRunner('obnam', ctx)] : [];
  for (const p of s.peers) {
    if (has(p)) tools.push(new ToolRunner(p, ctx));
    else say(`${p} is not installed: skipping it`);
  }
  if (!tools.length) throw new Error('no tool to run (BENCH_OBNAM=0 and no peer installed)');
  const machine = `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}${
    tools.some((t) => t.tool === 'restic') ? `, ${spawnSync('restic', ['version'], { encoding: 'utf8' }).stdout.trim().split(' compiled')[0]}` : ''
  }; obnam key slot: ${process.env.BENCH_KDF === 'cheap' ? 'cheap test scrypt cost (1 MiB)' : 'default scrypt cost (128 MiB)'}`;
  say(`obnam scale bench: ${s.counts.join(', ')} files; ${machine}`);
  const rows: ScaleRow[] = [];
  try {
    for (const n of s.counts) {
      // The outputs are rewritten after every step: a long run interrupted keeps what it measured.
      await benchCount(s, n, tools, ctx, (r) => {
        rows.push(r);
        writeOutputs(s, rows, machine);
      });
    }
  } finally {
    await cleanUp();
    removeWork(s);
  }
  say(`\nwrote ${path.join(s.out, 'scale.md')}, scale.svg and results.json`);
  process.stdout.write('\n' + fs.readFileSync(path.join(s.out, 'scale.md'), 'utf8'));
}

main().catch(async (e: unknown) => {
  process.stderr.write(`bench:scale failed: ${(e as Error).stack ?? e}\n`);
  await cleanUp();
  process.exit(1);
});
