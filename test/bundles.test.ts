/**
 * Small-file bundles (format version 4, format-spec 6.7) through the library:
 * which files are inline, bundled or chunked; how many bundles and how big;
 * restore byte for byte; a changed small file adds one bundle and leaves
 * every sibling's reference as it was; fsck names the files of a damaged
 * bundle and of a reference past its bundle's end, and restore skips only
 * those; the tree decoder refuses malformed bundle references; dump writes
 * bundled files' bytes, and so does the file-system view (mount); identical small files in one backup share
 * one range, and the bundler's table of recent contents is bounded; a version 2 repository upgraded to 4 restores and
 * bundles what changes afterwards.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { Bundler, RECENT_CONTENTS } from '../lib/backup/bundler.js';
import { backup } from '../lib/backup/engine.js';
import { dump, DumpInput } from '../lib/dump/engine.js';
import { startRepoPool, EnginePool } from '../lib/engine-workers/start.js';
import { decodeCbor, encodeCbor } from '../lib/format/cbor.js';
import { DEFAULT_BUNDLE_TARGET, DEFAULT_INLINE_MAX, newConfig } from '../lib/format/config.js';
import { compareNames, decodeTreeNode, encodeTreeNode, isBundleRef, TreeEntry } from '../lib/format/tree.js';
import { fsck } from '../lib/fsck/engine.js';
import type { FsckTasks } from '../lib/fsck/worker-tasks.js';
import { FsView } from '../lib/fsview/view.js';
import { Repository } from '../lib/repo/repository.js';
import { snapshotPathComponents, walkTree } from '../lib/repo/treewalk.js';
import { upgradeRepository } from '../lib/repo/upgrade.js';
import { snapshotRoot } from '../lib/repo/views.js';
import { restore } from '../lib/restore/engine.js';
import { LocalStore } from '../lib/store/local.js';
import type { TaskRunner } from '../lib/workers/protocol.js';
import { TEST_KDF } from './helpers/kdf.js';
import { prngBytes } from './helpers/prng.js';
import { flipByte } from './helpers/repo.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/tree.js';

const PASS = 'bundles test passphrase';
const INLINE_ALWAYS = 64;

async function initRepo(dir: string, config = newConfig()): Promise<Repository> {
  return Repository.init(await LocalStore.create(dir), { type: 'local', dir }, PASS, config, { kdf: TEST_KDF });
}

async function openRepo(dir: string): Promise<Repository> {
  return Repository.open(await LocalStore.open(dir), PASS);
}

/** Every file entry of a snapshot, by absolute path. */
async function fileEntries(repo: Repository, tree: string): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  for await (const { path: p, entry } of walkTree((id, key) => repo.getTree(id, { key }), tree, Buffer.alloc(0))) {
    if (entry.type === 'file') out.set(p.toString(), entry);
  }
  return out;
}

async function chunkIds(repo: Repository): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const id of repo.listIds('chunk')) ids.add(id);
  return ids;
}

/** A tiny ustar reader: member name -> content (regular files only). */
function untar(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  let paxPath: string | undefined;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, b: number) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 136).trim() || '0', 8);
    const type = String.fromCharCode(h[156]!);
    const prefix = str(345, 500);
    const name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    const body = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      paxPath = m?.[1];
      continue;
    }
    if (type === '0' || type === '\0') out.set(paxPath ?? name, Buffer.from(body));
    paxPath = undefined;
  }
  return out;
}

function emptySummary() {
  return { files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0, filesRead: 0, newChunks: 0, newTrees: 0, newBytes: 0, storedBytes: 0, errors: 0 };
}

