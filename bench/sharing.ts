/**
 * node dist/bench/sharing.js [MiB]: what format version 3 costs against
 * version 2 on the same data, at library level on a local store: a first
 * backup (chunking, content digest, id and key, sealing), a second
 * (unchanged) backup, a restore, and listing snapshots (one stanza each).
 * Each version gets a fresh repository; the data is random (incompressible)
 * plus 2000 small files in 20 directories.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backup } from '../lib/backup/engine.js';
import { generateIdentity } from '../lib/crypto/identity.js';
import { startRepoPool } from '../lib/engine-workers/start.js';
import { Repository } from '../lib/repo/repository.js';
import { restore } from '../lib/restore/engine.js';
import { LocalStore } from '../lib/store/local.js';

const mib = Number(process.argv[2] ?? 64);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-bench-sharing-'));
const src = path.join(tmp, 'src');
fs.mkdirSync(src);
for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(src, `big-${i}`), randomBytes((mib << 20) / 4));
for (let d = 0; d < 20; d++) {
  fs.mkdirSync(path.join(src, `dir-${d}`));
  for (let f = 0; f < 100; f++) fs.writeFileSync(path.join(src, `dir-${d}`, `f-${f}`), `small file ${d} ${f}\n`.repeat(f));
}

const seconds = async (f: () => Promise<unknown>) => {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
};

async function run(version: 2 | 3): Promise<Record<string, number>> {
  const dir = path.join(tmp, `repo-v${version}`);
  const store = await LocalStore.create(dir);
  const repo =
    version === 3
      ? await Repository.initShared(store, generateIdentity(), { name: 'bench' })
      : await Repository.init(store, { type: 'local', dir }, 'bench', undefined, { kdf: { logN: 10, r: 8, p: 1 } });
  const pool = startRepoPool(repo);
  try {
    let id = '';
    const first = await seconds(async () => (id = (await backup(repo, { paths: [src], pool, parent: null })).id));
    const second = await seconds(() => backup(repo, { paths: [src], pool }));
    const out = path.join(tmp, `out-v${version}`);
    const rest = await seconds(async () => restore(repo, await repo.getSnapshot(id), { target: out, pool }));
    const list = await seconds(() => repo.listSnapshots());
    fs.rmSync(out, { recursive: true, force: true });
    return { 'first backup, s': first, 'unchanged backup, s': second, 'restore, s': rest, 'list 2 snapshots, s': list };
  } finally {
    await pool.close();
    await repo.close();
  }
}

try {
  const v2 = await run(2);
  const v3 = await run(3);
  console.log(`${mib} MiB + 2000 small files, ${os.availableParallelism()} CPUs`);
  console.log(`${''.padEnd(24)} ${'version 2'.padStart(10)} ${'version 3'.padStart(10)}`);
  for (const k of Object.keys(v2)) console.log(`${k.padEnd(24)} ${v2[k]!.toFixed(2).padStart(10)} ${v3[k]!.toFixed(2).padStart(10)}`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
