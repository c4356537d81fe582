/**
 * node dist/bench/namespace-timing.js [--requests N]: latency of requests
 * for a namespace that does not exist and for one that exists but is not
 * granted to the client (format-spec/sharing.md 11.3 claims no timing gap),
 * against a real obnam-server on loopback HTTPS, interleaved so that load
 * changes hit both alike. Prints medians and the 10th/90th percentiles in
 * microseconds.
 */
import * as fs from 'node:fs/promises';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { addNamespace, grantAccess } from '../server/acl.js';
import { addClient } from '../server/admin.js';
import { initServerDir } from '../server/init.js';
import { serverDir } from '../server/layout.js';
import { startServer } from '../server/start.js';

const n = Number(process.argv[process.argv.indexOf('--requests') + 1]) || 2000;
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'obnam-bench-ns-'));
const dir = path.join(tmp, 'server');
await initServerDir(dir);
const d = serverDir(dir);
const outsider = (await addClient(d, 'outsider', false)).token;
await addClient(d, 'member', false);
await addNamespace(d, 'family');
await grantAccess(d, 'member', 'family', 'read');
const server = await startServer({ dir, listen: '127.0.0.1:0', logLevel: 'silent' });
const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
const u = new URL(server.url);

function once(p: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const r = https.request({ hostname: u.hostname, port: u.port, path: p, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(Number(process.hrtime.bigint() - t0) / 1000));
    });
    r.on('error', reject);
    r.end();
  });
}

const id = 'ab'.repeat(32);
const samples = { missing: [] as number[], ungranted: [] as number[] };
for (let i = 0; i < 200; i++) await once(`/nowhere/v1/objects/chunk/${id}`, outsider); // warm up
for (let i = 0; i < n; i++) {
  const order = i % 2 === 0 ? (['missing', 'ungranted'] as const) : (['ungranted', 'missing'] as const);
  for (const k of order) samples[k].push(await once(`/${k === 'missing' ? 'nowhere' : 'family'}/v1/objects/chunk/${id}`, outsider));
}
const pct = (a: number[], q: number) => [...a].sort((x, y) => x - y)[Math.floor(q * (a.length - 1))]!.toFixed(0);
for (const [k, a] of Object.entries(samples)) console.log(`${k.padEnd(10)} median ${pct(a, 0.5)} µs  p10 ${pct(a, 0.1)}  p90 ${pct(a, 0.9)}  (${a.length} requests)`);
agent.destroy();
await server.close();
await fs.rm(tmp, { recursive: true, force: true });
