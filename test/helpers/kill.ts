/** Fault tests: run obnam in a child process and kill it with SIGKILL at a chosen point. */
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
