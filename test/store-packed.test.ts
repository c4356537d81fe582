/**
 * PackedStore (lib/store/packed.ts) on both blob backends against the store
 * conformance suite, plus what only it promises: the persisted index
 * (segments), a crash between pack and segment, tombstones across
 * processes, recovery after a failed flush, and the compact index's size.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { BlobBackend } from '../lib/blob/backend.js';
import { LocalBlobBackend } from '../lib/blob/local.js';
import { PackedStore } from '../lib/store/packed.js';
import { startS3, TestS3 } from './helpers/s3.js';
import { storeConformance } from './helpers/store-conformance.js';
import { tempDir } from './helpers/tmp.js';

const newId = () => randomBytes(32).toString('hex');

async function names(b: BlobBackend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const x of b.list(prefix)) out.push(x.name);
  return out.sort();
}

/** A backend that records which packs are read (get of a name under packs/). */
function counting(inner: BlobBackend): { backend: BlobBackend; packReads: string[] } {
  const packReads: string[] = [];
  const backend: BlobBackend = {
    location: inner.location,
    atomicCreate: inner.atomicCreate,
    put: (n, d, o) => inner.put(n, d, o),
    get: (n, r, o) => {
      if (n.startsWith('packs/')) packReads.push(n);
      return inner.get(n, r, o);
    },
    stat: (n, o) => inner.stat(n, o),
    list: (p, o) => inner.list(p, o),
    delete: (n, o) => inner.delete(n, o),
    close: () => inner.close(),
  };
  return { backend, packReads };
}

/**
 * A backend that holds the answers to the first `n` reads of index segments
 * and gives them out in name order or its reverse, one per turn of the event
 * loop (as an S3 endpoint may answer parallel requests in any order).
 */
function segmentsAnsweredIn(inner: BlobBackend, n: number, order: 'sorted' | 'reversed'): BlobBackend {
  const held: { name: string; release: () => void }[] = [];
  return {
    location: inner.location,
    atomicCreate: inner.atomicCreate,
    put: (name, d, o) => inner.put(name, d, o),
    get: async (name, r, o) => {
      const bytes = await inner.get(name, r, o);
      if (!name.startsWith('index/') || held.length >= n) return bytes;
      await new Promise<void>((release) => {
        held.push({ name, release });
        if (held.length < n) return;
        const turn = [...held].sort((a, b) => (a.name < b.name ? -1 : 1));
        if (order === 'reversed') turn.reverse();
        void (async () => {
          for (const h of turn) {
            h.release();
            await new Promise(setImmediate);
          }
        })();
      });
      return bytes;
    },
    stat: (name, o) => inner.stat(name, o),
    list: (prefix, o) => inner.list(prefix, o),
    delete: (name, o) => inner.delete(name, o),
    close: () => inner.close(),
  };
}

storeConformance('PackedStore on LocalBlobBackend', async () => {
  const dir = await tempDir();
  const store = await PackedStore.create(await LocalBlobBackend.create(dir.path), { packSize: 64 * 1024 });
  return { store, other: async () => PackedStore.open(new LocalBlobBackend(dir.path), { packSize: 64 * 1024 }), cleanup: dir.remove };
});

describe('PackedStore on S3', () => {
  let s3: TestS3;
  before(async () => {
    s3 = await startS3();
  });
  after(async () => {
    await s3.stop();
  });
  storeConformance('PackedStore on S3BlobBackend (s3rver)', async () => {
    const prefix = `ns-${randomBytes(6).toString('hex')}`;
    const store = await PackedStore.create(s3.backend(prefix), { packSize: 256 * 1024 });
    return { store, other: async () => PackedStore.open(s3.backend(prefix), { packSize: 256 * 1024 }) };
  });

  it('opens from index segments without reading pack footers', async () => {
    const prefix = `seg-${randomBytes(6).toString('hex')}`;
    const s = await PackedStore.create(s3.backend(prefix), { packSize: 4096 });
    const ids = Array.from({ length: 60 }, newId);
    for (const id of ids) {
      await s.put('chunk', id, randomBytes(1000));
      await s.flush();
    }
    await s.close();
    const b = s3.backend(prefix);
    const segments = await names(b, 'index/');
    assert.equal(segments.length, 1, 'close wrote one segment');
    const opening = counting(b);
    const again = await PackedStore.open(opening.backend);
    assert.deepEqual(opening.packReads, [], 'opening read no pack (no footer)');
    assert.deepEqual(again.indexStats().packs, 60);
    for (const id of ids) assert.equal((await again.get('chunk', id)).length, 1000);
    await again.close();
    // The control: without the segment, opening reads every pack's footer.
    await b.delete(segments[0]!);
    const footers = counting(s3.backend(prefix));
    const slow = await PackedStore.open(footers.backend, { packSize: 4096 });
    assert.equal(new Set(footers.packReads).size, 60, 'without a segment every pack is read');
    assert.equal(slow.indexStats().packs, 60);
    await slow.close();
  });
});

