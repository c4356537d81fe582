/**
 * Server-scale benchmark: one obnam-server (its own process,
 * bench/server-scale-host.ts) with many registered clients, a number of which
 * back up at once, each its own small tree, again and again for a bounded
 * time (each round changes two files of the client's tree). Reports the
 * server's memory idle with every client registered and its peak during the
 * backups, request latency (p50/p90/p99, measured in the server from a
 * request's headers to its response), throughput (requests/s, MB/s of
 * request bodies and of the clients' source data), the backups' own times,
 * and then restores every snapshot of every client and compares it byte for
 * byte with what that round's tree held.
 *
 *   npm run bench:server-scale      (or: npx tsc -p . && node dist/bench/server-scale.js)
 *
 * Settings (environment):
 *   BENCH_CLIENTS      registered clients (default 1000)
 *   BENCH_CONCURRENT   clients backing up at once (default 100; each runs obnam
 *                      backup as a child process, one worker thread, about
 *                      100 MiB of memory each)
 *   BENCH_SECONDS      how long backups keep starting (default 120); the ones
 *                      running at the end finish
 *   BENCH_TREE_FILES   files in each client's tree (default 30, about 1 MB)
 *   BENCH_OUT          output directory (default ./bench-scale-results):
 *                      server-scale.md and server-scale.json
 *   BENCH_NOTE         a line for the header (e.g. "loaded machine")
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { KdfCost } from '../lib/crypto/kdf.js';
import { Repository } from '../lib/repo/repository.js';
import { restore } from '../lib/restore/engine.js';
import { HttpStore } from '../lib/store/http.js';
import type { StoreSpec } from '../lib/store/store.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { addClient } from '../server/admin.js';
import { initServerDir } from '../server/init.js';
import { serverDir } from '../server/layout.js';
import { contentAt, FileAttrs, hash } from './scale-data.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OBNAM = path.join(ROOT, 'bin', 'obnam');
const HOST = path.join(ROOT, 'dist', 'bench', 'server-scale-host.js');
/**
 * The passphrase's cost is the clients' CPU and memory, not the server's: the
 * repositories get the test suites' cheap scrypt cost (opening uses the cost
 * stored in the key slot, so every obnam backup of them is cheap too).
 */
const CHEAP_KDF: Readonly<KdfCost> = Object.freeze({ logN: 10, r: 8, p: 1 });

