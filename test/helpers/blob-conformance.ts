/**
 * The blob backend conformance suite: every BlobBackend (LocalBlobBackend,
 * S3BlobBackend) runs these tests. The factory returns a fresh, empty
 * backend and a way to open a second, independent instance over the same
 * storage (as another process would).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { BlobBackend } from '../../lib/blob/backend.js';
import { ObnamError } from '../../lib/errors.js';

export interface BlobFixture {
  backend: BlobBackend;
  /** A second instance over the same storage. */
  other(): Promise<BlobBackend>;
  cleanup(): Promise<void>;
}

async function names(b: BlobBackend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const x of b.list(prefix)) out.push(x.name);
  return out.sort();
}

const rejectsWithCode = (p: Promise<unknown>, code: string) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ObnamError, `expected an ObnamError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });

export interface BlobConformanceOptions {
  /**
   * The storage behind the backend may leave a blob torn when two writers
   * replace one name at once (s3rver writes its files in place; real S3,
   * MinIO and a local directory never do). Concurrent puts of one name are
   * then checked for their answers and the listing, not for whole bytes.
   */
  tornConcurrentWrites?: string;
}

export function blobConformance(name: string, make: () => Promise<BlobFixture>, opts: BlobConformanceOptions = {}): void {
  describe(`blob backend conformance: ${name}`, () => {
    const withBackend = (fn: (f: BlobFixture) => Promise<void>) => async () => {
      const f = await make();
      try {
        await fn(f);
      } finally {
        await f.backend.close();
        await f.cleanup();
      }
    };

    it(
      'put then get, whole and in parts; stat gives the size',
      withBackend(async ({ backend: b }) => {
        const data = randomBytes(100_000);
        assert.equal(await b.put('packs/ab/one', data), true);
        assert.ok((await b.get('packs/ab/one')).equals(data));
        assert.deepEqual(await b.stat('packs/ab/one'), { size: data.length });
        assert.equal(await b.put('two', [data.subarray(0, 10), data.subarray(10, 30)]), true);
        assert.ok((await b.get('two')).equals(data.subarray(0, 30)));
        assert.equal(await b.put('empty', new Uint8Array(0)), true);
        assert.equal((await b.get('empty')).length, 0);
      }),
    );

    it(
      'ranged reads return exactly the bytes asked for; past the end is CORRUPT',
      withBackend(async ({ backend: b }) => {
        const data = randomBytes(5000);
        await b.put('r', data);
        assert.ok((await b.get('r', { offset: 0, length: 1 })).equals(data.subarray(0, 1)));
        assert.ok((await b.get('r', { offset: 1234, length: 777 })).equals(data.subarray(1234, 2011)));
        assert.ok((await b.get('r', { offset: 4990 })).equals(data.subarray(4990)));
        assert.ok((await b.get('r', { offset: 4000, length: 1000 })).equals(data.subarray(4000)));
        assert.equal((await b.get('r', { offset: 100, length: 0 })).length, 0);
        await rejectsWithCode(b.get('r', { offset: 4990, length: 11 }), 'CORRUPT');
      }),
    );

    it(
      'missing blobs: get is NOT_FOUND (ranged too), stat is undefined, delete is false',
      withBackend(async ({ backend: b }) => {
        await rejectsWithCode(b.get('nope'), 'NOT_FOUND');
        await rejectsWithCode(b.get('dir/nope', { offset: 0, length: 4 }), 'NOT_FOUND');
        assert.equal(await b.stat('nope'), undefined);
        assert.equal(await b.delete('nope'), false);
        await b.put('gone', Buffer.from('x'));
        assert.equal(await b.delete('gone'), true);
        await rejectsWithCode(b.get('gone'), 'NOT_FOUND');
        assert.deepEqual(await names(b, ''), []);
      }),
    );

    it(
      'put of an existing name returns false and keeps the first bytes',
      withBackend(async ({ backend: b, other }) => {
        const first = randomBytes(50);
        assert.equal(await b.put('x/y', first), true);
        assert.equal(await b.put('x/y', randomBytes(50)), false);
        assert.equal(await (await other()).put('x/y', randomBytes(50)), false);
        assert.ok((await b.get('x/y')).equals(first));
      }),
    );

    it(
      'concurrent puts of one name: all resolve, one value wins whole (exactly one creates where atomicCreate)',
      withBackend(async ({ backend: b, other }) => {
        const second = await other();
        const values = Array.from({ length: 8 }, () => randomBytes(200_000));
        const created = await Promise.all(values.map((v, i) => (i % 2 ? second : b).put('same', v)));
        const n = created.filter(Boolean).length;
        assert.ok(n >= 1, 'at least one put created the blob');
        if (b.atomicCreate) assert.equal(n, 1, 'exactly one put created the blob');
        const got = await b.get('same');
        if (opts.tornConcurrentWrites) {
          assert.equal(got.length, values[0]!.length, `the blob has a value's length (${opts.tornConcurrentWrites})`);
        } else {
          assert.ok(
            values.some((v) => v.equals(got)),
            'the blob is one of the values, whole',
          );
        }
        assert.deepEqual(await names(b, ''), ['same']);
      }),
    );

    it(
      'list by prefix gives exactly the names under it, with sizes',
      withBackend(async ({ backend: b }) => {
        await Promise.all([
          b.put('packs/00/a', randomBytes(3)),
          b.put('packs/01/b', randomBytes(4)),
          b.put('packs/01/c', randomBytes(5)),
          b.put('packsx', randomBytes(1)),
          b.put('index/s1', randomBytes(2)),
        ]);
        assert.deepEqual(await names(b, 'packs/'), ['packs/00/a', 'packs/01/b', 'packs/01/c']);
        assert.deepEqual(await names(b, 'packs/01/'), ['packs/01/b', 'packs/01/c']);
        assert.deepEqual(await names(b, 'pack'), ['packs/00/a', 'packs/01/b', 'packs/01/c', 'packsx']);
        assert.deepEqual(await names(b, 'nothing/'), []);
        const sizes = new Map<string, number>();
        for await (const x of b.list('packs/01/')) sizes.set(x.name, x.size);
        assert.deepEqual([...sizes], [['packs/01/b', 4], ['packs/01/c', 5]].sort());
      }),
    );

    it(
      'a listing includes every blob acknowledged before it began, in this instance and another',
      withBackend(async ({ backend: b, other }) => {
        const second = await other();
        const acked: string[] = [];
        let stop = false;
        // Writers through both instances run while listings are taken.
        const writer = async (w: BlobBackend, tag: string) => {
          for (let i = 0; !stop && i < 400; i++) {
            const n = `objs/${tag}${i.toString().padStart(4, '0')}`;
            await w.put(n, randomBytes(10));
            acked.push(n);
          }
        };
        const writers = [writer(b, 'a'), writer(second, 'b')];
        try {
          for (let round = 0; round < 6; round++) {
            const before = [...acked];
            for (const lister of [b, second]) {
              const seen = new Set(await names(lister, 'objs/'));
              for (const n of before) assert.ok(seen.has(n), `${n} was acknowledged before the listing began but is missing`);
            }
            await new Promise((r) => setTimeout(r, 5));
          }
        } finally {
          stop = true;
          await Promise.all(writers);
        }
        assert.deepEqual(await names(second, 'objs/'), [...acked].sort());
      }),
    );

    it(
      'listings page through more names than one page holds',
      withBackend(async ({ backend: b }) => {
        const all = Array.from({ length: 130 }, (_, i) => `many/${i.toString().padStart(3, '0')}`);
        for (let i = 0; i < all.length; i += 20) await Promise.all(all.slice(i, i + 20).map((n) => b.put(n, Buffer.from(n))));
        assert.deepEqual(await names(b, 'many/'), all);
      }),
    );
  });
}
