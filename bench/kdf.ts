/**
 * node dist/bench/kdf.js: what unlocking a key slot costs here. Times scrypt
 * at the cost of new key slots (DEFAULT_KDF_COST), at restic's range and at
 * the readers' limit, and Repository.open of a local repository made with the
 * default cost (what every command pays once). Prints median and worst of
 * KDF_BENCH_RUNS (default 5) runs each, the CPU time per run, and the
 * process's peak RSS.
 *
 * Settings (environment): KDF_BENCH_RUNS.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_KDF_COST, deriveKey, KdfCost, kdfMemory, kdfWork, MAX_KDF_WORK } from '../lib/crypto/kdf.js';
import { Repository } from '../lib/repo/repository.js';
import { LocalStore } from '../lib/store/local.js';

const RUNS = Number(process.env.KDF_BENCH_RUNS ?? 5);

interface Timing {
  median: number;
  worst: number;
  /** CPU time of the process (all threads) per run, median: what a busy machine inflates least. */
  cpu: number;
}

async function timed(fn: () => Promise<unknown>): Promise<Timing> {
  const ms: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    const c = process.cpuUsage();
    await fn();
    const dc = process.cpuUsage(c);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    cpu.push((dc.user + dc.system) / 1000);
  }
  ms.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)]!, worst: ms[ms.length - 1]!, cpu: cpu[Math.floor(cpu.length / 2)]! };
}

function line(label: string, r: Timing): void {
  const f = (n: number) => n.toFixed(0).padStart(5);
  process.stdout.write(`${label.padEnd(56)} median ${f(r.median)} ms  worst ${f(r.worst)} ms  cpu ${f(r.cpu)} ms\n`);
}

async function main(): Promise<void> {
  const costs: [string, KdfCost][] = [
    ['restic low (N=2^15, r=8, p=1)', { logN: 15, r: 8, p: 1 }],
    ['old obnam (N=2^15, r=8, p=4)', { logN: 15, r: 8, p: 4 }],
    [`new slots (N=2^${DEFAULT_KDF_COST.logN}, r=${DEFAULT_KDF_COST.r}, p=${DEFAULT_KDF_COST.p})`, DEFAULT_KDF_COST],
    ['reader limit (N=2^18, r=8, p=2)', { logN: 18, r: 8, p: 2 }],
  ];
  const pass = Buffer.from('benchmark passphrase');
  for (const [label, c] of costs) {
    if (kdfWork(c) > MAX_KDF_WORK) continue;
    const r = await timed(() => deriveKey(pass, { algorithm: 'scrypt', ...c, salt: randomBytes(32) }));
    line(`scrypt ${label}, ${kdfMemory(c) >> 20} MiB`, r);
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'obnam-kdf-bench-'));
  try {
    const spec = { type: 'local' as const, dir: path.join(dir, 'repo') };
    await (await Repository.init(await LocalStore.create(spec.dir), spec, pass)).close();
    line('Repository.open, default cost (unlock)', await timed(async () => (await Repository.open(await LocalStore.open(spec.dir), pass)).close()));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB\n`);
}

await main();