describe('PackedStore index segments (local blobs)', () => {
  const withDir = (fn: (dir: string) => Promise<void>) => async () => {
    const d = await tempDir();
    try {
      await fn(d.path);
    } finally {
      await d.remove();
    }
  };

  it('a pack without a segment (crash before close) is found through its footer, then covered at the next merge', withDir(async (dir) => {
    const b = await LocalBlobBackend.create(dir);
    const s = await PackedStore.create(b, { packSize: 4096 });
    const ids = Array.from({ length: 40 }, newId);
    for (const id of ids) {
      await s.put('tree', id, randomBytes(500));
      await s.flush();
    }
    // No close: as if the process died after acknowledging everything.
    assert.deepEqual(await names(b, 'index/'), []);
    const reader = await PackedStore.open(new LocalBlobBackend(dir));
    for (const id of ids) assert.equal((await reader.get('tree', id)).length, 500);
    // Opening found 40 uncovered packs (more than the merge threshold): it wrote one segment for all.
    assert.equal((await names(b, 'index/')).length, 1);
    assert.equal(reader.indexStats().segments, 1);
    await reader.close();
  }));

  it('a damaged segment is ignored: its packs are read by their footers', withDir(async (dir) => {
    const b = await LocalBlobBackend.create(dir);
    const s = await PackedStore.create(b);
    const id = newId();
    await s.put('chunk', id, Buffer.from('hello'));
    await s.close();
    const [seg] = await names(b, 'index/');
    const bytes = await b.get(seg!);
    bytes[bytes.length - 1]! ^= 1;
    await b.delete(seg!);
    await b.put(seg!, bytes);
    const again = await PackedStore.open(new LocalBlobBackend(dir));
    assert.equal(Buffer.from(await again.get('chunk', id)).toString(), 'hello');
    const problems = [];
    for await (const p of again.scrub()) problems.push(p);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /damaged index segment/);
    await again.close();
  }));

  it('an object with copies in two packs of two segments: every handle serves the same copy, whichever segment answers first, so a dry run in one handle announces what a repack in another does', withDir(async (dir) => {
    const a = await PackedStore.create(await LocalBlobBackend.create(dir), { packSize: 1 << 20 });
    // Opened before the shared objects exist, so it stores copies of its own (as a killed repack leaves them).
    const b = await PackedStore.open(new LocalBlobBackend(dir), { packSize: 1 << 20 });
    const shared = new Map(Array.from({ length: 4 }, () => [newId(), randomBytes(4000)] as const));
    const dropped = Array.from({ length: 4 }, newId);
    for (const [id, data] of shared) await a.put('chunk', id, data);
    for (const id of dropped) await a.put('chunk', id, randomBytes(4000));
    await a.close();
    for (const [id, data] of shared) await b.put('chunk', id, data);
    await b.close();
    const d = await PackedStore.open(new LocalBlobBackend(dir));
    for (const id of dropped) await d.delete('chunk', id);
    await d.close();
    assert.equal((await names(new LocalBlobBackend(dir), 'index/')).length, 2);
    // If the copies in a's pack are served, it is rewritten and b's pack removed; if b's, a's pack is removed and nothing copied.
    const plan = async (order: 'sorted' | 'reversed', dryRun: boolean) => {
      const s = await PackedStore.open(segmentsAnsweredIn(new LocalBlobBackend(dir), 2, order), { packSize: 1 << 20 });
      try {
        const r = await s.repack({ maxUnusedPercent: 0, dryRun });
        return { packsRemoved: r.packsRemoved, packsRewritten: r.packsRewritten, objectsCopied: r.objectsCopied };
      } finally {
        await s.close();
      }
    };
    const dry = await plan('sorted', true);
    assert.deepEqual(await plan('reversed', true), dry, 'the same plan whichever segment answered first');
    assert.deepEqual(await plan('reversed', false), dry, 'the repack does what the dry run of another handle announced');
    const fresh = await PackedStore.open(new LocalBlobBackend(dir));
    for (const [id, data] of shared) assert.deepEqual(Buffer.from(await fresh.get('chunk', id)), data);
    for (const id of dropped) assert.equal(await fresh.has('chunk', id), false);
    await fresh.close();
  }));

  it('refuses a backend without its marker (NO_REPOSITORY) and one of another layout (UNSUPPORTED_VERSION), a local directory store included', withDir(async (dir) => {
    const b = await LocalBlobBackend.create(dir);
    await assert.rejects(PackedStore.open(b), { code: 'NO_REPOSITORY' });
    await b.put('obnam-store', Buffer.from('obnam blob store 3\n'));
    await assert.rejects(PackedStore.open(b), { code: 'UNSUPPORTED_VERSION' });
    await b.delete('obnam-store');
    await b.put('obnam-store', Buffer.from('obnam local store 2\n'));
    await assert.rejects(PackedStore.open(b), { code: 'UNSUPPORTED_VERSION' });
    await b.delete('obnam-store');
    await b.put('obnam-store', Buffer.from('obnam blob store 2\n'));
    await (await PackedStore.open(b)).close();
  }));

  it('a tombstone written by one process hides the object from another', withDir(async (dir) => {
    const a = await PackedStore.create(await LocalBlobBackend.create(dir));
    const id = newId();
    await a.put('chunk', id, Buffer.from('x'));
    await a.flush();
    const other = await PackedStore.open(new LocalBlobBackend(dir));
    await other.delete('chunk', id);
    await other.close();
    await a.close();
    const fresh = await PackedStore.open(new LocalBlobBackend(dir));
    assert.equal(await fresh.has('chunk', id), false);
    await assert.rejects(fresh.get('chunk', id), { code: 'NOT_FOUND' });
    await fresh.close();
  }));

  it('a removed pack (repacking hook) drops out of every index, its segment notwithstanding', withDir(async (dir) => {
    const s = await PackedStore.create(await LocalBlobBackend.create(dir), { packSize: 4096 });
    const keep = newId();
    const gone = newId();
    await s.put('chunk', gone, randomBytes(100));
    await s.flush();
    await s.put('chunk', keep, randomBytes(100));
    await s.close();
    const r = await PackedStore.open(new LocalBlobBackend(dir));
    const packs = r.packEntries();
    const victim = [...packs].find(([, es]) => es.some((e) => e.id === gone))![0];
    await r.removePack(victim);
    await r.close();
    const fresh = await PackedStore.open(new LocalBlobBackend(dir));
    assert.equal(await fresh.has('chunk', gone), false);
    assert.equal(await fresh.has('chunk', keep), true);
    await fresh.close();
  }));

  it('a failed flush is reported and keeps what it could not store; every flush fails until a later one writes it', withDir(async (dir) => {
    const inner = await LocalBlobBackend.create(dir);
    let failing = true;
    const flaky: BlobBackend = {
      location: inner.location,
      atomicCreate: true,
      put: async (name, data, o) => {
        if (failing && name.startsWith('packs/')) throw Object.assign(new Error('disk full'), { code: 'NO_SPACE' });
        return inner.put(name, data, o);
      },
      get: (n, r, o) => inner.get(n, r, o),
      stat: (n, o) => inner.stat(n, o),
      list: (p, o) => inner.list(p, o),
      delete: (n, o) => inner.delete(n, o),
      close: () => inner.close(),
    };
    const s = await PackedStore.create(flaky);
    const id = newId();
    const other = newId();
    await s.put('chunk', id, Buffer.from('x'));
    await assert.rejects(s.flush(), /disk full/);
    // Kept and readable: a caller that puts it again is told it is there, and no flush
    // acknowledges it before it is written.
    assert.equal(await s.has('chunk', id), true, 'the object is kept');
    assert.equal(Buffer.from(await s.get('chunk', id)).toString(), 'x');
    assert.equal(await s.put('chunk', id, Buffer.from('x')), false);
    await s.put('chunk', other, Buffer.from('y'));
    await assert.rejects(s.flush(), /disk full/, 'a later flush fails too while the pack is not written');
    assert.deepEqual(await names(inner, 'packs/'), []);
    failing = false;
    await s.flush();
    assert.equal((await names(inner, 'packs/')).length, 2, 'the kept pack and the new one');
    await s.close();
    const fresh = await PackedStore.open(new LocalBlobBackend(dir));
    assert.equal(Buffer.from(await fresh.get('chunk', id)).toString(), 'x');
    assert.equal(Buffer.from(await fresh.get('chunk', other)).toString(), 'y');
    await fresh.close();
  }));

  it('getManyWithDigest reads neighbours with one ranged read, in order, within the budget, naming missing and damaged ones', withDir(async (dir) => {
    const inner = await LocalBlobBackend.create(dir);
    let gets = 0;
    const counting: BlobBackend = { ...inner, location: inner.location, atomicCreate: true, put: (n, d, o) => inner.put(n, d, o), stat: (n, o) => inner.stat(n, o), list: (p, o) => inner.list(p, o), delete: (n, o) => inner.delete(n, o), close: () => inner.close(), get: (n, r, o) => (gets++, inner.get(n, r, o)) };
    const s = await PackedStore.create(counting);
    const objs = Array.from({ length: 40 }, () => [newId(), randomBytes(1000)] as const);
    for (const [id, data] of objs) await s.put('chunk', id, data);
    await s.flush();
    // Damage the 10th object's bytes in its pack.
    const [pack] = await names(inner, 'packs/');
    const bytes = await inner.get(pack!);
    const at = bytes.indexOf(objs[9]![1]);
    bytes[at + 10]! ^= 1;
    await inner.delete(pack!);
    await inner.put(pack!, bytes);
    const absent = newId();
    gets = 0;
    const ids = [...objs.map(([id]) => id), absent];
    const r = await s.getManyWithDigest('chunk', ids, 1 << 20);
    assert.equal(gets, 1, 'one ranged read for forty neighbours');
    for (let i = 0; i < 40; i++) {
      if (i === 9) assert.deepEqual(r[i], { damaged: true });
      else assert.ok(Buffer.from((r[i] as { data: Uint8Array }).data).equals(objs[i]![1]), `object ${i}`);
    }
    assert.deepEqual(r[40], { missing: true });
    const small = await s.getManyWithDigest('chunk', ids.slice(0, 5), 2500);
    assert.equal(small.filter((x) => 'data' in x).length, 3);
    assert.deepEqual(small.slice(3), [{ later: true }, { later: true }]);
    await s.close();
  }));
});