describe('small-file bundles (format version 4)', () => {
  let tmp: TempDir;
  let src: string;
  let repoDir: string;
  let repo: Repository;
  let pool: EnginePool;
  let first: { id: string; tree: string };
  let firstEntries: Map<string, TreeEntry>;
  /** Paths of the small files written into bundles (65..inline_max bytes). */
  const bundled: string[] = [];
  let bundledBytes = 0;

  before(async () => {
    tmp = await tempDir('obnam-bundles-');
    src = path.join(tmp.path, 'src');
    const dirs = ['a', 'b', path.join('b', 'deep'), 'c', 'd', 'e'];
    for (const d of dirs) fs.mkdirSync(path.join(src, d), { recursive: true });
    const sizes: [string, number][] = [
      ['edge-0', 0],
      ['edge-1', 1],
      ['edge-64', 64],
      ['edge-65', 65],
      ['edge-1000', 1000],
      ['edge-16384', 16384],
      ['edge-16385', 16385],
    ];
    for (const [n, s] of sizes) fs.writeFileSync(path.join(src, 'a', n), prngBytes(n, s));
    const rnd = prngBytes('sizes', 4 * 300);
    for (let i = 0; i < 300; i++) {
      const size = 100 + (rnd.readUInt32BE(4 * i) % 7901);
      fs.writeFileSync(path.join(src, dirs[i % dirs.length]!, `f${String(i).padStart(3, '0')}.bin`), prngBytes(`file ${i}`, size));
    }
    repoDir = path.join(tmp.path, 'repo');
    repo = await initRepo(repoDir);
    pool = startRepoPool(repo, { size: 2 });
    const r = await backup(repo, { paths: [src], pool, parent: null });
    first = { id: r.id, tree: r.snapshot.tree };
    firstEntries = await fileEntries(repo, first.tree);
    for (const [p, e] of firstEntries) {
      if (e.size > INLINE_ALWAYS && e.size <= DEFAULT_INLINE_MAX) {
        bundled.push(p);
        bundledBytes += e.size;
      }
    }
  });
  after(async () => {
    await pool?.close();
    await repo?.close();
    await tmp?.remove();
  });

  it('a new repository is format version 4 with the default bundle target', () => {
    assert.equal(repo.config.version, 4);
    assert.equal(repo.config.bundleTarget, DEFAULT_BUNDLE_TARGET);
    assert.equal(DEFAULT_BUNDLE_TARGET, 65536);
  });

  it('files <= 64 B are inline, 65..16384 B bundled, larger ones chunked; bundles are few and bounded', async () => {
    assert.equal(firstEntries.size, 307);
    const at = (n: string) => firstEntries.get(path.join(src, 'a', n))!;
    for (const n of ['edge-0', 'edge-1', 'edge-64']) {
      const e = at(n);
      assert.ok(e.data, `${n} has data`);
      assert.equal(e.data.length, e.size);
      assert.equal(e.chunks, undefined, `${n} has no chunks`);
    }
    for (const n of ['edge-65', 'edge-1000', 'edge-16384']) {
      const e = at(n);
      assert.equal(e.data, undefined, `${n} has no data`);
      assert.ok(e.chunks && isBundleRef(e.chunks), `${n} has a bundle reference`);
      assert.equal(e.chunks[0]!.length, e.size);
    }
    const big = at('edge-16385');
    assert.equal(big.data, undefined);
    assert.ok(big.chunks && big.chunks.length >= 1 && !isBundleRef(big.chunks), 'a file above inline_max is chunked');
    assert.ok(big.chunks.every((c) => c.offset === undefined));

    const bundleIds = new Set<string>();
    for (const [p, e] of firstEntries) {
      if (e.size <= INLINE_ALWAYS) assert.ok(e.data && !e.chunks, `${p}: inline`);
      else if (e.size <= DEFAULT_INLINE_MAX) {
        assert.ok(!e.data && e.chunks && isBundleRef(e.chunks), `${p}: bundled`);
        bundleIds.add(e.chunks[0]!.id);
      } else assert.ok(!e.data && e.chunks && !isBundleRef(e.chunks), `${p}: chunked`);
    }
    assert.equal(bundled.length, 303);
    const least = Math.ceil(bundledBytes / DEFAULT_BUNDLE_TARGET);
    assert.ok(bundleIds.size >= least && bundleIds.size <= least + 1, `${bundleIds.size} bundles for ${bundledBytes} bytes`);

    // Each bundle: at most max(bundle_target, inline_max) bytes, its ranges disjoint and inside it, each holding the file's bytes.
    const byBundle = new Map<string, [string, TreeEntry][]>();
    for (const p of bundled) {
      const e = firstEntries.get(p)!;
      const list = byBundle.get(e.chunks![0]!.id) ?? [];
      list.push([p, e]);
      byBundle.set(e.chunks![0]!.id, list);
    }
    for (const [id, list] of byBundle) {
      const plain = await repo.getObject('chunk', id);
      assert.ok(plain.length <= Math.max(DEFAULT_BUNDLE_TARGET, DEFAULT_INLINE_MAX), `bundle ${id}: ${plain.length} bytes`);
      const ranges = list.map(([, e]) => [e.chunks![0]!.offset!, e.chunks![0]!.length] as const).sort((x, y) => x[0] - y[0]);
      let end = 0;
      for (const [o, l] of ranges) {
        assert.ok(o >= end, 'ranges do not overlap');
        end = o + l;
      }
      assert.ok(end <= plain.length);
      for (const [p, e] of list) {
        const r = e.chunks![0]!;
        assert.ok(Buffer.from(plain.subarray(r.offset!, r.offset! + r.length)).equals(fs.readFileSync(p)), `${p}: bundle range holds its bytes`);
      }
    }
  });

  it('restores the first snapshot byte for byte with metadata', async () => {
    const target = path.join(tmp.path, 'restore-1');
    fs.mkdirSync(target);
    const res = await restore(repo, await repo.getSnapshot(first.id), { target, pool });
    assert.equal(res.errors, 0);
    const n = assertSameTree(src, path.join(target, src));
    assert.ok(n >= 307);
  });

  it('dump writes the bundled files of a directory as a tar with their bytes, and a single bundled file', async () => {
    const snap = await repo.getSnapshot(first.id);
    const input = (p: string): DumpInput => ({
      load: (id, key) => repo.getTree(id, { key }),
      getChunk: (id, key) => repo.getObject('chunk', id, { key }),
      root: snapshotRoot(snap),
      path: snapshotPathComponents(p),
    });
    const parts: Buffer[] = [];
    assert.equal(await dump(input(path.join(src, 'b')), async (d) => void parts.push(Buffer.from(d))), 'tar');
    const members = untar(Buffer.concat(parts));
    const expected = [...firstEntries.keys()].filter((p) => p.startsWith(path.join(src, 'b') + '/'));
    assert.ok(expected.length > 50);
    let checked = 0;
    for (const p of expected) {
      const rel = path.relative(path.join(src, 'b'), p);
      const key = [...members.keys()].find((k) => k === rel || k.endsWith('/' + rel) || k === './' + rel);
      assert.ok(key !== undefined, `${rel} is in the tar (members: ${[...members.keys()].slice(0, 5).join(', ')} ...)`);
      assert.ok(members.get(key)!.equals(fs.readFileSync(p)), `${rel}: tar bytes`);
      checked++;
    }
    assert.equal(checked, expected.length);
    const one = bundled.find((p) => p.startsWith(path.join(src, 'c') + '/'))!;
    const fileParts: Buffer[] = [];
    assert.equal(await dump(input(one), async (d) => void fileParts.push(Buffer.from(d))), 'file');
    assert.ok(Buffer.concat(fileParts).equals(fs.readFileSync(one)));
  });

  it('the file-system view (mount) reads bundled files whole and in ranges', async () => {
    const view = await FsView.open(repo, { readAhead: 2, refreshMs: Infinity });
    const dirC = path.join(src, 'c');
    const files = bundled.filter((p) => p.startsWith(dirC + '/'));
    assert.ok(files.length > 20);
    for (const p of [...files, path.join(src, 'a', 'edge-65'), path.join(src, 'a', 'edge-16384')]) {
      const want = fs.readFileSync(p);
      const at = Buffer.from(`/ids/${first.id}${p}`);
      assert.equal((await view.getattr(at)).size, want.length);
      const h = await view.open(at);
      try {
        assert.ok((await view.read(h, 0, want.length + 100)).equals(want), `${p}: whole`);
        const mid = Math.floor(want.length / 3);
        assert.ok((await view.read(h, mid, 50)).equals(want.subarray(mid, mid + 50)), `${p}: a range`);
        assert.equal((await view.read(h, want.length, 10)).length, 0, `${p}: end of file`);
      } finally {
        view.release(h);
      }
    }
    await view.idle();
  });

  it('a changed small file adds exactly one bundle; every other entry keeps its reference; the new snapshot restores', async () => {
    const changed = bundled.find((p) => p.startsWith(path.join(src, 'd') + '/'))!;
    const before = await chunkIds(repo);
    fs.appendFileSync(changed, 'one more line\n');
    const r = await backup(repo, { paths: [src], pool, parent: first.id });
    const second = await fileEntries(repo, r.snapshot.tree);
    assert.equal(second.size, firstEntries.size);
    for (const [p, e] of firstEntries) {
      const now = second.get(p)!;
      if (p === changed) continue;
      assert.deepEqual(now.chunks, e.chunks, `${p}: same reference`);
      assert.deepEqual(now.data, e.data, `${p}: same data`);
    }
    const c = second.get(changed)!;
    assert.ok(c.chunks && isBundleRef(c.chunks), 'the changed file is bundled again');
    assert.equal(c.size, firstEntries.get(changed)!.size + 'one more line\n'.length);
    const after = await chunkIds(repo);
    const added = [...after].filter((id) => !before.has(id));
    assert.deepEqual(added, [c.chunks[0]!.id], 'exactly one new chunk: the bundle of the changed file');
    assert.deepEqual(c.chunks[0], { id: added[0], offset: 0, length: c.size });
    const target = path.join(tmp.path, 'restore-2');
    fs.mkdirSync(target);
    const res = await restore(repo, await repo.getSnapshot(r.id), { target, pool });
    assert.equal(res.errors, 0);
    assertSameTree(src, path.join(target, src));
  });
});

