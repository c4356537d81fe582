/**
 * Decorators for blob backends: each wraps a BlobBackend and is one itself,
 * adding one cross-cutting concern.
 *
 * - withRetry: retries NETWORK failures (an S3 endpoint's 5xx, a dropped
 *   connection) with exponential backoff and jitter. Safe for every call: a
 *   retried put whose first attempt did land returns false (the name exists),
 *   which callers treat as "stored".
 * - readOnly: put and delete fail with PERMISSION (scrub and inspection tools).
 * - withLimits: at most `maxConcurrent` calls in flight to the backend, and
 *   no blob above `maxBlobBytes` (TOO_LARGE).
 */
import { ObnamError, throwIfAborted } from '../errors.js';
import type { StoreOptions } from '../store/store.js';
import type { BlobBackend, BlobInfo, ByteRange } from './backend.js';

export interface RetryOptions {
  /** Retries after the first attempt (default 5). */
  retries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Waits (tests inject one that does not). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

const realSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new ObnamError('ABORTED', 'operation was cancelled'));
    });
  });

const isTransient = (e: unknown) => e instanceof ObnamError && e.code === 'NETWORK';

export function withRetry(inner: BlobBackend, opts: RetryOptions = {}): BlobBackend {
  const retries = opts.retries ?? 5;
  const base = opts.baseDelayMs ?? 100;
  const max = opts.maxDelayMs ?? 5000;
  const sleep = opts.sleep ?? realSleep;
  async function attempt<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (e) {
        if (!isTransient(e) || i >= retries) throw e;
        throwIfAborted(signal);
        await sleep(Math.min(max, base * 2 ** i) * (0.5 + Math.random() / 2), signal);
      }
    }
  }
  return {
    location: inner.location,
    atomicCreate: inner.atomicCreate,
    put: (name, data, o) => attempt(() => inner.put(name, data, o), o?.signal),
    get: (name, range, o) => attempt(() => inner.get(name, range, o), o?.signal),
    stat: (name, o) => attempt(() => inner.stat(name, o), o?.signal),
    // A listing is retried whole until it has yielded something; after that a failure ends it.
    list: (prefix, o) => retryList(inner, prefix, o, attempt),
    delete: (name, o) => attempt(() => inner.delete(name, o), o?.signal),
    close: () => inner.close(),
  };
}

async function* retryList(
  inner: BlobBackend,
  prefix: string,
  o: StoreOptions | undefined,
  attempt: <T>(fn: () => Promise<T>, signal?: AbortSignal) => Promise<T>,
): AsyncIterable<BlobInfo> {
  // Listings are paged by the backend; buffer the first page's worth by collecting whole (lists are of names only).
  const all = await attempt(async () => {
    const out: BlobInfo[] = [];
    for await (const x of inner.list(prefix, o)) out.push(x);
    return out;
  }, o?.signal);
  yield* all;
}

export function readOnly(inner: BlobBackend): BlobBackend {
  const refuse = () => Promise.reject(new ObnamError('PERMISSION', `${inner.location} is open read-only`));
  return {
    location: inner.location,
    atomicCreate: inner.atomicCreate,
    put: refuse,
    get: (n, r, o) => inner.get(n, r, o),
    stat: (n, o) => inner.stat(n, o),
    list: (p, o) => inner.list(p, o),
    delete: refuse,
    close: () => inner.close(),
  };
}

export interface LimitOptions {
  maxConcurrent?: number;
  maxBlobBytes?: number;
}

export function withLimits(inner: BlobBackend, opts: LimitOptions): BlobBackend {
  const maxConcurrent = opts.maxConcurrent ?? Infinity;
  let active = 0;
  const waiting: (() => void)[] = [];
  async function slot<T>(fn: () => Promise<T>): Promise<T> {
    while (active >= maxConcurrent) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  }
  const size = (d: Uint8Array | readonly Uint8Array[]) => (d instanceof Uint8Array ? d.length : d.reduce((n, x) => n + x.length, 0));
  return {
    location: inner.location,
    atomicCreate: inner.atomicCreate,
    put: (name, data, o) => {
      if (opts.maxBlobBytes !== undefined && size(data) > opts.maxBlobBytes) {
        return Promise.reject(new ObnamError('TOO_LARGE', `${name}: ${size(data)} bytes is above the limit of ${opts.maxBlobBytes}`));
      }
      return slot(() => inner.put(name, data, o));
    },
    get: (n, r?: ByteRange, o?) => slot(() => inner.get(n, r, o)),
    stat: (n, o) => slot(() => inner.stat(n, o)),
    list: (p, o) => {
      // Holds a slot for the whole listing (collected, so the slot is not kept across yields).
      return (async function* () {
        const all = await slot(async () => {
          const out: BlobInfo[] = [];
          for await (const x of inner.list(p, o)) out.push(x);
          return out;
        });
        yield* all;
      })();
    },
    delete: (n, o) => slot(() => inner.delete(n, o)),
    close: () => inner.close(),
  };
}