describe('PackedStore index: ids that share a long prefix', () => {
  it('stores and reads back ids sharing 16 and 31 bytes, across a reopen (index merged) and a listing; an absent id with a present prefix is absent', async () => {
    const dir = await tempDir();
    try {
      const backend = await LocalBlobBackend.create(dir.path);
      const s = await PackedStore.create(backend, { packSize: 4096 });
      const prefix = randomBytes(16);
      const ids = Array.from({ length: 30 }, () => Buffer.concat([prefix, randomBytes(16)]).toString('hex'));
      // Its last byte differs from ids[0]'s.
      const sibling = ids[0]!.slice(0, 62) + (ids[0]!.slice(62) === 'ff' ? '00' : 'ff');
      ids.push(sibling);
      const data = new Map(ids.map((id) => [id, randomBytes(300)]));
      for (const [id, d] of data) assert.equal(await s.put('chunk', id, d), true);
      await s.close();
      const absent = Buffer.concat([prefix, randomBytes(16)]).toString('hex');
      const r = await PackedStore.open(backend);
      try {
        for (const [id, d] of data) assert.deepEqual(Buffer.from(await r.get('chunk', id)), d, id);
        assert.equal(await r.has('chunk', absent), false);
        assert.deepEqual(await r.hasMany('chunk', [absent, ids[3]!]), [false, true]);
        await assert.rejects(r.get('chunk', absent), { code: 'NOT_FOUND' });
        const listed: string[] = [];
        for await (const id of r.list('chunk')) listed.push(id);
        assert.deepEqual(listed.sort(), [...ids].sort());
        assert.deepEqual(await r.listPage('chunk', undefined, 100), [...ids].sort());
        await r.delete('chunk', sibling);
        assert.equal(await r.has('chunk', sibling), false);
        assert.deepEqual(Buffer.from(await r.get('chunk', ids[0]!)), data.get(ids[0]!));
      } finally {
        await r.close();
      }
    } finally {
      await dir.remove();
    }
  });
});
