/**
 * Process and mount helpers shared by the benchmarks: unmounting, waiting
 * for and stopping a child, peak RSS and CPU seconds of a live process, and
 * the cleanups run on the way out (also on SIGINT/SIGTERM, in the benchmarks
 * that run a synthetic FUSE source: bench/scale.ts, bench/terabyte.ts).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';

export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const say = (s: string) => process.stdout.write(s + '\n');

export async function isMounted(mountpoint: string): Promise<boolean> {
  const text = await fs.promises.readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[4] === mountpoint);
}

export async function fusermountU(mountpoint: string, lazy = false): Promise<void> {
  if (!(await isMounted(mountpoint))) return;
  await new Promise((r) => spawn('fusermount', ['-u', ...(lazy ? ['-z'] : []), mountpoint], { stdio: 'ignore' }).on('close', r).on('error', r));
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

export async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  return Promise.race([exited(child).then(() => true), pause(ms).then(() => false)]);
}

/**
 * Stops a child and its own children (the tool under GNU time, which ignores
 * SIGINT while it waits): SIGINT first (the tools finish cleanly), SIGKILL
 * after 30 s. Resolves when the child has exited, so that its files can be
 * removed after.
 */
export async function stopWithChildren(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const signal = (sig: NodeJS.Signals) => {
    let kids: number[] = [];
    try {
      kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      // gone, or not Linux: the child alone
    }
    for (const p of [...kids, pid]) {
      try {
        process.kill(p, sig);
      } catch {
        // already gone
      }
    }
  };
  signal('SIGINT');
  if (!(await waitExit(child, 30_000))) {
    signal('SIGKILL');
    await exited(child);
  }
}

/** Things to undo on the way out, also on SIGINT/SIGTERM: stop processes, unmount. */
export const cleanups = new Set<() => Promise<void>>();
let cleaningUp = false;

/** Whether cleanUp has begun: from then on no new tool run may start (its files are about to go). */
export const isCleaningUp = (): boolean => cleaningUp;

export async function cleanUp(): Promise<void> {
  cleaningUp = true;
  for (const c of [...cleanups].reverse()) {
    cleanups.delete(c);
    await c().catch((e: unknown) => say(`cleanup: ${(e as Error).message}`));
  }
}

/** Peak RSS (VmHWM, MiB) and CPU seconds of a live process. */
export function procUsage(pid: number): { peakRssMb?: number; cpuSeconds?: number } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { peakRssMb: hwm ? Number(hwm[1]) / 1024 : undefined, cpuSeconds: ticks / 100 };
  } catch {
    return {};
  }
}
