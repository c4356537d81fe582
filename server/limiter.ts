/**
 * Bounds the requests the server works on at once, fairly between clients.
 *
 * A request takes a slot once it is authenticated and before its body is
 * read; a request beyond the limits waits with its body unread (TCP flow
 * control holds the bytes in the client), so memory stays bounded by roughly
 * max_concurrent_requests x max_object_bytes, whatever the number of clients.
 *
 * Two limits apply: one client has at most `perClient` requests in progress,
 * and all clients together at most `total`. When a slot frees, it goes to the
 * waiting client with the fewest requests in progress (the longest-waiting
 * one among equals), so a client that floods the server waits behind its own
 * requests, never in front of another client's. Beyond the queue limits
 * (per client and in all) a request is refused with 503 and the client
 * retries later.
 */
import { ObnamError } from '../lib/errors.js';

export interface LimiterOptions {
  /** Requests in progress at once, of all clients. */
  total: number;
  /** Requests in progress at once, of one client. */
  perClient: number;
  /** Requests waiting, of all clients. */
  queued: number;
  /** Requests waiting, of one client. */
  queuedPerClient: number;
}

/** Frees a slot; safe to call more than once. */
export type Release = () => void;

interface Waiter {
  grant: () => void;
  /** When it started waiting (a counter, for "longest waiting"). */
  seq: number;
}

interface ClientState {
  active: number;
  queue: Waiter[];
}

export class RequestLimiter {
  private active = 0;
  private queued = 0;
  private seq = 0;
  private readonly clients = new Map<string, ClientState>();
  /** Clients with requests waiting. */
  private readonly waiting = new Set<ClientState>();
  /** The most requests seen in progress at once (reported by tests). */
  peak = 0;
  /** The most distinct clients that had requests in the server (working or waiting) at once. */
  peakClients = 0;
  /** The most requests of one client seen in progress at once. */
  peakPerClient = 0;

  constructor(private readonly opts: LimiterOptions) {}

  /**
   * Waits for a slot for a request of `client`; returns its release
   * function. BUSY (503) beyond the queue limits; if `signal` fires while
   * the request waits (its connection closed), it leaves the queue and the
   * call rejects with ABORTED.
   */
  async enter(client: string, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) throw new ObnamError('ABORTED', 'the request was abandoned');
    let c = this.clients.get(client);
    if (!c) {
      c = { active: 0, queue: [] };
      this.clients.set(client, c);
      this.peakClients = Math.max(this.peakClients, this.clients.size);
    }
    const state = c;
    if (state.active < this.opts.perClient && this.active < this.opts.total) {
      this.start(state);
      return this.releaser(client, state);
    }
    if (this.queued >= this.opts.queued || state.queue.length >= this.opts.queuedPerClient) {
      this.forgetIfIdle(client, state);
      throw new ObnamError('NETWORK', 'the server is busy; try again later');
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        seq: this.seq++,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = state.queue.indexOf(waiter);
        if (i < 0) return;
        state.queue.splice(i, 1);
        this.queued--;
        if (!state.queue.length) this.waiting.delete(state);
        this.forgetIfIdle(client, state);
        reject(new ObnamError('ABORTED', 'the request was abandoned'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      state.queue.push(waiter);
      this.queued++;
      this.waiting.add(state);
    });
    return this.releaser(client, state);
  }

  /** Requests waiting for a slot. */
  get waitingRequests(): number {
    return this.queued;
  }

  private start(c: ClientState): void {
    c.active++;
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    this.peakPerClient = Math.max(this.peakPerClient, c.active);
  }

  private releaser(client: string, c: ClientState): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      c.active--;
      this.active--;
      this.dispatch();
      this.forgetIfIdle(client, c);
    };
  }

  /** Hands free slots to waiting requests: the client with the fewest in progress first. */
  private dispatch(): void {
    while (this.active < this.opts.total && this.waiting.size) {
      let best: ClientState | undefined;
      for (const c of this.waiting) {
        if (c.active >= this.opts.perClient) continue;
        if (!best || c.active < best.active || (c.active === best.active && c.queue[0]!.seq < best.queue[0]!.seq)) best = c;
      }
      if (!best) return;
      const w = best.queue.shift()!;
      this.queued--;
      if (!best.queue.length) this.waiting.delete(best);
      this.start(best);
      w.grant();
    }
  }

  private forgetIfIdle(client: string, c: ClientState): void {
    if (c.active === 0 && c.queue.length === 0 && this.clients.get(client) === c) this.clients.delete(client);
  }
}
