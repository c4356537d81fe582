/**
 * Running one benchmark phase as a child process and measuring it: wall
 * time, CPU seconds (user + system) and peak RSS, through GNU time when it is
 * installed (wall time only otherwise). Shared by every bench part.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanups, isCleaningUp, stopWithChildren } from './proc.js';

export interface BenchContext {
  work: string;
  sources: string[];
  /** Bytes in the data set. */
  bytes: number;
  env: Record<string, string>;
}

export interface Phase {
  cmd: string;
  args: string[];
  env?: Record<string, string>;
}

export interface Measurement {
  tool: string;
  phase: string;
  seconds: number;
  cpuSeconds?: number;
  peakRssMb?: number;
  /** Bytes the phase processed, if not the whole data set. */
  bytes?: number;
  note?: string;
}

/** Whether a command is on PATH. */
export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Apparent size in bytes (du -sb --apparent-size) of files and directories, summed. */
export function duBytes(...paths: string[]): number {
  const r = spawnSync('du', ['-sb', '--apparent-size', ...paths], { encoding: 'utf8' });
  return r.stdout
    .trim()
    .split('\n')
    .reduce((n, line) => n + (Number(line.split('\t')[0]) || 0), 0);
}

const GNU_TIME = '/usr/bin/time';
const hasGnuTime = fs.existsSync(GNU_TIME) && spawnSync(GNU_TIME, ['-f', '%e', 'true']).status === 0;

function dropCaches(): void {
  try {
    spawnSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    // not root, or not allowed here: caches stay warm for every tool alike
  }
}

export async function run(
  ctx: BenchContext,
  tool: string,
  phase: string,
  p: Phase,
  opts: { dropCaches?: boolean; after?: () => void; bytes?: number } = {},
): Promise<Measurement> {
  if (isCleaningUp()) throw new Error(`${tool} ${phase}: not started, the bench is being interrupted`);
  if (opts.dropCaches) dropCaches();
  const timeFile = path.join(ctx.work, `time-${process.pid}.txt`);
  const [cmd, args] = hasGnuTime ? [GNU_TIME, ['-f', '%e %U %S %M', '-o', timeFile, p.cmd, ...p.args]] : [p.cmd, p.args];
  const started = process.hrtime.bigint();
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...ctx.env, ...p.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    // A bench interrupted stops the tool before it removes the tool's files.
    const stop = () => stopWithChildren(child);
    cleanups.add(stop);
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      cleanups.delete(stop);
      reject(e);
    });
    child.on('close', (c) => {
      cleanups.delete(stop);
      resolve({ code: c, stderr: err });
    });
  });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  opts.after?.();
  if (code !== 0 && !(tool === 'obnam' && phase.includes('backup') && code === 3)) {
    throw new Error(`${tool} ${phase} failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  const m: Measurement = { tool, phase, seconds: wall, bytes: opts.bytes };
  if (hasGnuTime) {
    const [, user, sys, rssKb] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    m.cpuSeconds = user! + sys!;
    m.peakRssMb = rssKb! / 1024;
    fs.rmSync(timeFile, { force: true });
  }
  process.stdout.write(`${tool.padEnd(14)} ${phase.padEnd(12)} ${wall.toFixed(1).padStart(7)} s\n`);
  return m;
}

/** A text table of all measurements, with MB/s and the ratio to restic's same phase. */
export function table(ms: Measurement[], bytes: number): string {
  const peer = (phase: string) => ms.find((m) => m.tool === 'restic' && m.phase === phase);
  const rows = [['tool', 'phase', 'seconds', 'MB/s', 'CPU s', 'peak RSS MB', 'vs restic (time)', 'note']];
  for (const m of ms) {
    const b = m.bytes ?? bytes;
    const ref = m.tool !== 'restic' ? peer(m.phase.replace(/^remote /, '')) : undefined;
    rows.push([
      m.tool,
      m.phase,
      m.seconds.toFixed(2),
      (b / 1e6 / m.seconds).toFixed(1),
      m.cpuSeconds?.toFixed(1) ?? '-',
      m.peakRssMb?.toFixed(0) ?? '-',
      ref ? `${(m.seconds / ref.seconds).toFixed(2)}x` : '',
      m.note ?? '',
    ]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const last = rows[0]!.length - 1;
  return rows.map((r) => r.map((c, i) => (i < 2 || i === last ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd()).join('\n');
}
