/**
 * A bounded cache of decoded repository objects (decrypted chunks, decoded
 * trees) that also merges concurrent loads: while an object is being fetched,
 * every other request for it waits for the same fetch instead of starting
 * another. Failed loads are not cached, so a transient failure is retried by
 * the next request.
 */
import { LRUCache } from 'lru-cache';

export interface CacheStats {
  /** Answered from the cache. */
  hits: number;
  /** Answered by joining a load already in flight. */
  joined: number;
  /** Loads started. */
  loads: number;
  /** Bytes the cache holds now. */
  bytes: number;
}

export class ObjectCache {
  private readonly lru: LRUCache<string, object>;
  private readonly inflight = new Map<string, Promise<object>>();
  private readonly counts = { hits: 0, joined: 0, loads: 0 };

  /** `maxBytes`: the most the cached values may add up to (by their estimated size). */
  constructor(readonly maxBytes: number) {
    this.lru = new LRUCache<string, object>({ maxSize: Math.max(1, maxBytes) });
  }

  /** The value for `key`: cached, being loaded, or loaded now with `load`. */
  get<T extends object>(key: string, load: () => Promise<T>, sizeOf: (v: T) => number): Promise<T> {
    const cached = this.lru.get(key);
    if (cached !== undefined) {
      this.counts.hits++;
      return Promise.resolve(cached as T);
    }
    const running = this.inflight.get(key);
    if (running) {
      this.counts.joined++;
      return running as Promise<T>;
    }
    this.counts.loads++;
    const p = load().then(
      (v) => {
        this.inflight.delete(key);
        const size = Math.max(1, sizeOf(v));
        // Values larger than the whole cache are returned but not kept.
        if (size <= this.maxBytes) this.lru.set(key, v, { size });
        return v;
      },
      (e: unknown) => {
        this.inflight.delete(key);
        throw e;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  has(key: string): boolean {
    return this.lru.has(key);
  }

  stats(): CacheStats {
    return { ...this.counts, bytes: this.lru.calculatedSize };
  }
}
