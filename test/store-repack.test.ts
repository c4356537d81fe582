/**
 * Repacking (format-spec 14.8, lib/store/repack.ts) in both pack stores:
 * LocalStore and PackedStore on a local blob backend. The space of deleted
 * objects and of duplicates comes back, every live object reads back byte
 * for byte under its id, a handle opened before the repack still reads every
 * live object (and a deleted one gives NOT_FOUND once it refreshed, even
 * through a cached handle of a removed pack), a writer and a deleter running
 * meanwhile lose nothing, one repack at a time (the lock), and a pack with a
 * damaged record is left alone.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { LocalBlobBackend } from '../lib/blob/local.js';
import { LocalStore } from '../lib/store/local.js';
import { PackedStore } from '../lib/store/packed.js';
import { packRecords } from '../lib/store/pack-format.js';
import type { ObjectStore, RepackResult } from '../lib/store/store.js';
import { tempDir } from './helpers/tmp.js';

const PACK = 64 * 1024;
const newId = () => randomBytes(32).toString('hex');

interface Flavour {
  name: string;
  /** A new store in `dir`, and a function opening another handle on it. */
  create(dir: string): Promise<ObjectStore & { repack: NonNullable<ObjectStore['repack']> }>;
  open(dir: string): Promise<ObjectStore & { repack: NonNullable<ObjectStore['repack']> }>;
  /** Files that hold packs, for sizes. */
  packFiles(dir: string): string[];
  tombstones(dir: string): string[];
}

const walk = (d: string): string[] =>
  fs.existsSync(d) ? fs.readdirSync(d, { recursive: true, encoding: 'utf8' }).map((f) => path.join(d, f)).filter((f) => fs.statSync(f).isFile()) : [];

const flavours: Flavour[] = [
  {
    name: 'LocalStore',
    create: (dir) => LocalStore.create(dir, { packSize: PACK }),
    open: (dir) => LocalStore.open(dir, { packSize: PACK }),
    packFiles: (dir) => walk(path.join(dir, 'packs')),
    tombstones: (dir) => fs.readdirSync(path.join(dir, 'deleted')),
  },
  {
    name: 'PackedStore (local blobs)',
    create: async (dir) => PackedStore.create(await LocalBlobBackend.create(dir), { packSize: PACK }),
    open: async (dir) => PackedStore.open(new LocalBlobBackend(dir), { packSize: PACK }),
    packFiles: (dir) => walk(path.join(dir, 'packs')),
    tombstones: (dir) => (fs.existsSync(path.join(dir, 'deleted')) ? fs.readdirSync(path.join(dir, 'deleted')) : []),
  },
];

const bytesOf = (files: string[]) => files.reduce((n, f) => n + fs.statSync(f).size, 0);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Puts `n` chunks of `size` random bytes, flushing every `perFlush`; returns id -> digest. */
async function fill(s: ObjectStore, n: number, size: number, perFlush = 1000): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const id = newId();
    const data = randomBytes(size);
    await s.put('chunk', id, data);
    out.set(id, sha(data));
    if ((i + 1) % perFlush === 0) await s.flush?.();
  }
  await s.flush?.();
  return out;
}

async function expectAll(s: ObjectStore, live: Map<string, string>, gone: Iterable<string>, label: string): Promise<void> {
  for (const [id, digest] of live) assert.equal(sha(await s.get('chunk', id)), digest, `${label}: ${id} reads back`);
  for (const id of gone) {
    assert.equal(await s.has('chunk', id), false, `${label}: deleted ${id} stays deleted`);
    await assert.rejects(s.get('chunk', id), { code: 'NOT_FOUND' }, `${label}: deleted ${id}`);
  }
}

