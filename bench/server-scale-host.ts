/**
 * The server side of the server-scale benchmark (bench/server-scale.ts): an
 * obnam-server (startServer, as `obnam-server serve` runs it) in a process of
 * its own, so its memory is the server's alone, with every request's
 * latency (from its headers being read to its response being sent) counted
 * in a log-scale histogram (bounded memory whatever the request count).
 *
 *   node dist/bench/server-scale-host.js SERVER_DIR
 *
 * Prints "listening URL FINGERPRINT" once it listens. Commands on stdin, one
 * a line: "reset" (forget the latencies and counters and reset the peak RSS,
 * so that a phase is measured alone) and "stats" (answered with one JSON
 * line); it closes the server and exits when stdin closes.
 */
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as readline from 'node:readline';
import { startServer } from '../server/start.js';

/** Latency buckets: 1% wide, from 10 us up. */
const BASE = 0.01;
const STEP = Math.log(1.01);
const BUCKETS = 2000;

class Histogram {
  counts = new Float64Array(BUCKETS);
  n = 0;
  max = 0;
  add(ms: number): void {
    const b = Math.min(BUCKETS - 1, Math.max(0, Math.floor(Math.log(Math.max(ms, BASE) / BASE) / STEP)));
    this.counts[b]!++;
    this.n++;
    this.max = Math.max(this.max, ms);
  }
  quantile(q: number): number {
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= q * this.n && seen > 0) return BASE * Math.exp((b + 0.5) * STEP);
    }
    return NaN;
  }
}

function memory(): { rssMb: number; peakRssMb: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
}

async function main(dir: string): Promise<void> {
  const server = await startServer({ dir, listen: '127.0.0.1:0', logLevel: 'warn' });
  let hist = new Histogram();
  let bytesIn = 0;
  let bytesOut = 0;
  let statuses: Record<string, number> = {};
  let since = performance.now();
  let cpu = process.cpuUsage();
  server.app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const t0 = performance.now();
    bytesIn += Number(req.headers['content-length'] ?? 0);
    res.once('finish', () => {
      hist.add(performance.now() - t0);
      bytesOut += Number(res.getHeader('content-length') ?? 0);
      const k = `${Math.floor(res.statusCode / 100)}xx${res.statusCode === 503 || res.statusCode === 429 ? ` (${res.statusCode})` : ''}`;
      statuses[k] = (statuses[k] ?? 0) + 1;
    });
  });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line === 'reset') {
      hist = new Histogram();
      bytesIn = bytesOut = 0;
      statuses = {};
      since = performance.now();
      cpu = process.cpuUsage();
      try {
        fs.writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
      } catch {
        // older kernels: the peak then covers the set-up too
      }
      process.stdout.write('{"reset":true}\n');
    } else if (line === 'stats') {
      const used = process.cpuUsage(cpu);
      process.stdout.write(
        JSON.stringify({
          seconds: (performance.now() - since) / 1000,
          requests: hist.n,
          p50Ms: hist.quantile(0.5),
          p90Ms: hist.quantile(0.9),
          p99Ms: hist.quantile(0.99),
          maxMs: hist.max,
          bytesIn,
          bytesOut,
          statuses,
          cpuSeconds: (used.user + used.system) / 1e6,
          ...memory(),
          peaks: server.peaks(),
        }) + '\n',
      );
    }
  });
  rl.on('close', () => void server.close().then(() => process.exit(0)));
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
  process.on('SIGINT', () => void server.close().then(() => process.exit(0)));
  process.stdout.write(`listening ${server.url} ${server.fingerprint}\n`);
}

main(process.argv[2] ?? '').catch((e: unknown) => {
  process.stderr.write(`server-scale-host: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
