/**
 * Repacking (format-spec 14.8) of a store with garbage: fills a local store
 * (or a packed store on a local blob backend) with GIB GiB of random chunks
 * (64 KiB to 2 MiB, default 16 MiB packs), deletes PERCENT% of them at random
 * (so every pack holds about that much garbage), then repacks it in a child
 * process and prints the repack's time, its peak RSS and the sizes.
 * Run: npx tsc -p . && node dist/bench/repack.js [GIB=1] [PERCENT=50] [local|packed]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalBlobBackend } from '../lib/blob/local.js';
import { LocalStore } from '../lib/store/local.js';
import { PackedStore } from '../lib/store/packed.js';
import type { ObjectStore, RepackResult } from '../lib/store/store.js';

const mib = (b: number) => (b / 2 ** 20).toFixed(0);

async function openStore(kind: string, dir: string, create: boolean): Promise<ObjectStore & { repack: (o: { maxUnusedPercent: number }) => Promise<RepackResult> }> {
  if (kind === 'packed') return create ? PackedStore.create(await LocalBlobBackend.create(dir)) : PackedStore.open(new LocalBlobBackend(dir));
  return create ? LocalStore.create(dir) : LocalStore.open(dir);
}

function duBytes(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const st = fs.lstatSync(path.join(dir, f));
    if (st.isFile()) n += st.size;
  }
  return n;
}

async function child(kind: string, dir: string): Promise<void> {
  const t0 = performance.now();
  const s = await openStore(kind, dir, false);
  const t1 = performance.now();
  const r = await s.repack({ maxUnusedPercent: 10 });
  const t2 = performance.now();
  await s.close();
  process.stdout.write(JSON.stringify({ openS: (t1 - t0) / 1000, repackS: (t2 - t1) / 1000, maxRssKiB: process.resourceUsage().maxRSS, result: r }) + '\n');
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!, process.argv[4]!);
  const gib = Number(process.argv[2] ?? 1);
  const percent = Number(process.argv[3] ?? 50);
  const kind = process.argv[4] ?? 'local';
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? os.tmpdir(), 'obnam-bench-repack-'));
  try {
    const s = await openStore(kind, dir, true);
    const ids: string[] = [];
    let bytes = 0;
    const t0 = performance.now();
    const buf = randomBytes(2 << 20);
    while (bytes < gib * 2 ** 30) {
      const n = randomInt(64 << 10, 2 << 20);
      const data = Buffer.from(buf.subarray(0, n));
      const id = randomBytes(32).toString('hex');
      data.write(id, 0, 'hex'); // distinct bytes per chunk
      await s.put('chunk', id, data);
      ids.push(id);
      bytes += n;
    }
    await s.flush?.();
    let deleted = 0;
    for (const id of ids) {
      if (randomInt(100) < percent) {
        await s.delete('chunk', id);
        deleted++;
      }
    }
    await s.close();
    const fillS = (performance.now() - t0) / 1000;
    const before = duBytes(dir);
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', kind, dir], { encoding: 'utf8', maxBuffer: 1 << 20 });
    const m = JSON.parse(out) as { openS: number; repackS: number; maxRssKiB: number; result: RepackResult };
    const after = duBytes(dir);
    const r = m.result;
    process.stdout.write(
      `${kind} store, ${ids.length} chunks (${mib(bytes)} MiB), ${deleted} deleted (${percent}%), filled in ${fillS.toFixed(1)} s\n` +
        `repack: ${m.repackS.toFixed(1)} s (open ${m.openS.toFixed(1)} s), peak RSS ${mib(m.maxRssKiB * 1024)} MiB, ` +
        `${r.packsRewritten} of ${r.packsBefore} packs rewritten, ${r.packsRemoved} removed, ${r.objectsCopied} objects copied (${mib(r.bytesBefore - r.unusedBytesBefore)} MiB live)\n` +
        `on disk: ${mib(before)} MiB before, ${mib(after)} MiB after (${mib(r.bytesFreed)} MiB freed; ${mib(r.unusedBytesBefore)} MiB were unused), ` +
        `${(bytes / 2 ** 20 / m.repackS).toFixed(0)} MiB/s of store repacked\n`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