for (const f of flavours) {
  describe(`repack: ${f.name}`, () => {
    it('gives back the space of deleted objects; live objects read back byte for byte; tombstones of removed packs go', async () => {
      const tmp = await tempDir();
      try {
        const s = await f.create(tmp.path);
        const all = await fill(s, 120, 5000);
        const ids = [...all.keys()];
        const gone = ids.filter((_, i) => i % 3 !== 0); // two thirds of every pack
        const live = new Map(ids.filter((_, i) => i % 3 === 0).map((id) => [id, all.get(id)!]));
        for (const id of gone) await s.delete('chunk', id);
        const before = bytesOf(f.packFiles(tmp.path));

        const dry = await s.repack({ maxUnusedPercent: 10, dryRun: true });
        assert.equal(bytesOf(f.packFiles(tmp.path)), before, 'a dry run changes nothing');
        assert.ok(dry.packsRemoved > 0 && dry.bytesFreed > 0, JSON.stringify(dry));

        const progress: number[] = [];
        const r = await s.repack({ maxUnusedPercent: 10, onProgress: (d) => progress.push(d) });
        const after = bytesOf(f.packFiles(tmp.path));
        assert.equal(r.bytesBefore, before);
        assert.equal(r.bytesAfter, after, 'bytesAfter is what is on disk');
        assert.equal(r.bytesFreed, before - after);
        assert.equal(r.packsRemoved, dry.packsRemoved, 'the dry run predicted the packs');
        assert.equal(r.objectsCopied, dry.objectsCopied);
        assert.ok(Math.abs(r.bytesFreed - dry.bytesFreed) < 200 * r.packsRemoved, `dry ${dry.bytesFreed} vs ${r.bytesFreed}`);
        // Two thirds of the object bytes were deleted: nearly that much comes back, and the rest is within the limit.
        const deletedBytes = gone.length * 5000;
        assert.ok(r.bytesFreed > deletedBytes * 0.85, `freed ${r.bytesFreed} of ${deletedBytes}`);
        assert.ok(r.unusedBytesBefore >= deletedBytes, `${r.unusedBytesBefore} unused before`);
        assert.ok(progress.length >= 2 && progress[0] === 0 && progress[progress.length - 1] === dry.packsRemoved, `progress ${progress}`);
        await expectAll(s, live, gone, 'same handle');
        // Tombstones that named removed packs are gone with them.
        assert.ok(f.tombstones(tmp.path).length < gone.length / 4, `${f.tombstones(tmp.path).length} tombstones left of ${gone.length}`);
        await s.close();

        const t = await f.open(tmp.path);
        await expectAll(t, live, gone, 'reopened');
        const again = await t.repack({ maxUnusedPercent: 10 });
        assert.equal(again.packsRemoved, 0, 'within the limit: nothing more to do');
        assert.equal(again.bytesFreed, 0);
        // With no limit, every pack with any unused byte goes, and nothing is lost.
        const all0 = await t.repack({ maxUnusedPercent: 0 });
        assert.ok(all0.unusedBytesBefore === 0 || all0.packsRemoved > 0);
        await expectAll(t, live, gone, 'after a full repack');
        assert.equal(f.tombstones(tmp.path).length, 0, 'no tombstone left');
        await t.close();
      } finally {
        await tmp.remove();
      }
    });

    it('duplicates (copies in several packs) are unused space: one copy is kept', async () => {
      const tmp = await tempDir();
      try {
        const a = await f.create(tmp.path);
        const b = await f.open(tmp.path);
        const data = new Map<string, Buffer>();
        for (let i = 0; i < 30; i++) data.set(newId(), randomBytes(4000));
        // Both handles store every object: each copy lands in its own handle's packs.
        for (const [id, d] of data) {
          assert.equal(await a.put('chunk', id, d), true);
          assert.equal(await b.put('chunk', id, d), true);
        }
        await a.flush?.();
        await b.flush?.();
        await b.close();
        const before = bytesOf(f.packFiles(tmp.path));
        const r = await a.repack({ maxUnusedPercent: 10 });
        assert.ok(r.unusedBytesBefore > before * 0.45, `${r.unusedBytesBefore} of ${before} unused`);
        assert.ok(bytesOf(f.packFiles(tmp.path)) < before * 0.6, 'one copy of each is left');
        await a.close();
        const c = await f.open(tmp.path);
        for (const [id, d] of data) assert.ok(Buffer.from(await c.get('chunk', id)).equals(d));
        await c.close();
      } finally {
        await tmp.remove();
      }
    });

    it('a handle opened before the repack reads every live object, and a deleted one gives NOT_FOUND once it refreshed', async () => {
      const tmp = await tempDir();
      try {
        const w = await f.create(tmp.path);
        const all = await fill(w, 90, 5000, 10);
        await w.close();
        const ids = [...all.keys()];
        const reader = await f.open(tmp.path);
        // The reader reads everything first (the local store keeps handles of the packs it read).
        for (const [id, d] of all) assert.equal(sha(await reader.get('chunk', id)), d);
        const r = await f.open(tmp.path);
        const gone = ids.filter((_, i) => i % 2 === 0);
        for (const id of gone) await r.delete('chunk', id);
        const live = new Map(ids.filter((_, i) => i % 2 === 1).map((id) => [id, all.get(id)!]));
        const res = await r.repack({ maxUnusedPercent: 0 });
        assert.ok(res.packsRemoved > 0);
        // Without refreshing, every live object still reads (its pack vanished: the reader looks again).
        for (const [id, d] of live) assert.equal(sha(await reader.get('chunk', id)), d, `live ${id} through the old handle`);
        // Once refreshed, deleted objects are gone, cached pack handles notwithstanding.
        await reader.refresh!();
        await expectAll(reader, live, gone, 'old handle, refreshed');
        await reader.close();
        await r.close();
      } finally {
        await tmp.remove();
      }
    });

    it('a writer and a deleter working meanwhile lose nothing; has() of objects being moved stays true', async () => {
      const tmp = await tempDir();
      try {
        const s = await f.create(tmp.path);
        const all = await fill(s, 150, 4000, 15);
        const ids = [...all.keys()];
        const gone = new Set(ids.filter((_, i) => i % 2 === 0));
        for (const id of gone) await s.delete('chunk', id);
        const live = ids.filter((id) => !gone.has(id));
        const later = new Set(live.filter((_, i) => i % 5 === 0)); // deleted while the repack runs
        // Another handle (another process, as far as the store knows) writes while we repack.
        const other = await f.open(tmp.path);
        let repacking = true;
        const written = new Map<string, string>();
        const writer = (async () => {
          while (repacking) {
            const id = newId();
            const d = randomBytes(3000);
            await other.put('chunk', id, d);
            written.set(id, sha(d));
            if (written.size % 7 === 0) await other.flush?.();
            await new Promise((r) => setImmediate(r));
          }
          await other.flush?.();
        })();
        const watcher = (async () => {
          let checks = 0;
          while (repacking) {
            for (const id of live) if (!later.has(id)) assert.equal(await s.has('chunk', id), true, `has(${id}) while it moves`);
            checks++;
            await new Promise((r) => setImmediate(r));
          }
          return checks;
        })();
        const deleter = (async () => {
          for (const id of later) {
            await s.delete('chunk', id);
            await new Promise((r) => setImmediate(r));
          }
        })();
        let res: RepackResult;
        try {
          res = await s.repack({ maxUnusedPercent: 0 });
        } finally {
          repacking = false;
        }
        await Promise.all([writer, deleter]);
        assert.ok((await watcher) > 0);
        assert.ok(res.packsRemoved > 0);
        assert.ok(written.size > 0);
        await other.close();
        await s.close();
        const t = await f.open(tmp.path);
        const keep = new Map([...live.filter((id) => !later.has(id)).map((id) => [id, all.get(id)!] as const), ...written]);
        await expectAll(t, keep, [...gone, ...later], 'after a repack with a writer and a deleter');
        // A full repack now leaves nothing deleted visible either.
        await t.repack({ maxUnusedPercent: 0 });
        await expectAll(t, keep, [...gone, ...later], 'after a second repack');
        await t.close();
      } finally {
        await tmp.remove();
      }
    });

    it('one repack at a time: a second one is refused (CONFLICT); a lock left by a dead repack is taken over', async () => {
      const tmp = await tempDir();
      try {
        const s = await f.create(tmp.path);
        const all = await fill(s, 60, 5000, 10);
        for (const id of [...all.keys()].slice(0, 40)) await s.delete('chunk', id);
        const t = await f.open(tmp.path);
        // Two at once: one runs, the other is refused (or, if the first was done before the second looked, both run).
        const both = await Promise.allSettled([s.repack({ maxUnusedPercent: 0 }), t.repack({ maxUnusedPercent: 0 })]);
        assert.ok(both.some((x) => x.status === 'fulfilled'));
        for (const x of both) if (x.status === 'rejected') assert.equal((x.reason as { code?: string }).code, 'CONFLICT');
        const lock = path.join(tmp.path, 'repack-lock');
        const host = (await import('node:os')).hostname();
        const { ownerTag } = await import('../lib/util/owner.js');
        // A lock held by a process that runs (this one, as far as the lock says) is respected.
        fs.writeFileSync(lock, f.name === 'LocalStore' ? ownerTag() : `${host} ${ownerTag()} ${Date.now()} x`);
        await assert.rejects(t.repack({ maxUnusedPercent: 0 }), { code: 'CONFLICT' });
        // A lock whose owner no longer runs (a pid that cannot exist) is taken over.
        const dead = f.name === 'LocalStore' ? '999999999-1' : `${host} 999999999-1 ${Date.now()} x`;
        fs.writeFileSync(lock, dead);
        const r = await t.repack({ maxUnusedPercent: 0 });
        assert.equal(r.packsRemoved, 0);
        assert.equal(fs.existsSync(lock), false, 'the lock is released');
        await t.close();
        await s.close();
      } finally {
        await tmp.remove();
      }
    });
  });
}

