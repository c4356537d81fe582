/**
 * Runs the real CLI in a child process, as users and scripts do. Tests give
 * new key slots a low scrypt cost (helpers/kdf.ts), injected by
 * helpers/obnam-entry.ts, so that creating many repositories stays fast;
 * everything else is the production path. `realKdf` runs bin/obnam itself.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const OBNAM = path.join(ROOT, 'bin', 'obnam');
/** bin/obnam with the test suite's cheap KDF cost for new key slots. */
export const OBNAM_TEST_ENTRY = path.join(ROOT, 'dist', 'test', 'helpers', 'obnam-entry.js');

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
  /** Run bin/obnam itself: new key slots get the production scrypt cost (slow). */
  realKdf?: boolean;
}

/**
 * The obnam cache (XDG_CACHE_HOME) of the commands this test process runs,
 * unless a test sets its own: never the cache of whoever runs the tests.
 * Removed when the process exits.
 */
export const TEST_CACHE_HOME = fs.mkdtempSync(path.join(process.env.OBNAM_TEST_TMPDIR ?? os.tmpdir(), 'obnam-test-cache-'));
fs.chmodSync(TEST_CACHE_HOME, 0o1777); // like /tmp: for commands a test runs as another user too
process.on('exit', () => fs.rmSync(TEST_CACHE_HOME, { recursive: true, force: true }));

export function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OBNAM_NO_PROGRESS: '1', XDG_CACHE_HOME: TEST_CACHE_HOME };
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
  return runCommand(process.execPath, [opts.realKdf ? OBNAM : OBNAM_TEST_ENTRY, ...args], opts);
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
