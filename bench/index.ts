/**
 * Index figures (issues 8 and 12): the time to open a namespace with 1,000
 * packs, before (the pack-footer reading LocalStore) and after (PackedStore
 * with index segments), on a local directory and on S3 (s3rver on
 * 127.0.0.1, a dev dependency); and per indexed object the memory and the
 * time of building, get() of present ids and has() of absent ones, for the
 * Map-based PackIndex, the hash-table IdMap layout (the index of issue 8,
 * 32-byte ids, three 32-bit fields, a table of slots) and CompactPackIndex
 * (a SortedIdMap: a sorted run of 30-byte ids with bit-packed fields).
 *
 *   npx tsc -p . && node --expose-gc dist/bench/index.js [PACKS] [OBJECTS] [OBJECTS PER PACK]
 *   (PACKS 0 skips the open figures)
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BlobBackend } from '../lib/blob/backend.js';
import { LocalBlobBackend } from '../lib/blob/local.js';
import { CompactPackIndex } from '../lib/store/compact-index.js';
import { LocalStore } from '../lib/store/local.js';
import { PackIndex } from '../lib/store/pack-index.js';
import { PackedStore } from '../lib/store/packed.js';
import { IdMap } from '../lib/util/id-map.js';
import { startS3 } from '../test/helpers/s3.js';

const PACKS = Number(process.argv[2] ?? 1000);
const OBJECTS = Number(process.argv[3] ?? 200_000);
const PER_PACK = Number(process.argv[4] ?? 20);

const gc = (globalThis as { gc?: () => void }).gc;
function memory(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Wall-clock ms and, in the label, this process's CPU ms (steadier on a loaded machine; s3rver runs in-process too). */
async function time<T>(fn: () => Promise<T>): Promise<[string, T]> {
  const t = process.hrtime.bigint();
  const c = process.cpuUsage();
  const r = await fn();
  const u = process.cpuUsage(c);
  return [`${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(0)} ms (CPU ${((u.user + u.system) / 1000).toFixed(0)} ms)`, r];
}

/** Fills a packed store with PACKS packs of PER_PACK small objects. */
async function fill(store: { put: PackedStore['put']; flush(): Promise<void> }): Promise<void> {
  for (let p = 0; p < PACKS; p++) {
    for (let i = 0; i < PER_PACK; i++) await store.put('chunk', randomBytes(32).toString('hex'), randomBytes(64));
    await store.flush();
  }
}

async function packedOpen(name: string, backend: () => BlobBackend, cleanup: () => Promise<void>): Promise<string[]> {
  const s = await PackedStore.create(backend());
  await fill(s);
  // No close: no segment, as if every pack had been written by processes that died. The first
  // open reads every footer, and writes one segment for all (it finds > 16 uncovered packs).
  const [footers, a] = await time(() => PackedStore.open(backend()));
  await a.close();
  const [segments, b] = await time(() => PackedStore.open(backend()));
  const stats = b.indexStats();
  await b.close();
  await cleanup();
  return [
    `${name}: open with ${stats.packs} packs reading their footers: ${footers}`,
    `${name}: open with ${stats.packs} packs from ${stats.segments} index segment(s): ${segments}`,
  ];
}

