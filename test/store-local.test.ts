/** The pack-based LocalStore against the store conformance suite, plus its on-disk guarantees. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { LocalStore } from '../lib/store/local.js';
import { PackWriter } from '../lib/store/pack-writer.js';
import { storeConformance } from './helpers/store-conformance.js';
import { tempDir } from './helpers/tmp.js';

const newId = () => randomBytes(32).toString('hex');

storeConformance('LocalStore', async () => {
  const dir = await tempDir();
  return { store: await LocalStore.create(dir.path, { packSize: 64 * 1024 }), other: () => LocalStore.open(dir.path), cleanup: dir.remove };
});

storeConformance('LocalStore flushing by journal (as obnam-server)', async () => {
  const dir = await tempDir();
  return {
    store: await LocalStore.create(dir.path, { packSize: 64 * 1024, journalFlush: true }),
    other: () => LocalStore.open(dir.path, { journalFlush: true }),
    cleanup: dir.remove,
  };
});

async function withStore(fn: (dir: string, s: LocalStore) => Promise<void>, packSize = 64 * 1024): Promise<void> {
  const dir = await tempDir();
  try {
    const s = await LocalStore.create(dir.path, { packSize });
    try {
      await fn(dir.path, s);
    } finally {
      await s.close();
    }
  } finally {
    await dir.remove();
  }
}

describe('LocalStore packs on disk', () => {
  it('objects survive close and reopen, and sit in few files', () =>
    withStore(async (dir, s) => {
      const objs = Array.from({ length: 200 }, () => [newId(), randomBytes(2000)] as const);
      for (const [id, data] of objs) await s.put('chunk', id, data);
      await s.close();
      const again = await LocalStore.open(dir);
      for (const [id, data] of objs) assert.deepEqual(Buffer.from(await again.get('chunk', id)), data);
      await again.close();
      const packs = (await fs.readdir(`${dir}/packs`, { recursive: true })).filter((n) => /[0-9a-f]{64}$/.test(n));
      assert.ok(packs.length >= 2 && packs.length <= 10, `${packs.length} packs for 400 KB at 64 KiB per pack`);
    }));

  it('a process sees packs written by another one', () =>
    withStore(async (dir, s) => {
      const other = await LocalStore.open(dir);
      const id = newId();
      await other.put('tree', id, Buffer.from('x'));
      await other.close();
      assert.deepEqual(Buffer.from(await s.get('tree', id)), Buffer.from('x'));
    }));

  it('detects a flipped byte through the record digest, without any key', () =>
    withStore(async (dir, s) => {
      const id = newId();
      await s.put('chunk', id, randomBytes(1000));
      await s.flush();
      const loc = s.locate('chunk', id)!;
      const fh = await fs.open(loc.file, 'r+');
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, loc.offset + 500);
      b[0]! ^= 1;
      await fh.write(b, 0, 1, loc.offset + 500);
      await fh.close();
      const fresh = await LocalStore.open(dir);
      await assert.rejects(fresh.get('chunk', id), { code: 'CORRUPT' });
      const problems = [];
      for await (const p of fresh.scrub()) problems.push(p);
      assert.equal(problems.length, 1);
      assert.equal(problems[0]!.id, id);
      await fresh.close();
    }));

  it('a truncated pack hides its objects (NOT_FOUND), others stay readable', () =>
    withStore(async (dir, s) => {
      const a = newId();
      await s.put('chunk', a, randomBytes(100_000));
      await s.flush();
      const b = newId();
      await s.put('chunk', b, randomBytes(100));
      await s.flush();
      const loc = s.locate('chunk', a)!;
      await fs.truncate(loc.file, loc.offset + 10);
      const fresh = await LocalStore.open(dir);
      await assert.rejects(fresh.get('chunk', a), { code: 'NOT_FOUND' });
      assert.equal((await fresh.get('chunk', b)).length, 100);
      await fresh.close();
    }));

  it('deleted packed objects stay deleted after reopening, and can be stored again', () =>
    withStore(async (dir, s) => {
      const id = newId();
      await s.put('tree', id, Buffer.from('one'));
      await s.flush();
      await s.delete('tree', id);
      assert.equal(await s.has('tree', id), false);
      const reopened = await LocalStore.open(dir);
      assert.equal(await reopened.has('tree', id), false);
      assert.equal(await reopened.put('tree', id, Buffer.from('two')), true);
      await reopened.close();
      const third = await LocalStore.open(dir);
      assert.deepEqual(Buffer.from(await third.get('tree', id)), Buffer.from('two'));
      await third.close();
    }));

  it('an interrupted writer leaves no visible partial pack', () =>
    withStore(async (dir) => {
      // A pack file half-written into tmp/ (as a killed process leaves it) is ignored.
      await fs.writeFile(`${dir}/tmp/${newId()}.pack`, randomBytes(5000));
      const s = await LocalStore.open(dir);
      const ids = [];
      for await (const id of s.list('chunk')) ids.push(id);
      assert.deepEqual(ids, []);
      await s.close();
    }));
});

describe('LocalStore journals', () => {
  it('objects flushed through the journal survive the death of their writer', async () => {
    const dir = await tempDir();
    try {
      await (await LocalStore.create(dir.path)).close();
      const ids = Array.from({ length: 20 }, () => newId());
      // A child process stores objects with journal flushes, then dies without closing.
      const script = `
        import { LocalStore } from ${JSON.stringify(new URL('../lib/store/local.js', import.meta.url).href)};
        const s = await LocalStore.open(process.argv[1], { journalFlush: true });
        for (const id of JSON.parse(process.argv[2])) { await s.put('chunk', id, Buffer.from(id)); await s.flush(); }
        process.stdout.write('flushed\\n');
        process.kill(process.pid, 'SIGKILL');`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, dir.path, JSON.stringify(ids)], { encoding: 'utf8' });
      assert.match(r.stdout, /flushed/);
      assert.equal(r.signal, 'SIGKILL');
      const journals = fs.readdir(`${dir.path}/tmp`);
      assert.equal((await journals).filter((n) => n.endsWith('.pack')).length, 1, 'the journal is left behind');
      // Append a torn record, as a crash in the middle of a write would.
      const [journal] = (await fs.readdir(`${dir.path}/tmp`)).filter((n) => n.endsWith('.pack'));
      await fs.appendFile(`${dir.path}/tmp/${journal}`, randomBytes(50));
      const s = await LocalStore.open(dir.path);
      for (const id of ids) assert.equal(Buffer.from(await s.get('chunk', id)).toString(), id);
      assert.deepEqual((await fs.readdir(`${dir.path}/tmp`)).filter((n) => n.endsWith('.pack')), [], 'recovered into a pack');
      await s.close();
    } finally {
      await dir.remove();
    }
  });

  it('objects in a live writer\'s journal are visible to other processes, and stay so when it becomes a pack', async () => {
    const dir = await tempDir();
    try {
      const writer = await LocalStore.create(dir.path, { journalFlush: true });
      const a = newId();
      await writer.put('tree', a, Buffer.from('first'));
      await writer.flush();
      const reader = await LocalStore.open(dir.path);
      assert.deepEqual(Buffer.from(await reader.get('tree', a)), Buffer.from('first'), 'durable means visible');
      assert.equal((await fs.readdir(`${dir.path}/tmp`)).filter((n) => n.endsWith('.pack')).length, 1, 'the journal is not taken over');
      const b = newId();
      await writer.put('tree', b, Buffer.from('second'));
      await writer.flush();
      await reader.refresh();
      assert.deepEqual(Buffer.from(await reader.get('tree', b)), Buffer.from('second'), 'later records are read too');
      await writer.close(); // the journal becomes a pack
      assert.deepEqual(Buffer.from(await reader.get('tree', a)), Buffer.from('first'));
      const ids = [];
      for await (const id of reader.list('tree')) ids.push(id);
      assert.deepEqual(ids.sort(), [a, b].sort());
      await reader.close();
    } finally {
      await dir.remove();
    }
  });
});

describe('LocalStore layout 2: index segments', () => {
  const packFiles = async (dir: string) => (await fs.readdir(`${dir}/packs`, { recursive: true })).filter((n) => /[0-9a-f]{64}$/.test(n)).map((n) => `${dir}/packs/${n}`);

  it('close writes a segment, and opening uses it instead of the footers (damaged footers notwithstanding)', () =>
    withStore(async (dir, s) => {
      const objs = Array.from({ length: 30 }, () => [newId(), randomBytes(3000)] as const);
      for (const [id, data] of objs) await s.put('chunk', id, data);
      await s.close();
      assert.equal((await fs.readdir(`${dir}/index`)).length, 1);
      // Damage every footer's magic: only the segment can tell where the objects are.
      for (const f of await packFiles(dir)) {
        const fh = await fs.open(f, 'r+');
        const { size } = await fh.stat();
        await fh.write(Buffer.from('XXXX'), 0, 4, size - 4);
        await fh.close();
      }
      const again = await LocalStore.open(dir);
      for (const [id, data] of objs) assert.deepEqual(Buffer.from(await again.get('chunk', id)), data);
      await again.close();
    }, 16 * 1024));

  it('packs written after the last segment (a writer that died) are found through their footers', () =>
    withStore(async (dir, s) => {
      const early = newId();
      await s.put('tree', early, Buffer.from('early'));
      await s.close();
      const writer = await LocalStore.open(dir);
      const late = newId();
      await writer.put('tree', late, Buffer.from('late'));
      await writer.flush(); // a pack, but no close: no segment for it
      const reader = await LocalStore.open(dir);
      assert.equal(Buffer.from(await reader.get('tree', early)).toString(), 'early');
      assert.equal(Buffer.from(await reader.get('tree', late)).toString(), 'late');
      await reader.close();
      await writer.close();
    }));

  it('a layout 1 store (fixtures/repo-v1) is upgraded when opened: one segment, the new marker, the same objects', async () => {
    const tmp = await tempDir();
    try {
      const { cpSync, readFileSync } = await import('node:fs');
      const { ROOT } = await import('./helpers/cli.js');
      const dir = `${tmp.path}/repo`;
      cpSync(`${ROOT}/fixtures/repo-v1`, dir, { recursive: true });
      assert.equal(readFileSync(`${dir}/obnam-store`, 'utf8'), 'obnam local store 1\n');
      const before = await LocalStore.open(dir);
      const trees: string[] = [];
      for await (const id of before.list('tree')) trees.push(id);
      await before.close();
      assert.equal(readFileSync(`${dir}/obnam-store`, 'utf8'), 'obnam local store 2\n');
      assert.equal((await fs.readdir(`${dir}/index`)).length, 1);
      const after = await LocalStore.open(dir);
      for (const id of trees) assert.ok((await after.get('tree', id)).length > 0);
      await after.close();
    } finally {
      await tmp.remove();
    }
  });

  it('a store made before format version 3 (no members/, shares/, grants/ directories) lists none of them and takes the first put', async () => {
    const tmp = await tempDir();
    try {
      const { cpSync, existsSync } = await import('node:fs');
      const { ROOT } = await import('./helpers/cli.js');
      const dir = `${tmp.path}/repo`;
      cpSync(`${ROOT}/fixtures/repo-v1`, dir, { recursive: true });
      const s = await LocalStore.open(dir);
      try {
        for (const kind of ['member', 'share', 'grant'] as const) {
          assert.ok(!existsSync(`${dir}/${kind}s`));
          for await (const id of s.list(kind)) assert.fail(`listed ${kind} ${id}`);
          assert.equal(await s.has(kind, '1'.repeat(64)), false);
          assert.equal(await s.put(kind, '1'.repeat(64), Buffer.from(kind)), true);
          assert.deepEqual(Buffer.from(await s.get(kind, '1'.repeat(64))).toString(), kind);
          assert.ok(existsSync(`${dir}/${kind}s/${'1'.repeat(64)}`));
        }
      } finally {
        await s.close();
      }
    } finally {
      await tmp.remove();
    }
  });

  it('a marker of another layout is refused', () =>
    withStore(async (dir, s) => {
      await s.close();
      await fs.writeFile(`${dir}/obnam-store`, 'obnam local store 3\n');
      await assert.rejects(LocalStore.open(dir), { code: 'UNSUPPORTED_VERSION' });
    }));
});

describe('LocalStore journals beside pack rotation', () => {
  // A flush syncs the journal it began with; when puts fill that pack meanwhile, the pack is finished
  // (and its file closed) while the flush's sync is still looping (obnam-server answered 500 under load).
  it('a journal sync that comes after its pack was finished succeeds (the finish made it durable)', async () => {
    const tmp = await tempDir();
    try {
      const w = new PackWriter(tmp.path);
      w.add('chunk', newId(), randomBytes(1000), randomBytes(32));
      await w.finish();
      await w.sync();
      assert.equal(w.durableCount, 1);
    } finally {
      await tmp.remove();
    }
  });
});
