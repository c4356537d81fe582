/**
 * Small validators for decoded CBOR. Every object read from a repository is
 * untrusted input until these accept it: a hostile or damaged object becomes a
 * CORRUPT error, never a crash or a wrong type flowing further in.
 */
import { ObnamError } from '../errors.js';

export type Obj = Record<string, unknown>;

export function fail(what: string, why: string): never {
  throw new ObnamError('CORRUPT', `${what}: ${why}`);
}

export function asMap(v: unknown, what: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) fail(what, 'expected a map');
  return v as Obj;
}

export function asArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) fail(what, 'expected an array');
  return v;
}

export function asUint(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(what, 'expected an unsigned integer');
  return v;
}

export function asInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(what, 'expected an integer');
  return v;
}

export function asText(v: unknown, what: string): string {
  if (typeof v !== 'string') fail(what, 'expected a text string');
  return v;
}

export function asBytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(what, 'expected a byte string');
  return v;
}

export function optional<T>(v: unknown, f: (v: unknown, what: string) => T, what: string): T | undefined {
  return v === undefined || v === null ? undefined : f(v, what);
}

/** [seconds, nanoseconds] since the epoch: seconds may be negative, nanoseconds in [0, 10^9). */
export function asTimestamp(v: unknown, what: string): { sec: number; nsec: number } {
  const a = asArray(v, what);
  if (a.length !== 2) fail(what, 'expected [seconds, nanoseconds]');
  const nsec = asUint(a[1], what);
  if (nsec >= 1e9) fail(what, 'nanoseconds out of range');
  return { sec: asInt(a[0], what), nsec };
}
