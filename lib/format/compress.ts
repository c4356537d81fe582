/**
 * zstd compression of object payloads (zstd-napi, native).
 *
 * The payload inside every encrypted object starts with one flag byte:
 * 0 = stored as is, 1 = one zstd frame. Compression is kept only when it
 * saves at least 1/32 of the size, so incompressible data (media, archives)
 * is stored raw and costs no decompression on restore.
 */
import { createRequire } from 'node:module';
import { ObnamError } from '../errors.js';

const require = createRequire(import.meta.url);
interface ZstdBinding {
  CCtx: new () => { compress(dst: Uint8Array, src: Uint8Array, level: number): number };
  DCtx: new () => { decompress(dst: Uint8Array, src: Uint8Array): number };
  compressBound(n: number): number;
  getFrameContentSize(frame: Uint8Array): number | null;
  findFrameCompressedSize(frame: Uint8Array): number;
}
const binding = require('zstd-napi/binding') as ZstdBinding;

export const FLAG_RAW = 0;
export const FLAG_ZSTD = 1;
export const DEFAULT_LEVEL = 1;

let cctx: InstanceType<ZstdBinding['CCtx']> | undefined;
let dctx: InstanceType<ZstdBinding['DCtx']> | undefined;

/** Reused output buffer for compression: one per thread, grown as needed. */
let scratch = Buffer.allocUnsafeSlow(0);

/**
 * Returns flag byte || payload: zstd-compressed when that pays, raw otherwise.
 * `level` 0 disables compression. The result is a view into a buffer that the
 * next call reuses: consume it (e.g. encrypt it) before calling again.
 */
export function compressPayload(plaintext: Uint8Array, level = DEFAULT_LEVEL): Uint8Array {
  const bound = 1 + Math.max(plaintext.length, level > 0 ? binding.compressBound(plaintext.length) : 0);
  if (scratch.length < bound) scratch = Buffer.allocUnsafeSlow(Math.max(bound, 2 * scratch.length));
  if (level > 0 && plaintext.length >= 64) {
    cctx ??= new binding.CCtx();
    const n = cctx.compress(scratch.subarray(1), plaintext, level);
    if (n <= plaintext.length - (plaintext.length >> 5)) {
      scratch[0] = FLAG_ZSTD;
      return scratch.subarray(0, 1 + n);
    }
  }
  scratch[0] = FLAG_RAW;
  scratch.set(plaintext, 1);
  return scratch.subarray(0, 1 + plaintext.length);
}

/** Inverse of compressPayload; refuses frames that would exceed maxSize bytes. */
export function decompressPayload(payload: Uint8Array, maxSize: number, what: string): Uint8Array {
  if (payload.length < 1) throw new ObnamError('CORRUPT', `${what}: empty payload`);
  const flag = payload[0];
  const body = payload.subarray(1);
  if (flag === FLAG_RAW) {
    if (body.length > maxSize) throw new ObnamError('CORRUPT', `${what}: larger than ${maxSize} bytes`);
    return body;
  }
  if (flag !== FLAG_ZSTD) throw new ObnamError('CORRUPT', `${what}: unknown compression flag ${flag}`);
  try {
    const size = binding.getFrameContentSize(body);
    if (size === null || size > maxSize) throw new Error(`frame content size ${size} missing or above ${maxSize}`);
    if (binding.findFrameCompressedSize(body) !== body.length) throw new Error('trailing bytes after the frame');
    dctx ??= new binding.DCtx();
    const out = Buffer.allocUnsafe(size);
    const n = dctx.decompress(out, body);
    if (n !== size) throw new Error('decompressed size differs from the frame header');
    return out;
  } catch (e) {
    throw new ObnamError('CORRUPT', `${what}: bad zstd data (${(e as Error).message})`);
  }
}
