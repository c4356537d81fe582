/**
 * Diff benchmark: two snapshots of a large synthetic tree (written as
 * backups write trees, into a real local repository) that differ in a few
 * files; `obnam diff`'s engine against a full walk of one snapshot (what
 * `obnam ls` does), in wall time and tree objects read.
 *
 *   npx tsc -p . && node dist/bench/diff.js
 *
 * Settings (environment): BENCH_DIFF_FANOUT (directories per level and files
 * per directory, default 100: 100 x 100 x 100 = 1,000,000 files),
 * BENCH_DIFF_CHANGES (files changed, default 10), BENCH_DIR (work directory).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diffSnapshots } from '../lib/diff/engine.js';
import type { Kind } from '../lib/format/version.js';
import type { TreeEntry } from '../lib/format/tree.js';
import { writeDirectory } from '../lib/format/treesplit.js';
import { Repository } from '../lib/repo/repository.js';
import { walkTree } from '../lib/repo/treewalk.js';
import { LocalStore } from '../lib/store/local.js';
import type { ObjectStore, StoreOptions } from '../lib/store/store.js';

const FANOUT = Number(process.env.BENCH_DIFF_FANOUT ?? 100);
const CHANGES = Number(process.env.BENCH_DIFF_CHANGES ?? 10);
/** The passphrase's cost is not what is measured: a cheap key slot, through the library's hook. */
const CHEAP_KDF = { logN: 10, r: 8, p: 1 };

const T0 = { sec: 1_700_000_000, nsec: 0 };

/** Counts tree reads. */
class CountingStore implements ObjectStore {
  treeReads = 0;
  constructor(private readonly inner: ObjectStore) {}
  get location() {
    return this.inner.location;
  }
  put = (k: Kind, id: string, d: Uint8Array, o?: StoreOptions) => this.inner.put(k, id, d, o);
  flush = () => this.inner.flush?.() ?? Promise.resolve();
  get = (k: Kind, id: string, o?: StoreOptions) => {
    if (k === 'tree') this.treeReads++;
    return this.inner.get(k, id, o);
  };
  has = (k: Kind, id: string, o?: StoreOptions) => this.inner.has(k, id, o);
  hasMany = (k: Kind, ids: readonly string[], o?: StoreOptions) => this.inner.hasMany(k, ids, o);
  list = (k: Kind, o?: StoreOptions) => this.inner.list(k, o);
  delete = (k: Kind, id: string, o?: StoreOptions) => this.inner.delete(k, id, o);
  close = () => this.inner.close();
}

const entry = (name: string, data: string): TreeEntry => ({
  name: Buffer.from(name),
  type: 'file',
  mode: 0o644,
  uid: 1000,
  gid: 1000,
  mtime: T0,
  ctime: T0,
  size: data.length,
  data: Buffer.from(data),
});
const dirEntry = (name: string, subtree: string): TreeEntry => ({ ...entry(name, ''), type: 'dir', mode: 0o755, data: undefined, size: 0, subtree });
const pad = (i: number) => String(i).padStart(3, '0');

async function main(): Promise<void> {
  const work = process.env.BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-bench-diff-'));
  const dir = path.join(work, 'repo');
  const store = new CountingStore(await LocalStore.create(dir));
  const repo = await Repository.init(store, { type: 'local', dir }, 'bench', undefined, { kdf: CHEAP_KDF });
  const put = async (entries: TreeEntry[]) => writeDirectory(entries, repo.keys.chunker, async (n) => (await repo.putTree(n)).id);
  try {
    const changed = new Set<string>();
    for (let k = 0; changed.size < CHANGES; k++) changed.add(`${(k * 37) % FANOUT}/${(k * 53) % FANOUT}/${(k * 71) % FANOUT}`);
    const leaf = (i: number, j: number, v2: boolean) =>
      put(Array.from({ length: FANOUT }, (_, f) => entry(`f${pad(f)}`, v2 && changed.has(`${i}/${j}/${f}`) ? 'changed' : `content ${f}`)));
    let started = Date.now();
    const leaves: string[][] = [];
    const mids: string[] = [];
    for (let i = 0; i < FANOUT; i++) {
      leaves.push([]);
      for (let j = 0; j < FANOUT; j++) leaves[i]!.push(await leaf(i, j, false));
      mids.push(await put(leaves[i]!.map((id, j) => dirEntry(`d${pad(j)}`, id))));
    }
    const rootA = await put(mids.map((id, i) => dirEntry(`d${pad(i)}`, id)));
    // The second snapshot: only the changed directories and those above them are new.
    const touched = new Set([...changed].map((c) => c.split('/').slice(0, 2).join('/')));
    const mids2 = [...mids];
    for (const i of new Set([...touched].map((t) => Number(t.split('/')[0])))) {
      const row = [...leaves[i]!];
      for (let j = 0; j < FANOUT; j++) if (touched.has(`${i}/${j}`)) row[j] = await leaf(i, j, true);
      mids2[i] = await put(row.map((id, j) => dirEntry(`d${pad(j)}`, id)));
    }
    const rootB = await put(mids2.map((id, i) => dirEntry(`d${pad(i)}`, id)));
    await store.flush();
    const files = FANOUT ** 3;
    console.log(`built ${files.toLocaleString('en')} files in ${(FANOUT ** 2 + FANOUT + 1).toLocaleString('en')} directories twice in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const load = (id: string) => repo.getTree(id);
    store.treeReads = 0;
    started = Date.now();
    let n = 0;
    for await (const _ of diffSnapshots({ load, rootBefore: rootA, rootAfter: rootB })) n++;
    const diffMs = Date.now() - started;
    const diffReads = store.treeReads;
    if (n !== CHANGES) throw new Error(`diff found ${n} changes, expected ${CHANGES}`);

    store.treeReads = 0;
    started = Date.now();
    let walked = 0;
    for await (const _ of walkTree(load, rootB, Buffer.alloc(0))) walked++;
    const walkMs = Date.now() - started;
    console.log('| operation | entries | tree objects read | wall time |');
    console.log('|---|---|---|---|');
    console.log(`| diff, ${CHANGES} files changed | ${n} changes | ${diffReads} | ${diffMs} ms |`);
    console.log(`| full walk of one snapshot (ls) | ${walked.toLocaleString('en')} | ${store.treeReads.toLocaleString('en')} | ${walkMs} ms |`);
  } finally {
    await repo.close();
    if (!process.env.BENCH_DIR) fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
