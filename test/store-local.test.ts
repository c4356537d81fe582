/** The pack-based LocalStore against the store conformance suite, plus its on-disk guarantees. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { LocalStore } from '../lib/store/local.js';
import { storeConformance } from './helpers/store-conformance.js';
import { tempDir } from './helpers/tmp.js';

const newId = () => randomBytes(32).toString('hex');

storeConformance('LocalStore', async () => {
  const dir = await tempDir();
  return { store: await LocalStore.create(dir.path, { packSize: 64 * 1024 }), cleanup: dir.remove };
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
