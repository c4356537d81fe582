/**
 * Remote benchmark: `obnam backup` and `obnam restore` of the same data to a
 * local directory repository and to an obnam-server over HTTPS on loopback,
 * in MB/s (10^6 bytes per second of source data). The server runs in this
 * process (startServer), the client as the real CLI in child processes.
 *
 * From the bench runner:  await benchRemote({ source })   (or { bytes } for random data)
 * Standalone:
 *   node dist/bench/server-remote.js [--size MIB] [--source DIR] [--runs N] [--json]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addClient } from '../server/admin.js';
import { initServerDir } from '../server/init.js';
import { serverDir } from '../server/layout.js';
import { startServer } from '../server/start.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OBNAM = path.join(ROOT, 'bin', 'obnam');

export interface RemoteBenchOptions {
  /** Directory to back up; default: `bytes` of random data in files of 64 MiB. */
  source?: string;
  bytes?: number;
  /** Runs of each measurement; the best is reported. */
  runs?: number;
}

export interface RemoteBenchResult {
  bytes: number;
  local: { backupMBps: number; restoreMBps: number };
  remote: { backupMBps: number; restoreMBps: number };
}

function run(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [OBNAM, ...args], {
      env: { ...process.env, OBNAM_NO_PROGRESS: '1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`obnam ${args.join(' ')} exited ${code}: ${err}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e9);
    });
  });
}

async function duSource(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await duSource(p);
    else if (e.isFile()) total += (await fs.stat(p)).size;
  }
  return total;
}

export async function benchRemote(opts: RemoteBenchOptions = {}): Promise<RemoteBenchResult> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'obnam-bench-remote-'));
  try {
    let source = opts.source;
    if (!source) {
      source = path.join(work, 'source');
      await fs.mkdir(source);
      let left = opts.bytes ?? 512 << 20;
      for (let i = 0; left > 0; i++) {
        const n = Math.min(left, 64 << 20);
        await fs.writeFile(path.join(source, `random${i}`), randomBytes(n));
        left -= n;
      }
    }
    const bytes = await duSource(source);
    const { fingerprint } = await initServerDir(path.join(work, 'server'));
    const server = await startServer({ dir: path.join(work, 'server'), listen: '127.0.0.1:0', logLevel: 'warn' });
    try {
      const measure = async (repoEnv: () => Promise<Record<string, string>>) => {
        let backup = Infinity;
        let restore = Infinity;
        for (let i = 0; i < (opts.runs ?? 1); i++) {
          const env = { OBNAM_PASSPHRASE: 'bench', ...(await repoEnv()) };
          await run(['init'], env);
          backup = Math.min(backup, await run(['backup', source!], env));
          const target = path.join(work, `restore-${i}-${Date.now()}`);
          restore = Math.min(restore, await run(['restore', 'latest', target], env));
          await fs.rm(target, { recursive: true, force: true });
        }
        return { backupMBps: bytes / 1e6 / backup, restoreMBps: bytes / 1e6 / restore };
      };
      let n = 0;
      const local = await measure(async () => ({ OBNAM_REPO: path.join(work, `local-repo-${n++}`) }));
      const remote = await measure(async () => ({
        OBNAM_REPO: server.url,
        OBNAM_TOKEN: (await addClient(serverDir(path.join(work, 'server')), `bench${n++}`, false)).token,
        OBNAM_SERVER_FINGERPRINT: fingerprint,
      }));
      return { bytes, local, remote };
    } finally {
      await server.close();
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const result = await benchRemote({
    source: arg('source'),
    bytes: arg('size') ? Number(arg('size')) << 20 : undefined,
    runs: arg('runs') ? Number(arg('runs')) : undefined,
  });
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    const f = (x: number) => x.toFixed(1).padStart(7);
    process.stdout.write(
      `${(result.bytes / 1e6).toFixed(0)} MB\n` +
        `                 backup MB/s  restore MB/s\n` +
        `local directory  ${f(result.local.backupMBps)}      ${f(result.local.restoreMBps)}\n` +
        `https loopback   ${f(result.remote.backupMBps)}      ${f(result.remote.restoreMBps)}\n`,
    );
  }
}
