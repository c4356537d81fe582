/**
 * Prune benchmark: a history of 10 snapshots of a tree that changes a part
 * of its files at each step, backed up by obnam and by restic step by step
 * (the same trees for both); then obnam forgets the first 9 (`obnam forget
 * --keep-last 1`) and collects (`obnam prune --exclusive`, which sweeps and
 * repacks at once), beside `restic forget --keep-last 1 --prune` on its
 * repository. Wall time, CPU seconds and peak RSS of each (GNU time), and the
 * repositories' sizes before and after, with the size of a fresh obnam
 * repository holding only the last tree for reference.
 *
 * From the bench runner (bench/run.ts): benchPrune(ctx). Standalone:
 *   npx tsc -p . && node dist/bench/prune.js [--json]
 *
 * Settings (environment):
 *   BENCH_PRUNE_MB     size of the tree, MiB (default: the size of the bench's data set, as
 *                      the other rows use; standalone 256); 0 skips the row
 *   BENCH_PRUNE_STEPS  snapshots in the history (default 10)
 *   BENCH_PRUNE_CHANGE percent of the files changed at each step (default 10)
 *   BENCH_PEERS        comma-separated peers (default restic; a missing one is skipped and said so)
 *   BENCH_DIR          work directory (standalone; default a new one under /tmp, removed at the end)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchContext, duBytes, has, Measurement, Phase, run, table } from './measure.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OBNAM = path.join(ROOT, 'bin', 'obnam');
const MiB = 2 ** 20;

export interface PruneBenchResult {
  measurements: Measurement[];
  /** Tree size, bytes, and files in it at the last step. */
  treeBytes: number;
  files: number;
  steps: number;
  /** Repository sizes (bytes on disk, du --apparent-size) by tool. */
  sizes: Record<string, { before: number; after: number }>;
  /** A fresh obnam repository holding only the last tree. */
  freshObnamBytes: number;
}

