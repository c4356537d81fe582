/**
 * Request slots and batching for HttpStore.
 *
 * Semaphore bounds the requests in flight. Batcher gathers single-object
 * calls (has, small puts) into batch requests while the transport is busy:
 * a call made when a slot is free goes out at once (in a batch of one, or
 * with whatever arrived in the same turn of the event loop); calls made while
 * every slot is taken wait together and leave as one request when a slot
 * frees. So batches grow exactly when round trips are the bottleneck.
 */

export type Release = () => void;

export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  async acquire(): Promise<Release> {
    if (this.active < this.limit) this.active++;
    else await new Promise<void>((r) => this.waiters.push(r));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.active--;
    };
  }
}

interface Waiting<I, R> {
  item: I;
  resolve(r: R): void;
  reject(e: unknown): void;
}

export interface BatcherOptions<I, R> {
  /** Waits for a request slot. */
  acquire(): Promise<Release>;
  /** Sends one batch holding `slot`; answers in the same order. Must release the slot. */
  send(items: I[], slot: Release): Promise<R[]>;
  /** Most items in one request. */
  maxItems: number;
  /** Most bytes in one request (by `size`); one item is always sent, however large. */
  maxBytes?: number;
  size?(item: I): number;
}

export class Batcher<I, R> {
  private readonly queue: Waiting<I, R>[] = [];
  private draining = false;

  constructor(private readonly opts: BatcherOptions<I, R>) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length) {
        const slot = await this.opts.acquire();
        if (!this.queue.length) {
          slot();
          break;
        }
        const batch = this.queue.splice(0, this.fit());
        this.opts.send(batch.map((w) => w.item), slot).then(
          (results) => batch.forEach((w, i) => w.resolve(results[i]!)),
          (e: unknown) => batch.forEach((w) => w.reject(e)),
        );
      }
    } finally {
      this.draining = false;
    }
  }

  /** How many waiting items (from the front) go into the next request. */
  private fit(): number {
    const { maxItems, maxBytes, size } = this.opts;
    if (maxBytes === undefined || !size) return Math.min(maxItems, this.queue.length);
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < maxItems) {
      bytes += size(this.queue[n]!.item);
      if (n > 0 && bytes > maxBytes) break;
      n++;
    }
    return n;
  }
}
