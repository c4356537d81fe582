/**
 * Memory and time of garbage collection at the bound of 10 million
 * reachable objects: the real collector (lib/gc/prune.ts with --exclusive:
 * mark, then the sweep of every plan at once; mark.ts, sweep.ts, reach.ts
 * over the compact id collections of lib/util/id-prefix-set.ts and
 * id-map.ts) run over the synthetic repository of
 * test/helpers/synthetic-gc-repo.ts, which serves generated tree nodes
 * naming REACHABLE chunk ids (from two snapshots sharing half their trees)
 * and lists GARBAGE more chunks (half under a forgotten snapshot's trees)
 * without storing any object. Prints the peak RSS after the mark and at the
 * end, the time of each phase, and checks that exactly the garbage was
 * deleted (test/gc-scale.test.ts proves the same path at 700 000 chunks).
 *
 * Run: npx tsc -p . && node dist/bench/gc-memory.js [REACHABLE [GARBAGE]] [--json]
 * (npm run bench:gc-memory; defaults 10 000 000 and 1 000 000).
 */
import * as fs from 'node:fs';
import { prune } from '../lib/gc/prune.js';
import { SyntheticGcRepo, Tag } from '../test/helpers/synthetic-gc-repo.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const json = process.argv.includes('--json');
const reachable = Number(args[0] ?? 10_000_000);
const garbage = Number(args[1] ?? Math.round(reachable / 10));

const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
/** Peak RSS so far, in bytes (VmHWM; maxRSS where /proc is absent). */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

const repo = new SyntheticGcRepo({ reachableChunks: reachable, garbageChunks: garbage, snapshots: 2 });
const baseline = { rss: process.memoryUsage().rss, peak: peakRss() };
const phases: { phase: string; startMs: number; peakBeforeMiB: number }[] = [];
const t0 = performance.now();
const report = await prune(repo, {
  clock: { now: () => Date.now() },
  exclusive: true,
  hostname: 'gc-memory-bench',
  onPhase: (phase) => phases.push({ phase, startMs: performance.now() - t0, peakBeforeMiB: mib(peakRss()) }),
});
const totalMs = performance.now() - t0;
const peakEnd = peakRss();

// What was deleted is exactly the garbage.
let wrong = 0;
for (let n = 0; n < repo.totalChunks; n++) if (repo.isDeleted(Tag.Chunk, n) !== n >= reachable) wrong++;
for (let n = 0; n < repo.leaves; n++) if (repo.isDeleted(Tag.Leaf, n)) wrong++;
for (let n = 0; n < repo.garbageLeaves; n++) if (!repo.isDeleted(Tag.GarbageLeaf, n)) wrong++;
if (wrong || report.deleted.chunks !== garbage) throw new Error(`the collector deleted the wrong objects (${wrong} wrong, ${report.deleted.chunks} chunks deleted)`);

const markEnd = phases.find((p) => p.phase === 'sweep');
const result = {
  reachableChunks: reachable,
  reachableTrees: repo.leaves + repo.mids + repo.snapshots,
  garbageChunks: garbage,
  garbageTrees: repo.garbageLeaves + 1,
  listedIds: repo.totalChunks + repo.leaves + repo.mids + repo.snapshots + repo.garbageLeaves + 1,
  plans: report.marked?.plans.length ?? 0,
  baselineRssMiB: mib(baseline.rss),
  peakRssAfterMarkMiB: markEnd?.peakBeforeMiB,
  peakRssMiB: mib(peakEnd),
  markSeconds: markEnd ? Math.round(markEnd.startMs / 100) / 10 : undefined,
  sweepSeconds: markEnd ? Math.round((totalMs - markEnd.startMs) / 100) / 10 : undefined,
  totalSeconds: Math.round(totalMs / 100) / 10,
  deleted: report.deleted,
  node: process.version,
};
if (json) process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
else {
  process.stdout.write(
    `prune --exclusive over ${result.listedIds} listed ids (${reachable} reachable chunks + ${result.reachableTrees} trees, ` +
      `${garbage} garbage chunks + ${result.garbageTrees} trees, ${result.plans} plans):\n` +
      `  peak RSS ${result.peakRssMiB} MiB (after the mark ${result.peakRssAfterMarkMiB} MiB; baseline ${result.baselineRssMiB} MiB)\n` +
      `  mark ${result.markSeconds} s, sweep ${result.sweepSeconds} s, total ${result.totalSeconds} s; deleted exactly the garbage\n`,
  );
}
