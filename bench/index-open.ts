/**
 * Opening a packed store's index at a million objects and more (issue 12):
 * what PackedStore's open does with the entries it reads from index
 * segments and pack footers, without the I/O. N objects in packs of 1,000
 * entries (PackedEntry objects with hex ids, as decodeSegment gives them;
 * a tenth trees, the rest chunks; 1% of the ids also stored in a second
 * pack, as a killed repack leaves them) go to one CompactPackIndex by
 * addPack, then compact() (as PackedStore.load does) and one get. Prints the
 * CPU time of the index work alone (addPack and compact, not making the
 * entries), the process's peak RSS (VmHWM) and the index's bytes per object.
 *
 *   npx tsc -p . && /usr/bin/time -f "%e s %U user %S sys %M KiB" node dist/bench/index-open.js [N]
 *   (default 1,000,000)
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { CompactPackIndex, type PackedEntry } from '../lib/store/compact-index.js';

const N = Number(process.argv[2] ?? 1_000_000);
const PER_PACK = 1000;

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const rssBefore = peakRss();
const ix = new CompactPackIndex();
const none = new Set<string>();
const twice: string[] = [];
let work = 0;
let packs = 0;
for (let done = 0; done < N; packs++) {
  const n = Math.min(PER_PACK, N - done);
  const ids = randomBytes(n * 32);
  const entries: PackedEntry[] = [];
  for (let i = 0; i < n; i++) {
    const id = ids.toString('hex', i * 32, i * 32 + 32);
    entries.push({ kind: (done + i) % 10 === 0 ? 'tree' : 'chunk', id, offset: (i * 16_411) % (1 << 24), length: 4096 + ((i * 7919) % 65_536) });
    if ((done + i) % 100 === 1) twice.push(id);
  }
  // The second copies of earlier ids, in a later pack.
  if (twice.length >= PER_PACK) entries.push(...twice.splice(0).map((id, i) => ({ kind: 'chunk' as const, id, offset: i * 100, length: 100 })));
  const t = cpu();
  ix.addPack(`p${packs.toString(16).padStart(64, '0')}`, entries, none, 16 << 20);
  work += cpu() - t;
  done += n;
}
const t = cpu();
ix.compact();
if (!ix.has('chunk', randomBytes(32).toString('hex'))) work += cpu() - t;
const peak = peakRss();
process.stdout.write(
  `${N} objects in ${packs} packs: index work ${(work / 1000).toFixed(2)} s CPU (${((work * 1e6) / N / 1000).toFixed(2)} µs per object); ` +
    `${ix.objects} indexed, ${(ix.bytes / N).toFixed(1)} B per object in typed arrays; peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB (${((peak - rssBefore) / 2 ** 20).toFixed(0)} MiB above the start)\n`,
);
