/**
 * Runs the real CLI (bin/obnam) in a child process, as users and scripts do.
 * Tests use a low scrypt cost (OBNAM_TEST_KDF_LOG_N) so that creating many
 * repositories stays fast; everything else is the production path.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const OBNAM = path.join(ROOT, 'bin', 'obnam');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  cwd?: string;
  timeoutMs?: number;
  /** Run as this user and group (tests running as root use it to lose root's read-anything power). */
  uid?: number;
  gid?: number;
}

export function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OBNAM_TEST_KDF_LOG_N: '10', OBNAM_NO_PROGRESS: '1' };
  delete env.OBNAM_REPO;
  delete env.OBNAM_PASSPHRASE;
  delete env.OBNAM_CONFIG;
  delete env.OBNAM_TOKEN;
  delete env.OBNAM_TOKEN_FILE;
  delete env.OBNAM_REQUEST_TIMEOUT;
  delete env.OBNAM_SERVER_FINGERPRINT;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function runCommand(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: baseEnv(opts.env), cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'], uid: opts.uid, gid: opts.gid });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.stdin.on('error', () => undefined); // a child that exits without reading stdin
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs `obnam ARGS` with the given environment (OBNAM_PASSPHRASE, OBNAM_REPO, ...). */
export function obnam(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runCommand(process.execPath, [OBNAM, ...args], opts);
}

/** Like obnam(), but fails the test unless the exit code is `expect` (default 0). */
export async function obnamOk(args: string[], opts: RunOptions = {}, expect = 0): Promise<RunResult> {
  const r = await obnam(args, opts);
  if (r.code !== expect) {
    throw new Error(`obnam ${args.join(' ')} exited ${r.code} (expected ${expect})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}

/** Runs `obnam ARGS` and keeps stdout as raw bytes (dump output, names that are not UTF-8). */
export function obnamBytes(args: string[], opts: RunOptions = {}): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OBNAM, ...args], { env: baseEnv(opts.env), cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
  });
}
