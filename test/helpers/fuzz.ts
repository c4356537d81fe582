/**
 * Fuzzing with fast-check: inputs made from valid encodings by byte-level
 * mutations (bit flips, overwrites with boundary values, truncation,
 * insertion, deletion, duplication) and by structural ones (a value anywhere
 * in a decoded CBOR object replaced by an arbitrary value, or removed), and
 * the rule every decoder must keep: it returns, or throws an ObnamError.
 * Each property runs with a fixed seed and then with a random one (printed
 * by fast-check on failure, to replay); OBNAM_FUZZ_SCALE=N runs N times as
 * many random cases.
 */
import fc from 'fast-check';
import { ObnamError } from '../../lib/errors.js';
import { CborValue, encodeCbor } from '../../lib/format/cbor.js';

export const FIXED_SEED = 0x0b4a3;
/** OBNAM_FUZZ_SCALE=N multiplies the random runs, for a longer hunt by hand (the suite uses 1). */
const SCALE = Math.max(1, Number(process.env.OBNAM_FUZZ_SCALE ?? 1) || 1);

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; n: number }
  | { op: 'duplicate'; at: number; n: number };

const BOUNDARY_BYTES = [0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x3f, 0x5f, 0x7f, 0x80, 0x9f, 0xbf, 0xdf, 0xf6, 0xfb, 0xff];

/**
 * CBOR heads worth splicing in: tags the decoder library knows (dates, big
 * numbers, regular expressions, shared references that make cycles, typed
 * arrays, sets), an unknown tag, and lengths far beyond any input.
 */
const CBOR_HEADS = [
  [0xc1], [0xc2], [0xc3], [0xd8, 0x1b], [0xd8, 0x1c], [0xd8, 0x1d, 0x00], [0xd8, 0x40], [0xd8, 0x44], [0xd8, 0x56],
  [0xd9, 0x01, 0x02], [0xd9, 0xd9, 0xf7], [0xd9, 0xff, 0xff], [0x9b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
  [0xbb, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], [0x5a, 0xff, 0xff, 0xff, 0xff], [0x7a, 0xff, 0xff, 0xff, 0xff], [0x9f], [0xff], [0xf7], [0xf9, 0x7e, 0x00],
].map((h) => Uint8Array.from(h));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...BOUNDARY_BYTES), fc.nat(255)) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.constantFrom(...CBOR_HEADS)) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }),
);

function applyMutation(b: Buffer, m: Mutation): Buffer {
  const at = b.length ? m.at % (b.length + (m.op === 'insert' ? 1 : 0)) : 0;
  switch (m.op) {
    case 'flip':
      if (!b.length) return b;
      b = Buffer.from(b);
      b[at] = b[at]! ^ (1 << m.bit);
      return b;
    case 'set':
      if (!b.length) return b;
      b = Buffer.from(b);
      b[at] = m.value;
      return b;
    case 'truncate':
      return b.subarray(0, at);
    case 'insert':
      return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    case 'delete':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
    case 'duplicate':
      return Buffer.concat([b.subarray(0, at + m.n), b.subarray(at)]);
  }
}

/** Valid encodings with one to eight byte-level mutations. */
export function mutatedBytes(valid: readonly Uint8Array[]): fc.Arbitrary<Buffer> {
  return fc
    .tuple(fc.constantFrom(...valid), fc.array(mutation, { minLength: 1, maxLength: 8 }))
    .map(([b, ms]) => ms.reduce(applyMutation, Buffer.from(b)));
}

/** Any bytes, mutated valid encodings, or a valid encoding with bytes appended. */
export function hostileBytes(valid: readonly Uint8Array[]): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)) },
    { weight: 4, arbitrary: mutatedBytes(valid) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([a, b]) => Buffer.concat([a, b])) },
  );
}

/** Values our deterministic CBOR encoder can write: what a hostile key holder can put in any field. */
export const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.constantFrom(0, -1, 2 ** 32, 2 ** 53 - 1, -(2 ** 53) + 1, 1e9, 2 ** 31 - 1),
    fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }),
    fc.string({ maxLength: 20 }),
    fc.constantFrom('', 'scrypt', 'zstd', 'file', 'dir', 'symlink', 'hardlink', 'fifo', 'chardev', 'blockdev', 'socket', '..', '/', 'fastcdc-gear32'),
    fc.uint8Array({ maxLength: 40 }),
    fc.constantFrom(new Uint8Array(0), new Uint8Array(32), new Uint8Array(12), Buffer.from('..'), Buffer.from('a/b')),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('v'), { maxKeys: 4 }),
  ),
})).v;

type Edit = { path: number[]; op: 'replace'; value: CborValue } | { path: number[]; op: 'remove' };

function editValue(v: unknown, path: number[], edit: Edit): unknown {
  const isObj = v !== null && typeof v === 'object' && !(v instanceof Uint8Array);
  if (!path.length || !isObj) return edit.op === 'replace' ? edit.value : undefined;
  const [sel, ...rest] = path as [number, ...number[]];
  if (Array.isArray(v)) {
    if (!v.length) return edit.op === 'replace' ? edit.value : v;
    const i = sel % v.length;
    const child = editValue(v[i], rest, edit);
    const out = [...v];
    if (child === undefined) out.splice(i, 1);
    else out[i] = child;
    return out;
  }
  const keys = Object.keys(v as object);
  if (!keys.length) return edit.op === 'replace' ? edit.value : v;
  const k = keys[sel % keys.length]!;
  const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  const child = editValue(out[k], rest, edit);
  if (child === undefined) delete out[k];
  else out[k] = child;
  return out;
}

/** A decoded valid object with one to three values replaced or removed, re-encoded. */
export function editedCbor(valid: readonly CborValue[]): fc.Arbitrary<Uint8Array> {
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    fc.record({ path: fc.array(fc.nat(), { maxLength: 5 }), op: fc.constant('replace' as const), value: cborValue }),
    fc.record({ path: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), op: fc.constant('remove' as const) }),
  );
  return fc
    .tuple(fc.constantFrom(...valid), fc.array(edit, { minLength: 1, maxLength: 3 }))
    .map(([v, edits]) => encodeCbor((edits.reduce<unknown>((acc, e) => editValue(acc, e.path, e) ?? null, v) ?? null) as CborValue));
}

/** Runs `f`; true if it returned or threw an ObnamError, rethrows anything else (the finding). */
export function returnsOrThrowsTyped(f: () => unknown): boolean {
  try {
    f();
  } catch (e) {
    if (e instanceof ObnamError) return true;
    throw e;
  }
  return true;
}

/** fc.assert with the fixed seed, then with a random one. */
export function assertBoth<T>(prop: fc.IProperty<T>, runs: { fixed: number; random: number }): void {
  fc.assert(prop, { seed: FIXED_SEED, numRuns: runs.fixed });
  fc.assert(prop, { numRuns: runs.random * SCALE });
}

export async function assertBothAsync<T>(prop: fc.IAsyncProperty<T>, runs: { fixed: number; random: number }): Promise<void> {
  await fc.assert(prop, { seed: FIXED_SEED, numRuns: runs.fixed });
  await fc.assert(prop, { numRuns: runs.random * SCALE });
}
