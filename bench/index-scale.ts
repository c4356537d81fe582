/**
 * The pack index's memory at a terabyte's object count (issue 12): one
 * layout per process, so that its peak RSS is its own. Adds N ids with the
 * fields of a terabyte repository (pack numbers up to N/16, offsets up to
 * 16 MiB, lengths up to 4 MiB) to either the hash-table IdMap layout of
 * issue 8 ("hash") or the SortedIdMap of CompactPackIndex ("sorted"), then
 * prints its bytes per id, the process's peak RSS (VmHWM) above what it was
 * before, the CPU time of building, and of get() on present ids and has() on
 * absent ones.
 *
 *   npx tsc -p . && node dist/bench/index-scale.js [N] [hash|sorted]
 *   (defaults: 11,000,000, sorted; about a minute and N x 60 bytes of memory)
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { IdMap } from '../lib/util/id-map.js';
import { SortedIdMap } from '../lib/util/sorted-id-map.js';

const N = Number(process.argv[2] ?? 11_000_000);
const layout = process.argv[3] ?? 'sorted';
const SAMPLE = 200_000;

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const mib = (n: number) => (n / 2 ** 20).toFixed(0);

interface Layout {
  add(id: Uint8Array, a: number, b: number, c: number): void;
  get(id: Uint8Array): unknown;
  has(id: Uint8Array): boolean;
  done(): void;
  readonly bytes: number;
}

function make(): Layout {
  if (layout === 'hash') {
    const m = new IdMap(3);
    return {
      add: (id, a, b, c) => void m.add(id, a, b, c),
      get: (id) => {
        const p = m.find(id);
        return p < 0 ? undefined : [m.field(p, 0), m.field(p, 1), m.field(p, 2)];
      },
      has: (id) => m.has(id),
      done: () => undefined,
      get bytes() {
        return m.bytes;
      },
    };
  }
  const m = new SortedIdMap();
  return {
    add: (id, a, b, c) => void m.add(id, a, b, c),
    get: (id) => m.get(id),
    has: (id) => m.has(id),
    done: () => m.compact(),
    get bytes() {
      return m.bytes;
    },
  };
}

const sample = Buffer.alloc(SAMPLE * 32);
const absent = randomBytes(SAMPLE * 32);
const rssBefore = peakRss();
const ix = make();
const t0 = cpu();
const BATCH = 1 << 16;
for (let done = 0; done < N; ) {
  const n = Math.min(BATCH, N - done);
  const ids = randomBytes(n * 32);
  for (let i = 0; i < n; i++) {
    const k = done + i;
    const id = ids.subarray(i * 32, i * 32 + 32);
    if (k % Math.floor(N / SAMPLE) === 0 && k / Math.floor(N / SAMPLE) < SAMPLE) sample.set(id, (k / Math.floor(N / SAMPLE)) * 32);
    ix.add(id, Math.floor(k / 16), (k * 2_654_435_761) % (1 << 24), (k * 40_503) % (1 << 22));
  }
  done += n;
}
ix.done();
const build = cpu() - t0;
const peak = peakRss() - rssBefore;
let t = cpu();
for (let i = 0; i < SAMPLE; i++) if (!ix.get(sample.subarray(i * 32, i * 32 + 32))) throw new Error('lost an id');
const get = cpu() - t;
t = cpu();
for (let i = 0; i < SAMPLE; i++) if (ix.has(absent.subarray(i * 32, i * 32 + 32))) throw new Error('found an absent id');
const has = cpu() - t;
process.stdout.write(
  `${layout} at ${N} ids: ${(ix.bytes / N).toFixed(1)} B per id (${mib(ix.bytes)} MiB in typed arrays); peak RSS ${mib(peak)} MiB above the start (${(peak / N).toFixed(1)} B per id); ` +
    `build ${((build * 1e6) / N).toFixed(0)} ns per id (CPU), get ${((get * 1e6) / SAMPLE).toFixed(0)} ns, has (absent) ${((has * 1e6) / SAMPLE).toFixed(0)} ns\n`,
);
