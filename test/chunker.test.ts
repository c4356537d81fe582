/**
 * Content-defined chunking: sizes stay within bounds, streaming gives the
 * same chunks as one pass, inserting bytes at the start of a file leaves most
 * chunks shared, and the secret key changes every boundary.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Chunker, chunkViews, DEFAULT_CHUNKER, deriveGearTable } from '../lib/chunking/fastcdc.js';
import { prngBytes } from './helpers/prng.js';

const key = prngBytes('chunker key', 32);
const chunker = new Chunker(deriveGearTable(key), DEFAULT_CHUNKER);

function cutAll(c: Chunker, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let start = 0; start < data.length; ) {
    const n = c.cut(data, start, data.length, true);
    out.push(data.subarray(start, start + n));
    start += n;
  }
  return out;
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('content-defined chunking', () => {
  const data = prngBytes('chunker data', 48 << 20);
  const chunks = cutAll(chunker, data);

  it('keeps chunk sizes within min and max, averaging near the target', () => {
    for (const c of chunks.slice(0, -1)) {
      assert.ok(c.length >= DEFAULT_CHUNKER.min && c.length <= DEFAULT_CHUNKER.max, `chunk of ${c.length}`);
    }
    const avg = data.length / chunks.length;
    assert.ok(avg > 0.5 * DEFAULT_CHUNKER.avg && avg < 2 * DEFAULT_CHUNKER.avg, `average ${avg}`);
    assert.deepEqual(Buffer.concat(chunks), data);
  });

  it('gives the same chunks when reads return odd-sized pieces, whatever the size hint', async () => {
    for (const hint of [0, 1000, data.length]) {
      let pos = 0;
      let step = 1;
      const read = async (buf: Uint8Array, offset: number, length: number) => {
        const n = Math.min(length, step, data.length - pos);
        buf.set(data.subarray(pos, pos + n), offset);
        pos += n;
        step = ((step * 7 + 12345) % 3_000_000) + 1;
        return n;
      };
      const streamed: string[] = [];
      for await (const c of chunkViews(chunker, read, (size) => new Uint8Array(size), hint)) streamed.push(digest(Buffer.from(c)));
      assert.deepEqual(streamed, chunks.map(digest), `size hint ${hint}`);
    }
  });

  it('inserting bytes at the start of a large file leaves most chunks shared', () => {
    const shifted = Buffer.concat([Buffer.from('a few inserted bytes at the very start'), data]);
    const before = new Set(chunks.map(digest));
    const after = cutAll(chunker, shifted).map(digest);
    const shared = after.filter((d) => before.has(d)).length;
    assert.ok(shared >= after.length - 2, `${shared} of ${after.length} chunks shared`);
  });

  it('a different secret key gives different boundaries (chunk sizes do not fingerprint files)', () => {
    const other = cutAll(new Chunker(deriveGearTable(prngBytes('other key', 32)), DEFAULT_CHUNKER), data);
    const sizes = new Set(chunks.map((c) => c.length));
    const same = other.slice(0, -1).filter((c) => sizes.has(c.length)).length;
    assert.ok(same <= 2, `${same} chunk sizes in common`);
  });

  it('rejects unusable parameters', () => {
    assert.throws(() => new Chunker(deriveGearTable(key), { min: 100, avg: 1000, max: 5000 }), /invalid chunker parameters/);
    assert.throws(() => new Chunker(deriveGearTable(key), { min: 4096, avg: 1024, max: 8192 }), /invalid chunker parameters/);
  });
});
