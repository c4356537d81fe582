/**
 * Index segments: a packed store's persisted index (format-spec/local-store.md,
 * section 11.3), so that opening a store does not read every pack. A segment
 * is an immutable blob `index/SEG` listing where the objects of some packs are:
 *
 *   header  8 bytes  "OBNX", version 1, three zero bytes
 *           4 bytes  pack count
 *   packs   for each: 32 bytes pack id, 8 bytes the pack's size, 4 bytes
 *           entry count, then per entry
 *           1 byte kind code, 32 bytes id, 8 bytes offset, 4 bytes length
 *           (45 bytes: a pack index entry without the digest, which stays
 *           in the record header in the pack)
 *   digest  32 bytes: SHA-256 of everything before it
 */
import { ObnamError } from '../errors.js';
import { sha256 } from '../crypto/hash.js';
import { Kind, KIND_CODE } from '../format/version.js';
import type { PackedEntry } from './compact-index.js';
import { PACK_HEADER_BYTES, RECORD_HEADER_BYTES } from './pack-format.js';

export const SEGMENT_MAGIC = Buffer.from('OBNX', 'latin1');
const HEADER = 12;
const PACK_HEAD = 44;
const ENTRY = 45;
const KIND_BY_CODE = new Map<number, Kind>(Object.entries(KIND_CODE).map(([k, c]) => [c, k as Kind]));

export interface SegmentPack {
  /** The pack file's size: a pack of another size is not the one described (a truncated pack). */
  size: number;
  entries: PackedEntry[];
}

export function encodeSegment(packs: ReadonlyMap<string, SegmentPack>): Buffer {
  let size = HEADER + 32;
  for (const p of packs.values()) size += PACK_HEAD + p.entries.length * ENTRY;
  const b = Buffer.alloc(size);
  SEGMENT_MAGIC.copy(b);
  b[4] = 1;
  b.writeUInt32BE(packs.size, 8);
  let o = HEADER;
  for (const [pack, { size: packSize, entries }] of packs) {
    b.write(pack, o, 32, 'hex');
    b.writeBigUInt64BE(BigInt(packSize), o + 32);
    b.writeUInt32BE(entries.length, o + 40);
    o += PACK_HEAD;
    for (const e of entries) {
      b[o] = KIND_CODE[e.kind];
      b.write(e.id, o + 1, 32, 'hex');
      b.writeBigUInt64BE(BigInt(e.offset), o + 33);
      b.writeUInt32BE(e.length, o + 41);
      o += ENTRY;
    }
  }
  sha256(b.subarray(0, o)).copy(b, o);
  return b;
}

/** A pack as a decoded segment describes it: its entries are read from the segment's bytes as they are iterated. */
export interface DecodedSegmentPack {
  size: number;
  entries: Iterable<PackedEntry>;
}

/**
 * The packs a segment describes; CORRUPT if it is damaged. The whole segment
 * is checked here, but no object is made per entry until `entries` is
 * iterated (a segment may list millions: they go into the compact index one
 * at a time instead of all first into arrays).
 */
export function decodeSegment(b: Buffer, what: string): Map<string, DecodedSegmentPack> {
  const bad = (why: string) => new ObnamError('CORRUPT', `${what}: damaged index segment (${why})`);
  if (b.length < HEADER + 32 || !SEGMENT_MAGIC.equals(b.subarray(0, 4)) || b[4] !== 1) throw bad('header');
  if (!sha256(b.subarray(0, b.length - 32)).equals(b.subarray(b.length - 32))) throw bad('digest');
  const end = b.length - 32;
  const count = b.readUInt32BE(8);
  const out = new Map<string, DecodedSegmentPack>();
  let o = HEADER;
  for (let i = 0; i < count; i++) {
    if (o + PACK_HEAD > end) throw bad('truncated');
    const pack = b.toString('hex', o, o + 32);
    const packSize = Number(b.readBigUInt64BE(o + 32));
    const n = b.readUInt32BE(o + 40);
    o += PACK_HEAD;
    if (o + n * ENTRY > end) throw bad('truncated');
    const first = o;
    for (let j = 0; j < n; j++, o += ENTRY) {
      const offset = Number(b.readBigUInt64BE(o + 33));
      if (!KIND_BY_CODE.has(b[o]!) || offset < PACK_HEADER_BYTES + RECORD_HEADER_BYTES || offset > 2 ** 32 - 1) throw bad('entry out of range');
    }
    out.set(pack, { size: packSize, entries: lazyEntries(b, first, n) });
  }
  if (o !== end) throw bad('trailing bytes');
  return out;
}

/** `n` checked entries at `first` in a segment, decoded as they are iterated (each time). */
function lazyEntries(b: Buffer, first: number, n: number): Iterable<PackedEntry> {
  return {
    *[Symbol.iterator]() {
      for (let j = 0, o = first; j < n; j++, o += ENTRY) {
        yield { kind: KIND_BY_CODE.get(b[o]!)!, id: b.toString('hex', o + 1, o + 33), offset: Number(b.readBigUInt64BE(o + 33)), length: b.readUInt32BE(o + 41) };
      }
    },
  };
}