describe('repack: damage', () => {
  it('a pack with a damaged live record is left alone, nothing else is lost', async () => {
    const tmp = await tempDir();
    try {
      const s = await LocalStore.create(tmp.path, { packSize: PACK });
      const all = await fill(s, 60, 5000, 10);
      const ids = [...all.keys()];
      for (const id of ids.filter((_, i) => i % 2 === 0)) await s.delete('chunk', id);
      const victim = ids[1]!;
      const loc = s.locate('chunk', victim)!;
      const fd = fs.openSync(loc.file, 'r+');
      fs.writeSync(fd, Buffer.from([0xff ^ fs.readFileSync(loc.file)[loc.offset + 10]!]), 0, 1, loc.offset + 10);
      fs.closeSync(fd);
      const r = await s.repack({ maxUnusedPercent: 0 });
      assert.ok(r.packsRemoved > 0);
      assert.ok(fs.existsSync(loc.file), 'the damaged pack stays');
      await assert.rejects(s.get('chunk', victim), { code: 'CORRUPT' });
      for (const id of ids.filter((_, i) => i % 2 === 1 && ids[i] !== victim)) assert.equal(sha(await s.get('chunk', id)), all.get(id));
      await s.close();
    } finally {
      await tmp.remove();
    }
  });
});

describe('CompactPackIndex after repacking', () => {
  it('forgetPacks promotes other copies, usage counts each object once, compact() drops dead positions and keeps every entry', async () => {
    const { CompactPackIndex } = await import('../lib/store/compact-index.js');
    const ix = new CompactPackIndex();
    const ids = Array.from({ length: 10_000 }, newId);
    ix.addPack('a'.repeat(64), ids.map((id, i) => ({ kind: 'chunk' as const, id, offset: 100 + i * 10, length: 10 })), new Set(), 200_000);
    // A second pack with copies of the first half.
    ix.addPack('b'.repeat(64), ids.slice(0, 5000).map((id, i) => ({ kind: 'chunk' as const, id, offset: 100 + i * 10, length: 10 })), new Set(), 100_000);
    const u = new Map(ix.usage().map((x) => [x.pack, x]));
    assert.equal(u.get('a'.repeat(64))!.liveCount, 10_000);
    assert.equal(u.get('b'.repeat(64))!.liveCount, 0, 'copies are not live');
    ix.forgetPacks(new Set(['a'.repeat(64)]));
    for (const [i, id] of ids.entries()) assert.equal(ix.get('chunk', id)?.pack, i < 5000 ? 'b'.repeat(64) : undefined);
    const before = ix.bytes;
    ix.compact();
    assert.ok(ix.bytes < before, `${ix.bytes} < ${before}`);
    assert.equal(ix.objects, 5000);
    for (const [i, id] of ids.entries()) assert.deepEqual(ix.get('chunk', id), i < 5000 ? { pack: 'b'.repeat(64), offset: 100 + i * 10, length: 10 } : undefined);
    assert.deepEqual(ix.page('chunk', undefined, 10_000).length, 5000);
  });
});

