/**
 * Repacking a namespace inside the server process: one repack of a namespace
 * at a time (the background repacker, background-repack.ts, and clients'
 * repack requests, routes/repack.ts, both go through RepackLock.repack, so a
 * second one waits for the first instead of meeting the store's repack lock),
 * and the serving store's open pack is finished first, so that what the
 * server acknowledged recently (kept in its journal until the pack is full)
 * is repacked too.
 */
import { ObnamError, throwIfAborted } from '../lib/errors.js';
import type { RepackOptions, RepackResult } from '../lib/store/store.js';
import type { NamespaceStore } from './storage.js';

export class RepackLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` once no other repack of `namespace` in this process runs. */
  exclusive<T>(namespace: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(namespace) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.tails.set(namespace, tail);
    void tail.then(() => {
      if (this.tails.get(namespace) === tail) this.tails.delete(namespace);
    });
    return run;
  }

  /** Repacks a serving store (after any other repack of it here): its open pack first, then its packs. */
  repack(namespace: string, store: NamespaceStore, opts: RepackOptions): Promise<RepackResult> {
    return this.exclusive(namespace, async () => {
      throwIfAborted(opts.signal);
      if (!store.repack) throw new ObnamError('INTERNAL', `${store.location}: this storage cannot repack`);
      // Also for a dry run, so that it reports on those objects too (it only finishes a pack early).
      await store.seal?.();
      return store.repack(opts);
    });
  }

  /** Whether a repack of `namespace` runs or waits. */
  busy(namespace: string): boolean {
    return this.tails.has(namespace);
  }
}
