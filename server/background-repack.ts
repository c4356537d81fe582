/**
 * Repacking while serving (format-spec 14.8): every check interval, the
 * namespace that has gone longest without a request, if that is at least
 * `idleMs` and something may have changed since it was last looked at (a
 * request since, or never looked at since the server started), is repacked
 * through the server's own open store, so requests and the repack share one
 * view of the namespace. One namespace at a time; the store rewrites packs
 * only where more than `maxUnusedPercent` of the bytes is unused. A request
 * for the namespace, or stop(), aborts the repack at once (repacking is
 * safe to interrupt at any point): requests never wait for it, and the
 * namespace is taken up again once it is idle again. The namespaces looked at
 * are those with storage (listed at start and every few hours: listing a
 * bucket is costly) and those that had requests.
 */
import { describeError, ObnamError } from '../lib/errors.js';
import type { RepackResult } from '../lib/store/store.js';
import type { Namespaces } from './namespaces.js';
import type { RepackLock } from './repack-lock.js';

/** How often the namespaces with storage are listed again (new ones with requests are known from those). */
const LIST_EVERY_MS = 6 * 3600 * 1000;

export interface BackgroundRepackOptions {
  /** A namespace without requests this long is repacked (milliseconds on the namespaces' clock). */
  idleMs: number;
  maxUnusedPercent: number;
  /** How often to look for an idle namespace (default: a quarter of idleMs, at most a minute). */
  checkIntervalMs?: number;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
  };
  /** Called (and awaited) as a namespace's repack starts (tests). */
  onStart?: (namespace: string) => void | Promise<void>;
  /** Called after each repack (tests, logs): the namespace and its result, or why it stopped. */
  onRepack?: (namespace: string, outcome: { result?: RepackResult; aborted?: boolean; error?: unknown }) => void;
}

export class BackgroundRepack {
  private readonly timer: NodeJS.Timeout;
  private readonly started: number;
  /** When each namespace was last looked at (repacked, or found with nothing to do). */
  private readonly checked = new Map<string, number>();
  private current?: { namespace: string; abort: AbortController; done: Promise<void> };
  private ticking = false;
  private stopped = false;
  private readonly unsubscribe: () => void;
  /** The namespaces with storage, as last listed (listing a bucket is costly: rarely). */
  private listed: string[] = [];
  private listedAt?: number;

  constructor(
    private readonly namespaces: Namespaces,
    private readonly lock: RepackLock,
    private readonly opts: BackgroundRepackOptions,
  ) {
    this.started = namespaces.clock();
    const every = opts.checkIntervalMs ?? Math.max(1000, Math.min(opts.idleMs / 4, 60_000));
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
    this.unsubscribe = namespaces.onRequest((ns) => {
      if (this.current?.namespace === ns) this.current.abort.abort();
    });
  }

  /** Looks for an idle namespace and repacks it (one tick; also for tests). */
  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const ns = await this.pick();
      if (ns && !this.stopped) await this.repack(ns);
    } catch (e) {
      this.opts.log.warn({ err: describeError(e) }, 'background repack: cannot look for idle namespaces');
    } finally {
      this.ticking = false;
    }
  }

  /** The namespace idle longest, if one is due. */
  private async pick(): Promise<string | undefined> {
    const now = this.namespaces.clock();
    let best: string | undefined;
    let bestIdle = -1;
    if (this.listedAt === undefined || now - this.listedAt >= LIST_EVERY_MS) {
      this.listed = await this.namespaces.provider.list();
      this.listedAt = now;
    }
    for (const ns of new Set([...this.listed, ...this.namespaces.active()])) {
      const last = this.namespaces.lastActivity(ns) ?? this.started;
      const checked = this.checked.get(ns);
      if (checked !== undefined && checked >= last) continue; // nothing happened since
      const idle = now - last;
      if (idle < this.opts.idleMs || this.namespaces.inUse(ns) || this.lock.busy(ns)) continue;
      if (idle > bestIdle) [best, bestIdle] = [ns, idle];
    }
    return best;
  }

  private async repack(ns: string): Promise<void> {
    const abort = new AbortController();
    const run = async () => {
      let lease: Awaited<ReturnType<Namespaces['acquire']>> | undefined;
      try {
        lease = await this.namespaces.acquire(ns, `namespace ${ns}`, { background: true });
        const store = lease.store;
        if (!store.repack) return;
        this.opts.log.info({ namespace: ns }, 'background repack: looking at an idle namespace');
        await this.opts.onStart?.(ns);
        const result = await this.lock.repack(ns, store, { maxUnusedPercent: this.opts.maxUnusedPercent, signal: abort.signal });
        this.checked.set(ns, this.namespaces.clock());
        if (result.packsRewritten || result.packsRemoved) {
          this.opts.log.info({ namespace: ns, ...result }, `background repack: rewrote ${result.packsRewritten} packs, freed ${result.bytesFreed} bytes`);
        }
        this.opts.onRepack?.(ns, { result });
      } catch (e) {
        if (abort.signal.aborted || (e instanceof ObnamError && e.code === 'ABORTED')) {
          // A request came (it goes on with the store), or the server stops: taken up when idle again.
          this.opts.onRepack?.(ns, { aborted: true });
          return;
        }
        this.checked.set(ns, this.namespaces.clock()); // not again before its next request
        this.opts.log.warn({ namespace: ns, err: describeError(e) }, 'background repack failed');
        this.opts.onRepack?.(ns, { error: e });
      } finally {
        lease?.release();
      }
    };
    const done = run();
    this.current = { namespace: ns, abort, done };
    try {
      await done;
    } finally {
      this.current = undefined;
    }
  }

  /** Stops looking, aborts the repack in progress and waits for it to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe();
    this.current?.abort.abort();
    await this.current?.done.catch(() => undefined);
  }
}