describe('repack: a delete by a handle that has not seen the repack', () => {
  for (const f of flavours) {
    it(`${f.name}: the delete finds its pack gone, refreshes and hides the new copy too`, async () => {
      const tmp = await tempDir();
      try {
        const s = await f.create(tmp.path);
        const all = await fill(s, 40, 5000);
        const ids = [...all.keys()];
        const stale = await f.open(tmp.path);
        for (const id of ids.filter((_, i) => i % 2 === 0)) await s.delete('chunk', id);
        assert.ok((await s.repack({ maxUnusedPercent: 0 })).packsRemoved > 0);
        // The stale handle still places the objects in the removed packs.
        const victims = ids.filter((_, i) => i % 2 === 1).slice(0, 5);
        for (const id of victims) await stale.delete('chunk', id);
        for (const id of victims) assert.equal(await stale.has('chunk', id), false, `${id}: deleted in the deleting handle's view`);
        await stale.close();
        await s.close();
        const fresh = await f.open(tmp.path);
        for (const id of victims) assert.equal(await fresh.has('chunk', id), false, `${id} stays deleted`);
        for (const id of ids.filter((_, i) => i % 2 === 1).slice(5)) assert.equal(sha(await fresh.get('chunk', id)), all.get(id));
        await fresh.close();
      } finally {
        await tmp.remove();
      }
    });
  }
});

