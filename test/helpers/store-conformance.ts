/**
 * The store conformance suite: every ObjectStore implementation (LocalStore,
 * HttpStore, ...) runs these same tests. Call it from a *.test.ts file with a
 * factory that returns a fresh, empty store.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ObnamError } from '../../lib/errors.js';
import { KINDS } from '../../lib/format/version.js';
import type { ObjectStore } from '../../lib/store/store.js';

const newId = () => randomBytes(32).toString('hex');

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of it) out.push(x);
  return out.sort();
}

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ObnamError, `expected an ObnamError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

export interface StoreFixture {
  store: ObjectStore;
  /** A second, independent store over the same storage (as another process would open it). */
  other?: () => Promise<ObjectStore>;
  cleanup?: () => Promise<void>;
}

export function storeConformance(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`store conformance: ${name}`, () => {
    const withStore = (fn: (s: ObjectStore, other: () => Promise<ObjectStore>) => Promise<void>) => async () => {
      const { store, cleanup, other } = await makeStore();
      const others: ObjectStore[] = [];
      try {
        await fn(store, async () => {
          const o = other ? await other() : store;
          if (o !== store) others.push(o);
          return o;
        });
      } finally {
        for (const o of others) await o.close();
        await store.close();
        await cleanup?.();
      }
    };

    it(
      'a listing includes every object acknowledged before it began, in this store and another over the same storage',
      withStore(async (s, other) => {
        const second = await other();
        const acked: Record<string, string[]> = { chunk: [], snapshot: [] };
        for (let round = 0; round < 4; round++) {
          const writer = round % 2 ? second : s;
          for (const kind of ['chunk', 'snapshot'] as const) {
            const ids = Array.from({ length: 5 + round }, newId);
            await Promise.all(ids.map((id) => writer.put(kind, id, randomBytes(30))));
            // The writer lists what it put at once, before any flush (put has resolved: acknowledged).
            const mine = new Set(await collect(writer.list(kind)));
            for (const id of [...acked[kind]!, ...ids]) assert.ok(mine.has(id), `${kind} ${id} was put before the writer's own listing (round ${round}) but is missing`);
            await writer.flush?.();
            acked[kind]!.push(...ids);
            // Listed by both, after earlier listings (a cached listing must not hide later objects).
            for (const lister of [s, second]) {
              const seen = new Set(await collect(lister.list(kind)));
              for (const id of acked[kind]!) assert.ok(seen.has(id), `${kind} ${id} was acknowledged before the listing (round ${round}) but is missing`);
            }
          }
        }
      }),
    );

    it(
      'put then get returns the same bytes, for every kind',
      withStore(async (s) => {
        for (const kind of KINDS) {
          const id = newId();
          const data = randomBytes(1000 + Math.floor(Math.random() * 1000));
          assert.equal(await s.put(kind, id, data), true);
          assert.deepEqual(Buffer.from(await s.get(kind, id)), data);
          assert.equal(await s.has(kind, id), true);
        }
      }),
    );

    it(
      'empty and large objects round-trip',
      withStore(async (s) => {
        const empty = newId();
        await s.put('chunk', empty, new Uint8Array(0));
        assert.equal((await s.get('chunk', empty)).length, 0);
        const big = newId();
        const data = randomBytes(9 * 1024 * 1024);
        await s.put('chunk', big, data);
        assert.ok(Buffer.from(await s.get('chunk', big)).equals(data));
      }),
    );

    it(
      'a second put of an existing id keeps the first bytes and reports false',
      withStore(async (s) => {
        const id = newId();
        const first = randomBytes(100);
        assert.equal(await s.put('tree', id, first), true);
        assert.equal(await s.put('tree', id, randomBytes(100)), false);
        assert.deepEqual(Buffer.from(await s.get('tree', id)), first);
      }),
    );

    it(
      'concurrent puts of the same object all succeed and leave one intact copy',
      withStore(async (s) => {
        const id = newId();
        const data = randomBytes(50_000);
        const results = await Promise.all(Array.from({ length: 8 }, () => s.put('chunk', id, data)));
        assert.ok(results.filter(Boolean).length >= 1);
        assert.deepEqual(Buffer.from(await s.get('chunk', id)), data);
        assert.deepEqual(await collect(s.list('chunk')), [id]);
      }),
    );

    it(
      'missing objects: get and delete fail with NOT_FOUND, has is false',
      withStore(async (s) => {
        const id = newId();
        assert.equal(await s.has('chunk', id), false);
        await rejectsWithCode(s.get('chunk', id), 'NOT_FOUND');
        await rejectsWithCode(s.delete('chunk', id), 'NOT_FOUND');
      }),
    );

    it(
      'kinds are separate namespaces',
      withStore(async (s) => {
        const id = newId();
        await s.put('chunk', id, randomBytes(10));
        assert.equal(await s.has('tree', id), false);
        await rejectsWithCode(s.get('tree', id), 'NOT_FOUND');
      }),
    );

    it(
      'list returns exactly the stored ids of a kind',
      withStore(async (s) => {
        const ids = Array.from({ length: 300 }, newId);
        await Promise.all(ids.map((id) => s.put('chunk', id, randomBytes(20))));
        const snap = newId();
        await s.put('snapshot', snap, randomBytes(20));
        assert.deepEqual(await collect(s.list('chunk')), [...ids].sort());
        assert.deepEqual(await collect(s.list('snapshot')), [snap]);
        assert.deepEqual(await collect(s.list('key')), []);
      }),
    );

    it(
      'hasMany answers in order',
      withStore(async (s) => {
        const present = Array.from({ length: 50 }, newId);
        await Promise.all(present.map((id) => s.put('chunk', id, randomBytes(5))));
        const absent = Array.from({ length: 50 }, newId);
        const query = present.flatMap((p, i) => [p, absent[i]!]);
        const answer = await s.hasMany('chunk', query);
        assert.deepEqual(answer, query.map((_, i) => i % 2 === 0));
        assert.deepEqual(await s.hasMany('chunk', []), []);
      }),
    );

    it(
      'delete removes an object',
      withStore(async (s) => {
        const id = newId();
        await s.put('snapshot', id, randomBytes(10));
        await s.delete('snapshot', id);
        assert.equal(await s.has('snapshot', id), false);
        assert.deepEqual(await collect(s.list('snapshot')), []);
      }),
    );

    it(
      'malformed ids are never found and never escape the store',
      withStore(async (s) => {
        for (const bad of ['../../etc/passwd', 'ab', 'G'.repeat(64), '0'.repeat(63) + '/', '']) {
          assert.equal(await s.has('chunk', bad), false);
          await assert.rejects(s.get('chunk', bad));
          await assert.rejects(s.put('chunk', bad, randomBytes(4)));
        }
      }),
    );
  });
}
