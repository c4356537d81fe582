/**
 * A delete by another handle placed exactly in each window of a repack's
 * retiring (format-spec 14.8, local-store.md 5.1 "Deletes during a repack"),
 * through RepackOptions.onStep: the deleting handle (as obnam-server's serve
 * beside `obnam-server repack`) has only seen the old packs; it deletes, then
 * refreshes while the repacker is still between its steps, and must not see
 * the deleted objects come back through their new copies. For LocalStore,
 * PackedStore on local blobs and PackedStore on S3 (s3rver on 127.0.0.1).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LocalBlobBackend } from '../lib/blob/local.js';
import { LocalStore } from '../lib/store/local.js';
import { PackedStore } from '../lib/store/packed.js';
import type { ObjectStore, RepackStep } from '../lib/store/store.js';
import { startS3, TestS3 } from './helpers/s3.js';
import { tempDir } from './helpers/tmp.js';

const PACK = 64 * 1024;
const newId = () => randomBytes(32).toString('hex');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

type Store = ObjectStore & { repack: NonNullable<ObjectStore['repack']>; refresh: NonNullable<ObjectStore['refresh']> };

interface Host {
  name: string;
  /** A new store and a function opening more handles on it; `cleanup` removes it. */
  make(): Promise<{ store: Store; open(): Promise<Store>; cleanup(): Promise<void> }>;
}

let s3: TestS3 | undefined;

const hosts: Host[] = [
  {
    name: 'LocalStore',
    async make() {
      const tmp = await tempDir('obnam-repack-race-');
      return { store: await LocalStore.create(tmp.path, { packSize: PACK }), open: () => LocalStore.open(tmp.path, { packSize: PACK }), cleanup: () => tmp.remove() };
    },
  },
  {
    name: 'PackedStore (local blobs)',
    async make() {
      const tmp = await tempDir('obnam-repack-race-');
      return {
        store: await PackedStore.create(await LocalBlobBackend.create(tmp.path), { packSize: PACK }),
        open: () => PackedStore.open(new LocalBlobBackend(tmp.path), { packSize: PACK }),
        cleanup: () => tmp.remove(),
      };
    },
  },
  {
    name: 'PackedStore (S3, s3rver)',
    async make() {
      const prefix = `race-${randomBytes(4).toString('hex')}`;
      return {
        store: await PackedStore.create(s3!.backend(prefix), { packSize: PACK }),
        open: () => PackedStore.open(s3!.backend(prefix), { packSize: PACK }),
        cleanup: async () => undefined,
      };
    },
  },
];

async function fill(s: ObjectStore, n: number, size: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const id = newId();
    const data = randomBytes(size);
    await s.put('chunk', id, data);
    out.set(id, sha(data));
  }
  await s.flush?.();
  return out;
}

describe('repack: a delete by another handle in each window of retiring', () => {
  before(async () => {
    s3 = await startS3();
  });
  after(async () => {
    await s3?.stop();
  });

  for (const host of hosts) {
    // deleteAt: where the other handle deletes; refreshAt: where it refreshes (and looks) afterwards.
    const windows: { deleteAt: RepackStep; refreshAt: RepackStep; why: string }[] = [
      { deleteAt: 'published', refreshAt: 'published', why: 'the new pack is there, no tombstone is carried over yet' },
      { deleteAt: 'carried', refreshAt: 'carried', why: 'after the first carry-over, the old pack still there' },
      { deleteAt: 'carried', refreshAt: 'removed', why: 'the old pack removed, the second carry-over not done yet' },
      { deleteAt: 'removed', refreshAt: 'removed', why: 'the delete finds its pack gone' },
    ];
    for (const w of windows) {
      it(`${host.name}: deleted at '${w.deleteAt}', refreshed at '${w.refreshAt}' (${w.why}): stays deleted, nothing else lost`, async () => {
        const { store: s, open, cleanup } = await host.make();
        try {
          const all = await fill(s, 40, 5000);
          const ids = [...all.keys()];
          // The other handle (serve's view): it knows only the packs as they are before the repack.
          const other = await open();
          for (const id of ids.filter((_, i) => i % 2 === 0)) await s.delete('chunk', id);
          const victims = ids.filter((_, i) => i % 2 === 1).slice(0, 6);
          const kept = ids.filter((_, i) => i % 2 === 1).slice(6);
          const seen: string[] = [];
          let deleted = false;
          let looked = false;
          const r = await s.repack({
            maxUnusedPercent: 0,
            onStep: async (step) => {
              if (step === w.deleteAt && !deleted) {
                deleted = true;
                for (const id of victims) await other.delete('chunk', id);
              }
              if (step === w.refreshAt && deleted && !looked) {
                looked = true;
                await other.refresh();
                for (const id of victims) if (await other.has('chunk', id)) seen.push(id);
              }
            },
          });
          assert.ok(deleted && looked, 'the hook ran');
          assert.ok(r.objectsCopied > 0 && r.packsRemoved > 0, JSON.stringify(r));
          assert.deepEqual(seen, [], 'in the window, the deleting handle does not see its deleted objects again');
          // After the repack, in every view.
          await other.refresh();
          const fresh = await open();
          for (const [label, v] of [['deleting handle', other], ['repacking handle', s], ['fresh handle', fresh]] as const) {
            await v.refresh();
            for (const id of victims) {
              assert.equal(await v.has('chunk', id), false, `${label}: ${id} stays deleted`);
              await assert.rejects(v.get('chunk', id), { code: 'NOT_FOUND' }, `${label}: ${id}`);
            }
            for (const id of kept) assert.equal(sha(await v.get('chunk', id)), all.get(id), `${label}: ${id} reads back`);
          }
          await fresh.close();
          await other.close();
          await s.close();
        } finally {
          await cleanup();
        }
      });
    }

    it(`${host.name}: a repack stopped after publishing its new packs removes them again, so a delete made meanwhile holds in every view`, async () => {
      const { store: s, open, cleanup } = await host.make();
      try {
        const all = await fill(s, 40, 5000);
        const ids = [...all.keys()];
        const other = await open();
        for (const id of ids.filter((_, i) => i % 2 === 0)) await s.delete('chunk', id);
        const victims = ids.filter((_, i) => i % 2 === 1).slice(0, 6);
        const kept = ids.filter((_, i) => i % 2 === 1).slice(6);
        await assert.rejects(
          s.repack({
            maxUnusedPercent: 0,
            onStep: async (step) => {
              if (step !== 'published') return;
              for (const id of victims) await other.delete('chunk', id);
              throw new Error('stopped');
            },
          }),
          /stopped/,
        );
        await other.close();
        await s.close();
        const fresh = await open();
        for (const id of victims) assert.equal(await fresh.has('chunk', id), false, `${id} stays deleted`);
        for (const id of kept) assert.equal(sha(await fresh.get('chunk', id)), all.get(id), `${id} reads back`);
        // The next repack completes and changes nothing of that.
        assert.ok((await fresh.repack({ maxUnusedPercent: 0 })).packsRemoved > 0);
        for (const id of victims) assert.equal(await fresh.has('chunk', id), false, `${id} stays deleted after the next repack`);
        for (const id of kept) assert.equal(sha(await fresh.get('chunk', id)), all.get(id), `${id} reads back after the next repack`);
        await fresh.close();
      } finally {
        await cleanup();
      }
    });
  }
});
