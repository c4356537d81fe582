/**
 * The open namespaces of a running server: each opened on first use through
 * the namespace provider (storage.ts), shared by all of that client's
 * requests, and closed when it has had no request for `idleMs` (so a server
 * with many clients holds only the active ones' indexes in memory). It also
 * remembers when each namespace last had a request, also after closing it,
 * and tells listeners when a request arrives (the background repacker,
 * background-repack.ts, works only on namespaces without requests).
 */
import { describeError, ObnamError } from '../lib/errors.js';
import type { NamespaceProvider, NamespaceStore } from './storage.js';

export type { NamespaceStore } from './storage.js';

interface Open {
  store: Promise<NamespaceStore>;
  active: number;
  lastUsed: number;
}

export interface Lease {
  store: NamespaceStore;
  /** Ends this request's use of the store (idempotent). */
  release(): void;
}

export const DEFAULT_IDLE_MS = 5 * 60 * 1000;

export class Namespaces {
  private readonly open = new Map<string, Open>();
  /** When each namespace last had a request (acquired or released), on the `now` clock. */
  private readonly activity = new Map<string, number>();
  private readonly listeners = new Set<(namespace: string) => void>();
  private readonly closing = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly provider: NamespaceProvider,
    private readonly idleMs = DEFAULT_IDLE_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => this.closeIdle(), Math.max(50, Math.min(idleMs / 2, 30_000)));
    this.timer.unref();
  }

  /**
   * The store of a namespace, held until release(). `background`: not a
   * request (the background repacker): it neither counts as activity nor
   * tells the listeners.
   */
  async acquire(namespace: string, clientName: string, opts: { background?: boolean } = {}): Promise<Lease> {
    if (!opts.background) {
      this.activity.set(namespace, this.now());
      for (const l of this.listeners) l(namespace);
    }
    let o = this.open.get(namespace);
    if (!o) {
      const store = this.provider.open(namespace, { serving: true }).catch((e: unknown) => {
        this.open.delete(namespace);
        if (e instanceof ObnamError && e.code !== 'NO_REPOSITORY' && e.code !== 'UNSUPPORTED_VERSION') throw e;
        throw new ObnamError('INTERNAL', `storage of client ${clientName} is missing or unreadable: ${describeError(e)}`);
      });
      o = { store, active: 0, lastUsed: this.now() };
      this.open.set(namespace, o);
    }
    const entry = o;
    entry.active++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.active--;
      entry.lastUsed = this.now();
      if (!opts.background) this.activity.set(namespace, entry.lastUsed);
    };
    try {
      return { store: await entry.store, release };
    } catch (e) {
      release();
      throw e;
    }
  }

  /** When the namespace last had a request (undefined: none since the server started). */
  lastActivity(namespace: string): number | undefined {
    return this.activity.get(namespace);
  }

  /** The namespaces that have had requests since the server started. */
  active(): string[] {
    return [...this.activity.keys()];
  }

  /** Whether requests (or the background repacker) hold the namespace's store now. */
  inUse(namespace: string): boolean {
    return (this.open.get(namespace)?.active ?? 0) > 0;
  }

  /** Calls `fn` with the namespace of every request as it arrives; returns the function that stops it. */
  onRequest(fn: (namespace: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The clock of lastActivity (milliseconds). */
  get clock(): () => number {
    return this.now;
  }

  /** How many namespaces are open (tests, logs). */
  get openCount(): number {
    return this.open.size;
  }

  /** Closes namespaces without requests for idleMs. */
  closeIdle(): void {
    const t = this.now();
    for (const [ns, o] of this.open) {
      if (o.active === 0 && t - o.lastUsed >= this.idleMs) {
        this.open.delete(ns);
        const p = o.store.then((s) => s.close()).catch(() => undefined);
        this.closing.add(p);
        void p.finally(() => this.closing.delete(p));
      }
    }
  }

  /** Makes everything stored durable and closes every open store and the provider. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    const all = await Promise.allSettled([...this.open.values()].map((o) => o.store));
    this.open.clear();
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
    await Promise.all(this.closing);
    await this.provider.close();
  }
}
