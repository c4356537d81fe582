/**
 * Index figures (issue 8): the time to open a namespace with 1,000 packs,
 * and the memory the pack index holds per object, before (the pack-footer
 * reading LocalStore with its Map-based index) and after (PackedStore with
 * index segments and the compact IdMap index), on a local directory and on
 * S3 (s3rver on 127.0.0.1, a dev dependency).
 *
 *   npx tsc -p . && node --expose-gc dist/bench/index.js [PACKS] [OBJECTS]
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
import { startS3 } from '../test/helpers/s3.js';

const PACKS = Number(process.argv[2] ?? 1000);
const OBJECTS = Number(process.argv[3] ?? 200_000);
const PER_PACK = 20;

const gc = (globalThis as { gc?: () => void }).gc;
function memory(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t) / 1e6, r];
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
    `${name}: open with ${stats.packs} packs reading their footers: ${footers.toFixed(0)} ms`,
    `${name}: open with ${stats.packs} packs from ${stats.segments} index segment(s): ${segments.toFixed(0)} ms`,
  ];
}

async function main(): Promise<void> {
  const out: string[] = [];
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'obnam-index-bench-'));
  try {
    // Before: LocalStore (layout 1) reads every pack's footer at open.
    const dir = path.join(work, 'local');
    const ls = await LocalStore.create(dir, { packSize: 1 << 20 });
    await fill(ls);
    await ls.close();
    // Without segments, as layout 1 was (and as a store whose writers all died).
    await fs.rm(path.join(dir, 'index'), { recursive: true, force: true });
    await fs.mkdir(path.join(dir, 'index'));
    const [lt, l2] = await time(() => LocalStore.open(dir));
    await l2.close();
    out.push(`LocalStore (local directory): open with ${PACKS} packs reading their footers: ${lt.toFixed(0)} ms`);
    // That open found > 16 uncovered packs and wrote one segment for all.
    const [ls2, l3] = await time(() => LocalStore.open(dir));
    await l3.close();
    out.push(`LocalStore (local directory): open with ${PACKS} packs from its index segment: ${ls2.toFixed(0)} ms`);

    const bdir = path.join(work, 'blobs');
    await fs.mkdir(bdir);
    out.push(...(await packedOpen('PackedStore on a local directory', () => new LocalBlobBackend(bdir), async () => undefined)));
    const s3 = await startS3();
    try {
      out.push(...(await packedOpen('PackedStore on S3 (s3rver, loopback)', () => s3.backend('bench'), async () => undefined)));
    } finally {
      await s3.stop();
    }

    // Memory per indexed object.
    const ids = Array.from({ length: OBJECTS }, () => randomBytes(32).toString('hex'));
    const packs = Array.from({ length: Math.ceil(OBJECTS / 1000) }, () => randomBytes(32).toString('hex'));
    const before0 = memory();
    const old = new PackIndex();
    for (let p = 0; p < packs.length; p++) {
      old.addPack(
        packs[p]!,
        ids.slice(p * 1000, (p + 1) * 1000).map((id, i) => ({ kind: 'chunk' as const, id, offset: 77 + i * 1000, length: 1000, digest: randomBytes(32) })),
        new Set(),
      );
    }
    const oldBytes = memory() - before0;
    const keep = [old];
    const before1 = memory();
    const compact = new CompactPackIndex();
    for (let p = 0; p < packs.length; p++) {
      compact.addPack(
        packs[p]!,
        ids.slice(p * 1000, (p + 1) * 1000).map((id, i) => ({ kind: 'chunk' as const, id, offset: 77 + i * 1000, length: 1000 })),
        new Set(),
      );
    }
    const newBytes = memory() - before1;
    keep.length = 0;
    out.push(`index memory per object (${OBJECTS} objects${gc ? '' : ', without --expose-gc: rough'}): PackIndex ${(oldBytes / OBJECTS).toFixed(0)} B, CompactPackIndex ${(newBytes / OBJECTS).toFixed(0)} B (typed arrays: ${(compact.bytes / OBJECTS).toFixed(0)} B)`);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  process.stdout.write(out.join('\n') + '\n');
}

await main();
