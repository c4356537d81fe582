/**
 * Memory of garbage collection's id collections at the bound of 10
 * million reachable objects: what a mark holds at its peak — L, every
 * stored id (IdList, 32 bytes each), and R, the reachable set (IdPrefixSet of
 * 16-byte prefixes, sized from L) — and prints the peak RSS.
 * Run: npx tsc -p . && node dist/bench/gc-memory.js [N]
 */
import { randomFillSync } from 'node:crypto';
import { IdList, IdPrefixSet } from '../lib/util/id-prefix-set.js';

const n = Number(process.argv[2] ?? 10_000_000);
const before = process.memoryUsage().rss;
const list = new IdList();
const batch = new Uint8Array(32 * 65536);
for (let i = 0; i < n; i += 65536) {
  randomFillSync(batch);
  for (let j = 0; j < 65536 && i + j < n; j++) list.push(batch.subarray(j * 32, j * 32 + 32));
}
const t0 = performance.now();
const reach = new IdPrefixSet(list.size);
for (const b of list.bytes()) reach.add(b);
const t1 = performance.now();
let candidates = 0;
for (const b of list.bytes()) if (!reach.has(b)) candidates++;
const mib = (b: number) => (b / 2 ** 20).toFixed(0);
process.stdout.write(
  `L of ${list.size} ids + R of ${reach.size}: rss ${mib(process.memoryUsage().rss)} MiB (was ${mib(before)} MiB), ` +
    `${((t1 - t0) / 1000).toFixed(1)} s to fill R, ${candidates} candidates\n`,
);
