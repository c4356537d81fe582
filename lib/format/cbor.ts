/**
 * Deterministic CBOR (RFC 8949 section 4.2.1, "core deterministic encoding")
 * for the subset obnam writes: unsigned and negative integers, byte strings,
 * text strings, arrays, maps with text keys, booleans and null.
 *
 * Encoding is our own, because object ids are hashes of the encoded bytes and
 * must not depend on a library's choices (cbor-x, for instance, writes
 * integers above 2^32 as floats). Decoding uses cbor-x, which is fast; every
 * decoded value is then validated by the module that owns its schema.
 */
import { Decoder } from 'cbor-x';
import { ObnamError } from '../errors.js';

export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | Uint8Array
  | CborValue[]
  | { [key: string]: CborValue | undefined };

const textEncoder = new TextEncoder();

class ByteWriter {
  buf = new Uint8Array(256);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function writeHead(w: ByteWriter, major: number, n: number | bigint): void {
  const m = major << 5;
  if (typeof n === 'bigint') {
    if (n < 0n || n > 0xffffffffffffffffn) throw new ObnamError('INTERNAL', 'CBOR integer out of range');
    if (n <= 0xffffffffn) return writeHead(w, major, Number(n));
    w.byte(m | 27);
    for (let shift = 56n; shift >= 0n; shift -= 8n) w.byte(Number((n >> shift) & 0xffn));
    return;
  }
  if (n < 24) w.byte(m | n);
  else if (n < 0x100) {
    w.byte(m | 24);
    w.byte(n);
  } else if (n < 0x10000) {
    w.byte(m | 25);
    w.byte(n >>> 8);
    w.byte(n & 0xff);
  } else if (n < 0x100000000) {
    w.byte(m | 26);
    w.byte(n >>> 24);
    w.byte((n >>> 16) & 0xff);
    w.byte((n >>> 8) & 0xff);
    w.byte(n & 0xff);
  } else {
    writeHead(w, major, BigInt(n));
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/** Map keys are few and repeat endlessly (every tree entry): their encodings are cached. */
const keyCache = new Map<string, { key: string; bytes: Uint8Array }>();

function encodedKey(key: string): { key: string; bytes: Uint8Array } {
  let e = keyCache.get(key);
  if (!e) {
    const kw = new ByteWriter();
    encodeInto(kw, key);
    e = { key, bytes: kw.result() };
    if (keyCache.size < 1024) keyCache.set(key, e);
  }
  return e;
}

function encodeInto(w: ByteWriter, v: CborValue): void {
  if (v === null) return w.byte(0xf6);
  if (v === true) return w.byte(0xf5);
  if (v === false) return w.byte(0xf4);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new ObnamError('INTERNAL', `CBOR: only safe integers are encoded, got ${v}`);
    if (v >= 0) writeHead(w, 0, v);
    else writeHead(w, 1, -1 - v);
    return;
  }
  if (typeof v === 'bigint') {
    if (v >= 0n) writeHead(w, 0, v);
    else writeHead(w, 1, -1n - v);
    return;
  }
  if (typeof v === 'string') {
    const b = textEncoder.encode(v);
    writeHead(w, 3, b.length);
    return w.bytes(b);
  }
  if (v instanceof Uint8Array) {
    writeHead(w, 2, v.length);
    return w.bytes(v);
  }
  if (Array.isArray(v)) {
    writeHead(w, 4, v.length);
    for (const item of v) encodeInto(w, item);
    return;
  }
  if (typeof v === 'object') {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    const encoded = keys.map(encodedKey);
    encoded.sort((a, b) => compareBytes(a.bytes, b.bytes));
    writeHead(w, 5, encoded.length);
    for (const { key, bytes } of encoded) {
      w.bytes(bytes);
      encodeInto(w, v[key] as CborValue);
    }
    return;
  }
  throw new ObnamError('INTERNAL', `CBOR: cannot encode a value of type ${typeof v}`);
}

/** Encodes a value deterministically: equal values always give equal bytes. */
export function encodeCbor(v: CborValue): Uint8Array {
  const w = new ByteWriter();
  encodeInto(w, v);
  return w.result();
}

const decoder = new Decoder({
  mapsAsObjects: true,
  useRecords: false,
  int64AsNumber: true,
} as ConstructorParameters<typeof Decoder>[0]);

/** Decodes CBOR; any malformation becomes a CORRUPT error naming `what`. */
export function decodeCbor(bytes: Uint8Array, what: string): unknown {
  try {
    return decoder.decode(bytes);
  } catch (e) {
    throw new ObnamError('CORRUPT', `${what} is not valid CBOR: ${(e as Error).message}`);
  }
}