describe('identical small files in one backup', () => {
  let tmp: TempDir;

  before(async () => {
    tmp = await tempDir('obnam-bundles-dedup-');
  });
  after(() => tmp.remove());

  it('are stored once: every copy names the same range, bundles hold each distinct content once, restore and fsck agree', async () => {
    const src = path.join(tmp.path, 'src');
    const contents = { a: prngBytes('dup a', 3000), b: prngBytes('dup b', 200), tiny: prngBytes('dup tiny', 40), big: prngBytes('dup big', 20000) };
    const copies: Record<keyof typeof contents, string[]> = { a: [], b: [], tiny: [], big: [] };
    for (const d of ['p', 'q', path.join('q', 'r')]) fs.mkdirSync(path.join(src, d), { recursive: true });
    let uniqueBytes = 0;
    for (let i = 0; i < 60; i++) {
      const dir = path.join(src, ['p', 'q', path.join('q', 'r')][i % 3]!);
      const kind = (['a', 'b', 'tiny', 'big', 'a', 'unique'] as const)[i % 6];
      const file = path.join(dir, `f${i}`);
      if (kind === 'unique') {
        const bytes = prngBytes(`unique ${i}`, 500 + i * 37);
        uniqueBytes += bytes.length;
        fs.writeFileSync(file, bytes);
      } else {
        fs.writeFileSync(file, contents[kind]);
        copies[kind].push(file);
      }
    }
    const dir = path.join(tmp.path, 'repo');
    const repo = await initRepo(dir);
    const pool = startRepoPool(repo, { size: 2 });
    try {
      const r = await backup(repo, { paths: [src], pool, parent: null });
      const entries = await fileEntries(repo, r.snapshot.tree);
      assert.equal(entries.size, 60);
      for (const kind of ['a', 'b'] as const) {
        const refs = copies[kind].map((p) => entries.get(p)!.chunks);
        assert.ok(refs[0] && isBundleRef(refs[0]), `${kind} is bundled`);
        for (const [i, ref] of refs.entries()) assert.deepEqual(ref, refs[0], `${copies[kind][i]}: the same range as the first copy of ${kind}`);
      }
      assert.notDeepEqual(entries.get(copies.a[0]!)!.chunks, entries.get(copies.b[0]!)!.chunks);
      for (const p of copies.tiny) assert.deepEqual(entries.get(p)!.data, contents.tiny, `${p}: inline`);

      // The bundles hold a, b and each unique file exactly once.
      const bundleIds = new Set([...entries.values()].filter((e) => e.chunks && isBundleRef(e.chunks)).map((e) => e.chunks![0]!.id));
      let bundleBytes = 0;
      for (const id of bundleIds) bundleBytes += (await repo.getObject('chunk', id)).length;
      assert.equal(bundleBytes, contents.a.length + contents.b.length + uniqueBytes);

      const target = path.join(tmp.path, 'restore');
      fs.mkdirSync(target);
      const res = await restore(repo, await repo.getSnapshot(r.id), { target, pool });
      assert.equal(res.errors, 0);
      assert.equal(assertSameTree(src, path.join(target, src)), 60 + 3);
      assert.deepEqual((await fsck(repo, { pool })).problems, []);
    } finally {
      await pool.close();
      await repo.close();
    }
  });

  it('the bundler remembers the last RECENT_CONTENTS distinct contents, least recently used forgotten first', async () => {
    const stored: Buffer[] = [];
    const bundler = new Bundler(1 << 30, async (plaintext) => {
      stored.push(Buffer.from(plaintext));
      return { id: createHash('sha256').update(plaintext).digest('hex'), isNew: true, storedBytes: plaintext.length };
    });
    const content = (i: number) => Buffer.from(`content number ${i} `.padEnd(80, '.'));
    const add = (i: number) => {
      const c = content(i);
      return bundler.add(c, createHash('sha256').update(c).digest());
    };
    const first = add(0);
    for (let i = 1; i < RECENT_CONTENTS; i++) void add(i);
    const again = add(0); // 0 is the oldest of RECENT_CONTENTS remembered: found, and now the most recent
    assert.equal(again, first);
    void add(RECENT_CONTENTS); // forgets 1, the least recently used, not 0
    assert.equal(add(0), first);
    const one = add(1); // forgotten: appended again
    bundler.finish();
    const [r0, r1, rAgain, rOne] = await Promise.all([first, add(1), again, one]);
    assert.deepEqual(rAgain, r0);
    assert.deepEqual(r1, rOne, 'the re-appended copy is remembered from then on (no bundle after finish)');
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.length, (RECENT_CONTENTS + 2) * 80, 'RECENT_CONTENTS + 1 distinct contents and the forgotten one again');
    const b = stored[0]!;
    assert.ok(b.subarray(rOne.offset!, rOne.offset! + 80).equals(content(1)));
    assert.notEqual(rOne.offset, (await first).offset);
  });
});