async function main(): Promise<void> {
  const out: string[] = [];
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'obnam-index-bench-'));
  try {
    // Before: LocalStore (layout 1) reads every pack's footer at open.
    if (PACKS > 0) {
      const dir = path.join(work, 'local');
      const ls = await LocalStore.create(dir, { packSize: 1 << 20 });
      await fill(ls);
      await ls.close();
      // Without segments, as layout 1 was (and as a store whose writers all died).
      await fs.rm(path.join(dir, 'index'), { recursive: true, force: true });
      await fs.mkdir(path.join(dir, 'index'));
      const [lt, l2] = await time(() => LocalStore.open(dir));
      await l2.close();
      out.push(`LocalStore (local directory): open with ${PACKS} packs reading their footers: ${lt}`);
      // That open found > 16 uncovered packs and wrote one segment for all.
      const [ls2, l3] = await time(() => LocalStore.open(dir));
      await l3.close();
      out.push(`LocalStore (local directory): open with ${PACKS} packs from its index segment: ${ls2}`);

      const bdir = path.join(work, 'blobs');
      await fs.mkdir(bdir);
      out.push(...(await packedOpen('PackedStore on a local directory', () => new LocalBlobBackend(bdir), async () => undefined)));
      const s3 = await startS3();
      try {
        out.push(...(await packedOpen('PackedStore on S3 (s3rver, loopback)', () => s3.backend('bench'), async () => undefined)));
      } finally {
        await s3.stop();
      }
    }

    // Memory and time per indexed object.
    const ids = Array.from({ length: OBJECTS }, () => randomBytes(32).toString('hex'));
    const absent = Array.from({ length: Math.min(OBJECTS, 200_000) }, () => randomBytes(32).toString('hex'));
    const present = ids.filter((_, i) => i % Math.max(1, Math.floor(OBJECTS / absent.length)) === 0).slice(0, absent.length);
    const packs = Array.from({ length: Math.ceil(OBJECTS / 1000) }, () => randomBytes(32).toString('hex'));
    const entries = (p: number) => ids.slice(p * 1000, (p + 1) * 1000).map((id, i) => ({ kind: 'chunk' as const, id, offset: 77 + i * 1000, length: 1000 }));
    // CPU time (user + system) of this process: steadier than wall time on a loaded machine.
    const cpu = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const per = (ms: number, n: number) => `${((ms * 1e6) / n).toFixed(0)} ns`;
    const lookups = (get: (id: string) => unknown, has: (id: string) => boolean): string => {
      let t = cpu();
      for (const id of present) if (!get(id)) throw new Error('lost an id');
      const g = cpu() - t;
      t = cpu();
      for (const id of absent) if (has(id)) throw new Error('found an absent id');
      const h = cpu() - t;
      return `get ${per(g, present.length)}, has (absent) ${per(h, absent.length)} (CPU time per call)`;
    };
    const rough = gc ? '' : ', without --expose-gc: rough';

    // Each index is measured alone, in its own function: the one before is garbage by then.
    (() => {
      const before = memory();
      const t0 = cpu();
      const old = new PackIndex();
      for (let p = 0; p < packs.length; p++) old.addPack(packs[p]!, entries(p).map((e) => ({ ...e, digest: randomBytes(32) })), new Set());
      const build = cpu() - t0;
      const oldBytes = memory() - before;
      out.push(`PackIndex (Map): ${(oldBytes / OBJECTS).toFixed(0)} B per object${rough}; build ${per(build, OBJECTS)}, ${lookups((id) => old.get('chunk', id), (id) => old.get('chunk', id) !== undefined)}`);
    })();

    (() => {
      const before = memory();
      const t0 = cpu();
      const hash = new IdMap(3);
      const packNo = new Map<string, number>();
      for (let p = 0; p < packs.length; p++) {
        packNo.set(packs[p]!, p);
        for (const e of entries(p)) hash.add(e.id, p, e.offset, e.length);
      }
      const build = cpu() - t0;
      const hashBytes = memory() - before;
      const hashGet = (id: string) => {
        const q = hash.find(id);
        return q < 0 ? undefined : { pack: packs[hash.field(q, 0)], offset: hash.field(q, 1), length: hash.field(q, 2) };
      };
      out.push(`IdMap hash table (issue 8's CompactPackIndex): ${(hashBytes / OBJECTS).toFixed(1)} B per object${rough} (typed arrays: ${(hash.bytes / OBJECTS).toFixed(1)} B); build ${per(build, OBJECTS)}, ${lookups(hashGet, (id) => hash.has(id))}`);
    })();

    const before = memory();
    let t0 = cpu();
    const compact = new CompactPackIndex();
    for (let p = 0; p < packs.length; p++) compact.addPack(packs[p]!, entries(p), new Set());
    const grown = compact.bytes;
    compact.compact();
    const build = cpu() - t0;
    const newBytes = memory() - before;
    out.push(`CompactPackIndex (SortedIdMap): ${(newBytes / OBJECTS).toFixed(1)} B per object${rough} (typed arrays: ${(compact.bytes / OBJECTS).toFixed(1)} B; ${(grown / OBJECTS).toFixed(1)} B before the final merge); build ${per(build, OBJECTS)}, ${lookups((id) => compact.get('chunk', id), (id) => compact.has('chunk', id))}`);
    t0 = cpu();
    let listed = 0;
    for (const _ of compact.ids('chunk')) listed++;
    const list = cpu() - t0;
    t0 = cpu();
    let paged = 0;
    for (let after: string | undefined, page: string[]; (page = compact.page('chunk', after, 1000)).length; after = page[page.length - 1]) paged += page.length;
    const pageMs = cpu() - t0;
    out.push(`CompactPackIndex listings: ids() ${per(list, listed)} per id, page() of 1000 ${per(pageMs, paged)} per id`);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  process.stdout.write(out.join('\n') + '\n');
}

await main();
