/**
 * Bounds the requests the server works on at once. A request beyond the
 * limit waits (before its body is read, so TCP flow control holds the bytes
 * in the client); beyond the queue limit it is refused with 503 and the
 * client retries later. Memory therefore stays bounded by roughly
 * max_concurrent_requests x max_object_bytes, whatever the number of clients.
 */
import { ObnamError } from '../lib/errors.js';

export class RequestLimiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  /** The most requests seen in progress at once (reported by tests). */
  peak = 0;

  constructor(
    private readonly maxActive: number,
    private readonly maxQueued: number,
  ) {}

  /** The most distinct clients that had requests in the server (working or waiting) at once. */
  peakClients = 0;
  private readonly perClient = new Map<string, number>();

  /** Waits for a slot for a request of `client`; returns its release function (safe to call twice). */
  async enter(client: string): Promise<() => void> {
    if (this.active >= this.maxActive && this.queue.length >= this.maxQueued) {
      throw new ObnamError('NETWORK', 'the server is busy; try again later');
    }
    this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    this.peakClients = Math.max(this.peakClients, this.perClient.size);
    if (this.active < this.maxActive) this.active++;
    else await new Promise<void>((r) => this.queue.push(r));
    this.peak = Math.max(this.peak, this.active);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = this.perClient.get(client)! - 1;
      if (n) this.perClient.set(client, n);
      else this.perClient.delete(client);
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    };
  }

  get waiting(): number {
    return this.queue.length;
  }
}