/** Runs a command that is not measured; fails with its stderr. */
function quiet(ctx: BenchContext, cmd: string, args: string[], okCodes = [0]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...ctx.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) =>
      okCodes.includes(code ?? -1) ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`)),
    );
  });
}

/**
 * File contents: half the files random bytes, half text of random words (it
 * compresses to about half), so neither compression nor deduplication is free.
 */
function content(size: number, text: boolean): Buffer {
  const b = randomBytes(size);
  if (!text) return b;
  for (let i = 0; i < size; i++) {
    const v = b[i]! & 0x1f;
    b[i] = v < 26 ? 0x61 + v : v < 30 ? 0x20 : 0x0a;
  }
  return b;
}

/** A file size from 4 KiB to 4 MiB, uniform in its logarithm (many small files, most bytes in large ones). */
function fileSize(): number {
  return Math.round(2 ** (12 + Math.random() * 10));
}

/** The tree: files in 16 directories, until it holds `bytes`. */
class Tree {
  files: string[] = [];
  private serial = 0;
  constructor(readonly dir: string) {}

  private add(): number {
    const size = fileSize();
    const name = path.join(this.dir, `d${(this.serial % 16).toString().padStart(2, '0')}`, `f${this.serial++}`);
    fs.mkdirSync(path.dirname(name), { recursive: true });
    fs.writeFileSync(name, content(size, this.serial % 2 === 0));
    this.files.push(name);
    return size;
  }

  create(bytes: number): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
    for (let n = 0; n < bytes; ) n += this.add();
  }

  /**
   * Changes `percent` of the files: of those, 40% rewritten whole, 30%
   * edited in place (16 KiB overwritten somewhere), 15% removed, and as many
   * new files added.
   */
  mutate(percent: number): void {
    const count = Math.max(1, Math.round((this.files.length * percent) / 100));
    const picked = new Set<number>();
    while (picked.size < Math.min(count, this.files.length)) picked.add(Math.floor(Math.random() * this.files.length));
    const removed: number[] = [];
    let k = 0;
    for (const i of picked) {
      const f = this.files[i]!;
      const r = k++ / count;
      if (r < 0.4) fs.writeFileSync(f, content(fs.statSync(f).size, i % 2 === 0));
      else if (r < 0.7) {
        const size = fs.statSync(f).size;
        const fd = fs.openSync(f, 'r+');
        const edit = content(Math.min(16 * 1024, size), i % 2 === 0);
        fs.writeSync(fd, edit, 0, edit.length, Math.floor(Math.random() * Math.max(1, size - edit.length)));
        fs.closeSync(fd);
      } else removed.push(i);
    }
    const added = Math.round(removed.length / 2);
    for (const i of removed.sort((a, b) => b - a).slice(0, removed.length - added)) {
      fs.rmSync(this.files[i]!);
      this.files.splice(i, 1);
    }
    for (let i = 0; i < added; i++) this.add();
  }
}

/** Sums the measurements of several processes run one after the other (peak RSS: the largest). */
function combined(tool: string, phase: string, ms: Measurement[], note: string): Measurement {
  const sum = (f: (m: Measurement) => number | undefined) => (ms.every((m) => f(m) !== undefined) ? ms.reduce((n, m) => n + f(m)!, 0) : undefined);
  const rss = ms.map((m) => m.peakRssMb).filter((r): r is number => r !== undefined);
  return { tool, phase, seconds: sum((m) => m.seconds)!, cpuSeconds: sum((m) => m.cpuSeconds), peakRssMb: rss.length ? Math.max(...rss) : undefined, bytes: ms[0]?.bytes, note };
}

const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;

export async function runPruneBench(ctx: BenchContext, treeMb: number): Promise<PruneBenchResult | undefined> {
  const steps = Number(process.env.BENCH_PRUNE_STEPS ?? 10);
  const change = Number(process.env.BENCH_PRUNE_CHANGE ?? 10);
  const peers = (process.env.BENCH_PEERS ?? 'restic').split(',').filter(Boolean);
  const restic = peers.includes('restic') && has('restic');
  if (peers.includes('restic') && !restic) process.stdout.write('prune bench: restic is not installed: skipping it (apt-get install restic)\n');
  for (const p of peers) if (p !== 'restic') process.stdout.write(`prune bench: unknown peer ${p}: skipped\n`);

  const base = path.join(ctx.work, 'prune');
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(base, { recursive: true });
  const tree = new Tree(path.join(base, 'tree'));
  const obRepo = path.join(base, 'obnam-repo');
  const rsRepo = path.join(base, 'restic-repo');
  const ob = (repo: string, args: string[]): Phase => ({ cmd: process.execPath, args: [OBNAM, '--repo', repo, ...args] });
  const rs = (args: string[]): Phase => ({ cmd: 'restic', args: ['-q', '-r', rsRepo, ...args] });
  try {
    process.stdout.write(`prune bench: ${steps} snapshots of a ${treeMb} MiB tree, ${change}% of its files changed at each step\n`);
    tree.create(treeMb * MiB);
    await quiet(ctx, process.execPath, ob(obRepo, ['init']).args);
    if (restic) await quiet(ctx, 'restic', rs(['init']).args);
    for (let step = 0; step < steps; step++) {
      if (step) tree.mutate(change);
      // Exit 3: some file could not be read (none here); the snapshot is written.
      await quiet(ctx, process.execPath, ob(obRepo, ['backup', tree.dir]).args, [0, 3]);
      if (restic) await quiet(ctx, 'restic', rs(['backup', tree.dir]).args);
    }
    const treeBytes = duBytes(tree.dir);
    const sizes: PruneBenchResult['sizes'] = { obnam: { before: duBytes(obRepo), after: 0 } };
    if (restic) sizes.restic = { before: duBytes(rsRepo), after: 0 };

    const opts = { dropCaches: true, bytes: treeBytes };
    const forget = await run(ctx, 'obnam', 'forget', ob(obRepo, ['forget', '--keep-last', '1']), opts);
    const prune = await run(ctx, 'obnam', 'prune', ob(obRepo, ['prune', '--exclusive']), opts);
    sizes.obnam!.after = duBytes(obRepo);
    const measurements: Measurement[] = [];
    const note = (tool: string) => `repository ${mb(sizes[tool]!.before)} -> ${mb(sizes[tool]!.after)}`;
    forget.phase = `forget ${steps - 1}`;
    prune.phase = 'prune --exclusive';
    measurements.push(forget, prune, combined('obnam', 'forget+prune', [forget, prune], ''));
    if (restic) {
      const r = await run(ctx, 'restic', 'forget+prune', rs(['forget', '--keep-last', '1', '--prune']), opts);
      sizes.restic!.after = duBytes(rsRepo);
      r.note = note('restic');
      measurements.push(r);
    }
    // For reference: a fresh repository holding only the last tree.
    const fresh = path.join(base, 'obnam-fresh');
    await quiet(ctx, process.execPath, ob(fresh, ['init']).args);
    await quiet(ctx, process.execPath, ob(fresh, ['backup', tree.dir]).args, [0, 3]);
    const freshObnamBytes = duBytes(fresh);
    measurements[2]!.note = `${note('obnam')} (fresh with the last snapshot only: ${mb(freshObnamBytes)})`;
    return { measurements, treeBytes, files: tree.files.length, steps, sizes, freshObnamBytes };
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/** The bench runner's prune part: the tree sized like the bench's data set unless BENCH_PRUNE_MB says otherwise. */
export async function benchPrune(ctx: BenchContext): Promise<Measurement[]> {
  const treeMb = Number(process.env.BENCH_PRUNE_MB ?? Math.max(1, Math.round(ctx.bytes / MiB)));
  if (!(treeMb > 0)) {
    process.stdout.write('prune bench: BENCH_PRUNE_MB=0: skipped\n');
    return [];
  }
  return (await runPruneBench(ctx, treeMb))?.measurements ?? [];
}

async function main(): Promise<void> {
  const work = process.env.BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-bench-prune-'));
  fs.mkdirSync(work, { recursive: true });
  const treeMb = Number(process.env.BENCH_PRUNE_MB ?? 256);
  const ctx: BenchContext = { work, sources: [], bytes: treeMb * MiB, env: { OBNAM_PASSPHRASE: 'bench', RESTIC_PASSWORD: 'bench', OBNAM_NO_PROGRESS: '1' } };
  try {
    process.stdout.write(`machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n`);
    const r = await runPruneBench(ctx, treeMb);
    if (!r) return;
    if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else process.stdout.write('\n' + table(r.measurements, r.treeBytes) + '\n');
  } finally {
    if (!process.env.BENCH_DIR) fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e) => {
    process.stderr.write(`prune bench failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