describe('repack: an object stored twice (as a killed repack leaves it) is counted once and copied once', () => {
  for (const f of flavours) {
    it(`${f.name}: the dry run announces what the real run then does, and the object has one copy after`, async () => {
      const tmp = await tempDir();
      try {
        const s = await f.create(tmp.path);
        // Opened before X exists, so it stores a copy of its own.
        const other = await f.open(tmp.path);
        const x = newId();
        const xData = randomBytes(100);
        // Pack A: X and eight chunks, seven of them deleted below: the most unused space, rewritten first.
        await s.put('chunk', x, xData);
        const a = await fill(s, 8, 5000);
        // 24 packs with one deleted chunk each: more than one batch of copying (16 target-size packs) after A.
        const middle: Map<string, string>[] = [];
        for (let i = 0; i < 24; i++) middle.push(await fill(s, 12, 5000));
        // Pack B (the other handle): X again, a small chunk deleted below and nine more: the least unused, rewritten last.
        await other.put('chunk', x, xData);
        const small = newId();
        await other.put('chunk', small, randomBytes(100));
        const b = await fill(other, 9, 5000);
        await other.close();
        // Learns B: reads use X's copy in A, the one in B is unused space (until A is removed).
        await s.refresh?.();
        const gone = [...[...a.keys()].slice(0, 7), ...middle.map((m) => [...m.keys()][0]!), small];
        for (const id of gone) await s.delete('chunk', id);
        const dry = await s.repack({ maxUnusedPercent: 0, dryRun: true });
        const real = await s.repack({ maxUnusedPercent: 0 });
        assert.deepEqual(
          { packsRemoved: real.packsRemoved, packsRewritten: real.packsRewritten, objectsCopied: real.objectsCopied },
          { packsRemoved: dry.packsRemoved, packsRewritten: dry.packsRewritten, objectsCopied: dry.objectsCopied },
          `dry ${JSON.stringify(dry)} real ${JSON.stringify(real)}`,
        );
        assert.equal(real.packsRemoved, 26, JSON.stringify(real));
        const copies = f.packFiles(tmp.path).flatMap((file) => [...packRecords(fs.readFileSync(file), file)].filter((r) => r.id === x));
        assert.equal(copies.length, 1, 'X is stored once after the repack');
        const live = new Map([...a, ...middle.flatMap((m) => [...m]), ...b].filter(([id]) => !gone.includes(id)));
        live.set(x, sha(xData));
        await s.close();
        const fresh = await f.open(tmp.path);
        await expectAll(fresh, live, gone, 'after');
        await fresh.close();
      } finally {
        await tmp.remove();
      }
    });
  }
});