const num = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: a positive number`);
  return v;
};
const say = (s: string) => process.stdout.write(s + '\n');

interface ServerStats {
  seconds: number;
  requests: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  bytesIn: number;
  bytesOut: number;
  statuses: Record<string, number>;
  cpuSeconds: number;
  rssMb: number;
  peakRssMb: number;
  peaks: { requests: number; clients: number; perClient: number };
}

/** The files of client `c`'s tree in round `r`: name and content. */
function* treeFiles(c: number, r: number, files: number): Generator<[string, Buffer]> {
  const file = (key: number, size: number): Buffer => {
    const a: FileAttrs = { size, mode: 0o100644, mtime: 0, seed: key, text: (key & 1) === 0, ino: 0 };
    return contentAt(a, 0, size);
  };
  for (let i = 0; i < files; i++) {
    const key = hash(c, 1000 + i);
    const size = Math.floor(2 ** ((hash(key, 1) / 2 ** 32) * 18)); // 1 B to 256 KiB, log-uniform
    yield [path.join(i % 3 === 0 ? 'a' : i % 3 === 1 ? 'b/c' : 'b', `f${i}`), file(key, size)];
  }
  yield ['round.txt', Buffer.from(`client ${c} round ${r}\n`)];
  yield ['churn.bin', file(hash(c * 7919 + r, 99), 65536)];
}

function writeRound(dir: string, c: number, r: number, files: number): number {
  let bytes = 0;
  for (const [name, data] of treeFiles(c, r, files)) {
    if (r > 0 && name !== 'round.txt' && name !== 'churn.bin') {
      bytes += data.length;
      continue;
    }
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), data);
    bytes += data.length;
  }
  return bytes;
}

/** Compares a restored tree with round `r` of client `c`: the same files, byte for byte, nothing more. */
function checkRound(restored: string, c: number, r: number, files: number): string | undefined {
  const want = new Map([...treeFiles(c, r, files)]);
  const seen = new Set<string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else seen.add(path.relative(restored, p));
    }
  };
  walk(restored);
  for (const [name, data] of want) {
    if (!seen.has(name)) return `${name} missing`;
    if (!fs.readFileSync(path.join(restored, name)).equals(data)) return `${name} differs`;
  }
  if (seen.size !== want.size) return `${seen.size - want.size} unexpected files`;
  return undefined;
}

function runObnam(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [OBNAM, ...args], { env: { ...process.env, OBNAM_NO_PROGRESS: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
}

async function inBatches<T>(items: T[], size: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: size }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

async function main(): Promise<void> {
  const registered = num('BENCH_CLIENTS', 1000);
  const concurrent = Math.min(registered, num('BENCH_CONCURRENT', 100));
  const seconds = num('BENCH_SECONDS', 120);
  const treeFilesN = num('BENCH_TREE_FILES', 30);
  const out = path.resolve(process.env.BENCH_OUT ?? 'bench-scale-results');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-bench-server-scale-'));
  const dir = path.join(work, 'server');
  let host: ReturnType<typeof spawn> | undefined;
  const stopHost = async () => {
    if (host && host.exitCode === null) {
      host.stdin!.end();
      const t = setTimeout(() => host?.kill('SIGKILL'), 15_000);
      await new Promise((r) => host!.once('exit', r));
      clearTimeout(t);
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => void stopHost().finally(() => {
      fs.rmSync(work, { recursive: true, force: true });
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }));
  }
  try {
    const { fingerprint } = await initServerDir(dir);
    const t0 = performance.now();
    const tokens: string[] = [];
    for (let i = 0; i < registered; i++) tokens.push((await addClient(serverDir(dir), `client${i}`, false)).token);
    say(`${registered} clients registered in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    host = spawn(process.execPath, [HOST, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: host.stdout! });
    const waiting: ((l: string) => void)[] = [];
    lines.on('line', (l) => waiting.shift()?.(l));
    const next = () => new Promise<string>((res, rej) => {
      waiting.push(res);
      host!.once('exit', (code) => rej(new Error(`the server exited (${code})`)));
    });
    const ask = async (cmd: string): Promise<ServerStats> => {
      const answer = next();
      host!.stdin!.write(cmd + '\n');
      return JSON.parse(await answer) as ServerStats;
    };
    const m = /^listening (\S+) (\S+)$/.exec(await next());
    if (!m) throw new Error('the server did not start');
    const url = m[1]!;
    const idle = await ask('stats');
    say(`server idle with ${registered} registered clients: RSS ${idle.rssMb.toFixed(0)} MiB`);

    // The active clients: a tree and a repository each (set-up, not measured).
    const active = Array.from({ length: concurrent }, (_, c) => {
      const src = path.join(work, 'src', `client${c}`);
      const env = { OBNAM_REPO: url, OBNAM_TOKEN: tokens[c]!, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: `passphrase of client${c}`, OBNAM_WORKERS: '1' };
      return { c, src, env, rounds: 0, backups: [] as number[], failures: [] as string[], bytes: 0 };
    });
    await inBatches(active, 10, async (a) => {
      const spec: StoreSpec = { type: 'http', url, token: tokens[a.c]!, fingerprint };
      const repo = await Repository.init(await HttpStore.open(spec), spec, a.env.OBNAM_PASSPHRASE, undefined, { kdf: CHEAP_KDF });
      await repo.close();
    });
    const afterInit = await ask('stats');
    say(`${concurrent} repositories made; server RSS ${afterInit.rssMb.toFixed(0)} MiB`);

    // The measured phase: every active client backs up, round after round, until the time is up.
    await ask('reset');
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      active.map(async (a) => {
        while (performance.now() < deadline) {
          a.bytes += writeRound(a.src, a.c, a.rounds, treeFilesN);
          const r = await runObnam(['backup', a.src], a.env);
          if (r.code !== 0) {
            a.failures.push(`round ${a.rounds}: exit ${r.code}: ${r.stderr.trim().split('\n').pop()}`);
            break; // the tree and the snapshots no longer line up
          }
          a.backups.push(r.seconds);
          a.rounds++;
        }
      }),
    );
    const wall = (performance.now() - started) / 1000;
    const busy = await ask('stats');
    const backups = active.flatMap((a) => a.backups);
    say(`${backups.length} backups in ${wall.toFixed(0)} s; server peak RSS ${busy.peakRssMb.toFixed(0)} MiB`);

    // Every snapshot restores to exactly what its round held.
    const restoreStarted = performance.now();
    let snapshots = 0;
    const bad: string[] = [];
    fs.mkdirSync(path.join(work, 'restore'));
    await inBatches(active, 4, async (a) => {
      const spec: StoreSpec = { type: 'http', url, token: tokens[a.c]!, fingerprint };
      const repo = await Repository.open(await HttpStore.open(spec), a.env.OBNAM_PASSPHRASE);
      const pool = startRepoPool(repo, { size: 1 });
      try {
        const snaps = await repo.listSnapshots();
        if (snaps.length !== a.rounds) bad.push(`client${a.c}: ${snaps.length} snapshots, ${a.rounds} backups`);
        for (const [r, s] of snaps.entries()) {
          const target = path.join(work, 'restore', `client${a.c}-${r}`);
          const result = await restore(repo, await repo.resolveSnapshot(s.id), { target, pool });
          const why = result.errors ? `${result.errors} errors` : checkRound(path.join(target, a.src), a.c, r, treeFilesN);
          if (why) bad.push(`client${a.c} snapshot ${r}: ${why}`);
          fs.rmSync(target, { recursive: true, force: true });
          snapshots++;
        }
      } finally {
        await pool.close();
        await repo.close();
      }
    });
    const restoreSeconds = (performance.now() - restoreStarted) / 1000;
    const failures = active.flatMap((a) => a.failures.map((f) => `client${a.c} ${f}`));
    say(`${snapshots} snapshots restored and compared in ${restoreSeconds.toFixed(0)} s: ${bad.length ? `${bad.length} BAD` : 'all identical'}`);

    const result = {
      machine: `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`,
      note: process.env.BENCH_NOTE ?? '',
      settings: { registered, concurrent, seconds, treeFiles: treeFilesN },
      idleRssMb: idle.rssMb,
      afterInitRssMb: afterInit.rssMb,
      busy,
      wallSeconds: wall,
      backups: backups.length,
      backupP50: quantile(backups, 0.5),
      backupP99: quantile(backups, 0.99),
      sourceMB: active.reduce((n, a) => n + a.bytes, 0) / 1e6,
      failures,
      snapshotsRestored: snapshots,
      restoreSeconds,
      bad,
    };
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'server-scale.json'), JSON.stringify(result, null, 1) + '\n');
    const md = [
      '## obnam server-scale benchmark (bench/server-scale.ts)',
      '',
      `${result.machine}${result.note ? `; ${result.note}` : ''}. ${registered} registered clients, ${concurrent} backing up at once for ${seconds} s ` +
        `(each its own tree of ${treeFilesN + 2} files, two files changed each round; obnam backup with one worker, over HTTPS on loopback; server in its own process).`,
      '',
      '| measure | value |',
      '|---|---|',
      `| server RSS idle, ${registered} clients registered | ${idle.rssMb.toFixed(0)} MiB |`,
      `| server RSS after ${concurrent} repositories were made | ${afterInit.rssMb.toFixed(0)} MiB |`,
      `| server peak RSS during the backups | ${busy.peakRssMb.toFixed(0)} MiB |`,
      `| server CPU during the backups | ${busy.cpuSeconds.toFixed(0)} s (${((busy.cpuSeconds / busy.seconds) * 100).toFixed(0)}% of one core) |`,
      `| requests | ${busy.requests} (${(busy.requests / busy.seconds).toFixed(0)}/s); ${Object.entries(busy.statuses).map(([k, v]) => `${k}: ${v}`).join(', ')} |`,
      `| request latency p50 / p90 / p99 / max | ${busy.p50Ms.toFixed(1)} / ${busy.p90Ms.toFixed(1)} / ${busy.p99Ms.toFixed(1)} / ${busy.maxMs.toFixed(0)} ms |`,
      `| request bodies in / responses out (those with a length) | ${(busy.bytesIn / 1e6).toFixed(1)} MB (${(busy.bytesIn / 1e6 / busy.seconds).toFixed(2)} MB/s) / ${(busy.bytesOut / 1e6).toFixed(1)} MB |`,
      `| peak requests / clients in progress at once | ${busy.peaks.requests} / ${busy.peaks.clients} |`,
      `| backups finished (wall ${wall.toFixed(0)} s) | ${backups.length}, ${(result.sourceMB / wall).toFixed(1)} MB/s of source data; ${failures.length} failed |`,
      `| one backup: p50 / p99 | ${result.backupP50.toFixed(1)} / ${result.backupP99.toFixed(1)} s |`,
      `| snapshots restored and compared byte for byte | ${snapshots}, ${bad.length ? `${bad.length} BAD` : 'all identical'} (${restoreSeconds.toFixed(0)} s) |`,
      '',
      ...(failures.length ? ['Failed backups:', '', ...failures.slice(0, 20).map((f) => `- ${f}`), ''] : []),
      ...(bad.length ? ['Bad restores:', '', ...bad.slice(0, 20).map((f) => `- ${f}`), ''] : []),
    ].join('\n');
    fs.writeFileSync(path.join(out, 'server-scale.md'), md);
    process.stdout.write('\n' + md);
    if (bad.length || failures.length) process.exitCode = 1;
  } finally {
    await stopHost();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`server-scale bench failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