describe('fsck and restore of damaged bundles', () => {
  let tmp: TempDir;

  before(async () => {
    tmp = await tempDir('obnam-bundles-fsck-');
  });
  after(() => tmp.remove());

  it('a corrupt bundle is reported with the paths of its files and of no other bundle', async () => {
    const src = path.join(tmp.path, 'src');
    for (const d of ['x', 'y']) fs.mkdirSync(path.join(src, d), { recursive: true });
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, i % 2 ? 'x' : 'y', `s${i}`), prngBytes(`fsck ${i}`, 5000));
    fs.writeFileSync(path.join(src, 'x', 'tiny'), 'tiny and inline\n');
    const dir = path.join(tmp.path, 'repo-corrupt');
    let repo = await initRepo(dir);
    let pool = startRepoPool(repo, { size: 1 });
    let victimId: string;
    let inVictim: string[];
    let others: string[];
    try {
      const r = await backup(repo, { paths: [src], pool, parent: null });
      const entries = await fileEntries(repo, r.snapshot.tree);
      const ids = new Set([...entries.values()].filter((e) => e.chunks && isBundleRef(e.chunks)).map((e) => e.chunks![0]!.id));
      assert.ok(ids.size >= 3, `${ids.size} bundles`);
      victimId = [...ids][1]!;
      inVictim = [...entries].filter(([, e]) => e.chunks?.[0]?.id === victimId).map(([p]) => p).sort();
      others = [...entries].filter(([, e]) => e.chunks?.[0]?.id !== victimId).map(([p]) => p);
      assert.ok(inVictim.length >= 2);
      const healthy = await fsck(repo, { pool });
      assert.deepEqual(healthy.problems, []);
      await flipByte(repo, 'chunk', victimId);
    } finally {
      await pool.close();
      await repo.close();
    }
    repo = await openRepo(dir);
    pool = startRepoPool(repo, { size: 1 });
    try {
      const report = await fsck(repo, { pool });
      assert.equal(report.problems.length, 1, JSON.stringify(report.problems));
      const p = report.problems[0]!;
      assert.deepEqual([p.kind, p.id, p.status], ['chunk', victimId, 'corrupt']);
      assert.deepEqual([...p.paths].sort(), inVictim);
      for (const o of others) assert.ok(!p.paths.includes(o), `${o} is not named`);
    } finally {
      await pool.close();
      await repo.close();
    }
  });

  it('a reference past its bundle end: fsck names that file; restore fails it and restores the others', async () => {
    const dir = path.join(tmp.path, 'repo-range');
    const repo = await initRepo(dir);
    const pool = startRepoPool(repo, { size: 1 });
    try {
      const content = prngBytes('short bundle', 200);
      const { id } = await repo.putObject('chunk', content);
      const T = { sec: 1_700_000_000, nsec: 0 };
      const f = (name: string, extra: Partial<TreeEntry>): TreeEntry => ({ name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: T, ctime: T, size: 0, ...extra });
      const entries = [
        f('bad', { size: 195, chunks: [{ id, offset: 10, length: 195 }] }), // 10 + 195 > 200
        f('good', { size: 150, chunks: [{ id, offset: 20, length: 150 }] }),
        f('inline', { size: 6, data: Buffer.from('hello\n') }),
      ].sort((a, b) => compareNames(a.name, b.name));
      const leaf = await repo.putTree({ kind: 'leaf', entries });
      const root = await repo.putTree({
        kind: 'leaf',
        entries: [{ name: Buffer.from('d'), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: T, ctime: T, size: 0, subtree: leaf.id }],
      });
      const snap = await repo.putSnapshot({
        tree: root.id,
        time: T,
        end: T,
        hostname: 'h',
        username: 'u',
        paths: ['/d'],
        tags: [],
        program: 'test',
        summary: emptySummary(),
      });
      await repo.flush();

      const report = await fsck(repo, { pool });
      assert.equal(report.problems.length, 1, JSON.stringify(report.problems));
      const p = report.problems[0]!;
      assert.deepEqual([p.kind, p.id, p.status], ['chunk', id, 'corrupt']);
      // The bundle counts as damaged: fsck names the files that reference it (the bad range and its neighbour), not the inline file.
      assert.deepEqual([...p.paths].sort(), ['/d/bad', '/d/good']);
      assert.match(p.message, /200 bytes/);

      const target = path.join(tmp.path, 'restore-range');
      fs.mkdirSync(target);
      const warnings: string[] = [];
      const res = await restore(repo, await repo.getSnapshot(snap.id), { target, pool, onWarning: (w, m) => warnings.push(`${w}: ${m}`) });
      assert.equal(res.errors, 1, JSON.stringify(warnings));
      assert.ok(warnings.some((w) => w.includes('bad')), JSON.stringify(warnings));
      assert.equal(fs.existsSync(path.join(target, 'd', 'bad')), false, 'no half-restored file');
      assert.ok(fs.readFileSync(path.join(target, 'd', 'good')).equals(content.subarray(20, 170)));
      assert.equal(fs.readFileSync(path.join(target, 'd', 'inline'), 'utf8'), 'hello\n');
    } finally {
      await pool.close();
      await repo.close();
    }
  });
  it('references met while their bundle is still being checked: the furthest bad end is named, in-range neighbours pass', async () => {
    const content = prngBytes('pending bundle', 300);
    const T = { sec: 1_700_000_000, nsec: 0 };
    /** fsck of a one-directory snapshot whose files name [offset, length] ranges of one 300-byte bundle, verified only after the walk met them all. */
    const fsckOfRanges = async (name: string, ranges: [string, number, number][]) => {
      const repo = await initRepo(path.join(tmp.path, name));
      const inner = startRepoPool(repo, { size: 1 });
      let verifications = 0;
      // The bundle's verification is held back, so every reference but the first is met while it is CHECKING.
      const pool: TaskRunner<FsckTasks> = {
        run: async (task, ...rest) => {
          if (task.op === 'verify' && task.kind === 'chunk') {
            verifications++;
            await new Promise((r) => setTimeout(r, 200));
          }
          return inner.run(task, ...rest);
        },
        ready: () => inner.ready(),
      };
      try {
        const { id } = await repo.putObject('chunk', content);
        const entries = ranges.map(([n, offset, length]): TreeEntry => ({
          name: Buffer.from(n), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: T, ctime: T, size: length, chunks: [{ id, offset, length }],
        }));
        const leaf = await repo.putTree({ kind: 'leaf', entries });
        await repo.putSnapshot({ tree: leaf.id, time: T, end: T, hostname: 'h', username: 'u', paths: ['/'], tags: [], program: 'test', summary: emptySummary() });
        await repo.flush();
        const report = await fsck(repo, { pool });
        assert.equal(verifications, 1, 'the bundle is verified once');
        return { id, report };
      } finally {
        await inner.close();
        await repo.close();
      }
    };
    // The first reference (in name order) is in range; the bad ones come after it.
    const bad = await fsckOfRanges('repo-pending-bad', [['a-good', 0, 100], ['b-bad', 250, 60], ['c-good', 100, 200], ['d-worse', 290, 110], ['e-good', 10, 10]]);
    assert.equal(bad.report.problems.length, 1, JSON.stringify(bad.report.problems));
    const p = bad.report.problems[0]!;
    assert.deepEqual([p.kind, p.id, p.status], ['chunk', bad.id, 'corrupt']);
    assert.match(p.message, /300 bytes, but a tree names bytes up to 400 /);
    assert.deepEqual([...p.paths].sort(), ['/a-good', '/b-bad', '/c-good', '/d-worse', '/e-good']);
    // Ranges that end exactly at the bundle's end are in range.
    const fine = await fsckOfRanges('repo-pending-fine', [['a', 0, 300], ['b', 200, 100], ['c', 299, 1]]);
    assert.deepEqual(fine.report.problems, []);
  });
});

