/**
 * Content-defined chunking: FastCDC (Xia et al., 2016) with normalised
 * chunking, a 32-bit gear hash and a secret gear table.
 *
 * The gear table is derived from the repository's secret chunker key, so
 * chunk boundaries (and thus chunk sizes, which a server sees) depend on a
 * secret and cannot fingerprint known files. Boundaries depend only on the
 * last 32 bytes before them, so inserting bytes early in a file changes only
 * the chunks around the insertion. Normative description: format-spec,
 * "Chunking".
 */
import { hmacSha256 } from '../crypto/hash.js';
import { ObnamError } from '../errors.js';

export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

export const DEFAULT_CHUNKER: ChunkerParams = { min: 256 * 1024, avg: 1024 * 1024, max: 4 * 1024 * 1024 };
export const CHUNKER_ALGORITHM = 'fastcdc-gear32';
/** The largest max chunk size a repository may configure (bounds memory on read). */
export const MAX_CHUNK_LIMIT = 64 * 1024 * 1024;

export function checkChunkerParams(p: ChunkerParams): void {
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  const ok =
    pow2(p.avg) &&
    p.avg >= 256 &&
    Number.isInteger(p.min) &&
    Number.isInteger(p.max) &&
    p.min >= 64 &&
    p.min < p.avg &&
    p.avg < p.max &&
    p.max <= MAX_CHUNK_LIMIT;
  if (!ok) throw new ObnamError('CORRUPT', `invalid chunker parameters ${JSON.stringify(p)}`);
}

/** gear[i] = first 4 bytes, big-endian, of HMAC-SHA256(chunker key, "obnam-gear" || i as one byte). */
export function deriveGearTable(chunkerKey: Uint8Array): Uint32Array {
  const gear = new Uint32Array(256);
  const label = Buffer.from('obnam-gear', 'latin1');
  for (let i = 0; i < 256; i++) {
    gear[i] = hmacSha256(chunkerKey, label, Buffer.from([i])).readUInt32BE(0);
  }
  return gear;
}

/** A mask of `bits` one-bits at the top of a 32-bit word (the bits that see the most bytes). */
function topMask(bits: number): number {
  return bits >= 32 ? 0xffffffff : ((0xffffffff << (32 - bits)) >>> 0) | 0;
}

export class Chunker {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
  private readonly maskS: number;
  private readonly maskL: number;

  constructor(
    readonly gear: Uint32Array,
    params: ChunkerParams,
  ) {
    checkChunkerParams(params);
    this.min = params.min;
    this.avg = params.avg;
    this.max = params.max;
    const bits = Math.log2(params.avg);
    // Normalisation level 2: harder to cut before the average size, easier after.
    this.maskS = topMask(bits + 2);
    this.maskL = topMask(bits - 2);
  }

  /**
   * The length of the next chunk of buf[start, end). Returns -1 if fewer
   * than `max` bytes are available and `eof` is false: the caller must supply
   * more data first (the cut can only be decided with `max` bytes in view).
   */
  cut(buf: Uint8Array, start: number, end: number, eof: boolean): number {
    const n = end - start;
    if (n < this.max && !eof) return -1;
    if (n <= this.min) return n;
    const gear = this.gear;
    const normal = Math.min(this.avg, n);
    const limit = Math.min(this.max, n);
    const maskS = this.maskS;
    const maskL = this.maskL;
    let h = 0;
    let i = this.min;
    for (; i < normal; i++) {
      h = ((h << 1) + gear[buf[start + i]!]!) | 0;
      if ((h & maskS) === 0) return i + 1;
    }
    for (; i < limit; i++) {
      h = ((h << 1) + gear[buf[start + i]!]!) | 0;
      if ((h & maskL) === 0) return i + 1;
    }
    return limit;
  }
}

/** Reads up to `length` bytes into `buf` at `offset`; resolves to the count, 0 at the end. */
export type ChunkReader = (buf: Uint8Array, offset: number, length: number) => Promise<number>;

/**
 * Splits what `read` delivers into chunks, reading `readBlock` bytes at a
 * time into a buffer from `buffer(size)`: one of about `sizeHint` bytes for
 * small inputs, else (or once the input outgrows it) one of max + readBlock.
 * Each chunk is a view into that buffer, valid only until the generator
 * resumes: the caller hashes (or copies) it first.
 */
export async function* chunkViews(
  chunker: Chunker,
  read: ChunkReader,
  buffer: (size: number) => Uint8Array,
  sizeHint: number,
  readBlock = 1 << 20,
): AsyncGenerator<Uint8Array> {
  const full = chunker.max + readBlock;
  let buf = buffer(sizeHint + 1 < full / 4 ? Math.max(sizeHint + 1, 4096) : full);
  let len = 0;
  let eof = false;
  while (!eof) {
    if (len === buf.length) {
      // More data than the hint promised: move to a full-size window.
      const bigger = buffer(full);
      bigger.set(buf.subarray(0, len));
      buf = bigger;
    }
    const n = await read(buf, len, Math.min(readBlock, buf.length - len));
    if (n === 0) eof = true;
    len += n;
    let start = 0;
    while (start < len) {
      const c = chunker.cut(buf, start, len, eof);
      if (c < 0) break;
      yield buf.subarray(start, start + c);
      start += c;
    }
    buf.copyWithin(0, start, len);
    len -= start;
  }
}
