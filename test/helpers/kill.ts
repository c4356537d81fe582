/** Fault tests: run obnam in a child process and kill it with SIGKILL at a chosen point. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { baseEnv, OBNAM_TEST_ENTRY } from './cli.js';

/** Starts obnam ARGS and kills it with SIGKILL `delayMs` after it prints `phase` on stderr; resolves with how it ended. */
export function killDuring(
  args: string[],
  env: Record<string, string>,
  phase: RegExp,
  delayMs: number,
): Promise<{ killed: boolean; code: number | null; stderr: string; afterPhaseMs?: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OBNAM_TEST_ENTRY, ...args], { env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let seen: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', () => undefined);
    child.stderr.on('data', (d) => {
      stderr += d;
      if (seen === undefined && phase.test(stderr)) {
        seen = Date.now();
        timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer); // a kill planned after the end would keep the test process alive until it fires
      resolve({ killed: signal === 'SIGKILL', code, stderr, afterPhaseMs: seen === undefined ? undefined : Date.now() - seen });
    });
  });
}

/**
 * The delays to kill at: each of `spread`, then (a loaded machine can finish
 * a run before its kill lands) up to `extra` more at once while fewer than
 * `want` kills have landed.
 */
export function* killDelays(spread: number[], landed: () => number, want = 2, extra = 6): Generator<number> {
  yield* spread;
  for (let i = 0; i < extra && landed() < want; i++) yield 0;
}

/**
 * Kills `obnam prune` (run with `env`) during its mark, at spread points, then
 * `obnam prune --exclusive` during its sweep; `check` runs after every run,
 * `clearPlans` between the two phases (so the sweeps start from one known
 * plan). Asserts that at least two kills landed in each phase.
 */
export async function killPruneDuringMarkAndSweep(
  env: Record<string, string>,
  check: (label: string) => Promise<void>,
  clearPlans: () => Promise<void>,
): Promise<void> {
  // During the mark (prune without --exclusive only marks here: no plan is due).
  let killedInMark = 0;
  for (const delay of killDelays([0, 40, 120], () => killedInMark)) {
    if ((await killDuring(['prune'], env, /marking/, delay)).killed) killedInMark++;
    await check(`mark-${delay}`);
  }
  // Every interrupted mark left at most complete plans.
  await clearPlans();
  // During the sweep: --exclusive marks and sweeps at once; killed after it starts sweeping.
  let killedInSweep = 0;
  for (const delay of killDelays([0, 60, 200], () => killedInSweep)) {
    if ((await killDuring(['prune', '--exclusive'], env, /sweeping/, delay)).killed) killedInSweep++;
    await check(`sweep-${delay}`);
  }
  assert.ok(killedInMark >= 2, `${killedInMark} runs killed during the mark`);
  assert.ok(killedInSweep >= 2, `${killedInSweep} runs killed during the sweep`);
}