describe('decoding bundle references', () => {
  const id = 'ab'.repeat(32);
  const T = { sec: 1, nsec: 0 };
  const base: TreeEntry = { name: Buffer.from('f'), type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: T, ctime: T, size: 100, chunks: [{ id, offset: 7, length: 100 }] };
  const encoded = () => (decodeCbor(encodeTreeNode({ kind: 'leaf', entries: [base] }), 't') as { entries: Record<string, unknown>[] }).entries[0]!;
  const decode = (e: Record<string, unknown>, keyed = false) => decodeTreeNode(decodeCbor(encodeCbor({ entries: [e] } as never), 't'), 't', keyed);
  const isCorrupt = (re?: RegExp) => (e: unknown) => (e as { code?: string }).code === 'CORRUPT' && (!re || re.test(String((e as Error).message)));

  it('round-trips a bundle reference as [id, offset, length]', () => {
    const e = encoded();
    assert.equal(Array.isArray(e.bundle), true);
    assert.equal(e.chunks, undefined);
    assert.equal((e.bundle as unknown[]).length, 3);
    const back = decode(e);
    assert.equal(back.kind, 'leaf');
    assert.deepEqual(back.kind === 'leaf' && back.entries[0]!.chunks, [{ id, offset: 7, length: 100 }]);
  });

  it('rejects data with a bundle, a length other than the size, a wrong arity, and a bundle in a keyed (version 3) tree', () => {
    const e = encoded();
    const b = e.bundle as unknown[];
    assert.throws(() => decode({ ...e, data: Buffer.alloc(100) }), isCorrupt(/one of data, chunks and bundle/), 'data and bundle');
    assert.throws(() => decode({ ...e, chunks: [[b[0], 100]] }), isCorrupt(), 'chunks and bundle');
    assert.throws(() => decode({ ...e, bundle: [b[0], 7, 99] }), isCorrupt(/not the file size/), 'length != size');
    assert.throws(() => decode({ ...e, size: 101 }), isCorrupt(), 'size != length');
    assert.throws(() => decode({ ...e, bundle: [b[0], 100] }), isCorrupt(/\[id, offset, length\]/), 'arity 2');
    assert.throws(() => decode({ ...e, bundle: [b[0], 7, 100, 0] }), isCorrupt(/\[id, offset, length\]/), 'arity 4');
    assert.throws(() => decode(e, true), isCorrupt(/version 3/), 'keyed');
    // The same entry with inline data instead decodes keyed: it is the bundle the keyed decoder refuses.
    const { bundle: _drop, ...rest } = e;
    void _drop;
    assert.doesNotThrow(() => decode({ ...rest, data: Buffer.alloc(100) }, true));
  });
});

describe('upgrade of a version 2 repository to version 4', () => {
  let tmp: TempDir;
  before(async () => {
    tmp = await tempDir('obnam-bundles-upgrade-');
  });
  after(() => tmp.remove());

  it('keeps old snapshots restorable; a changed small file is bundled afterwards while unchanged ones keep their data', async () => {
    const src = path.join(tmp.path, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(src, i % 2 ? 'sub' : '', `s${i}`), prngBytes(`v2 ${i}`, 300 + i * 700));
    fs.writeFileSync(path.join(src, 'large'), prngBytes('v2 large', 100_000));
    const dir = path.join(tmp.path, 'repo');
    let repo = await initRepo(dir, { ...newConfig(), version: 2, bundleTarget: undefined });
    let pool = startRepoPool(repo, { size: 1 });
    let old: { id: string; entries: Map<string, TreeEntry> };
    try {
      assert.equal(repo.config.version, 2);
      const r = await backup(repo, { paths: [src], pool, parent: null });
      old = { id: r.id, entries: await fileEntries(repo, r.snapshot.tree) };
      for (const [p, e] of old.entries) {
        if (e.size <= DEFAULT_INLINE_MAX) assert.ok(e.data && !e.chunks, `${p}: inline in version 2`);
      }
    } finally {
      await pool.close();
      await repo.close();
    }

    const up = await upgradeRepository(await LocalStore.open(dir), PASS);
    assert.deepEqual([up.from, up.to], [2, 4]);

    repo = await openRepo(dir);
    pool = startRepoPool(repo, { size: 1 });
    try {
      assert.equal(repo.config.version, 4);
      assert.equal(repo.config.bundleTarget, 65536);
      const target = path.join(tmp.path, 'restore-old');
      fs.mkdirSync(target);
      const res = await restore(repo, await repo.getSnapshot(old.id), { target, pool });
      assert.equal(res.errors, 0);
      assertSameTree(src, path.join(target, src));

      const changed = path.join(src, 'sub', 's3');
      fs.appendFileSync(changed, 'changed after the upgrade\n');
      const r = await backup(repo, { paths: [src], pool, parent: old.id });
      const now = await fileEntries(repo, r.snapshot.tree);
      const c = now.get(changed)!;
      assert.ok(c.chunks && isBundleRef(c.chunks) && !c.data, 'the changed small file is in a bundle');
      for (const [p, e] of old.entries) {
        if (p === changed) continue;
        assert.deepEqual(now.get(p)!.data, e.data, `${p}: unchanged data`);
        assert.deepEqual(now.get(p)!.chunks, e.chunks, `${p}: unchanged chunks`);
      }
      const target2 = path.join(tmp.path, 'restore-new');
      fs.mkdirSync(target2);
      assert.equal((await restore(repo, await repo.getSnapshot(r.id), { target: target2, pool })).errors, 0);
      assertSameTree(src, path.join(target2, src));
    } finally {
      await pool.close();
      await repo.close();
    }
  });
});
