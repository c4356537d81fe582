/**
 * Rate limit for failed token attempts, per source address (an IPv4 address,
 * or the /64 network of an IPv6 one): a token bucket of `burst` failures
 * that refills at `perMinute`. While an address's bucket is empty, every
 * request from it that needs a token is refused with 429 and Retry-After
 * before its token is looked at, so the answer is the same whether the token
 * belongs to a client or not (nothing to learn from it), and guessing goes no
 * faster than the refill.
 *
 * Logging is per burst, not per attempt: one line when an address runs out
 * of attempts, and one line with the counts when its burst is over (its
 * bucket is full again), or every ten minutes while it lasts.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface FailedAuthOptions {
  burst: number;
  perMinute: number;
  /** Where the burst lines go. */
  log: (entry: Record<string, unknown>, message: string) => void;
  /** Milliseconds since some fixed point (tests may inject a clock). */
  now?: () => number;
}

interface Burst {
  tokens: number;
  at: number;
  /** Failed attempts in this burst (tokens checked and not found). */
  failures: number;
  /** Requests refused with 429 in this burst (tokens not checked). */
  refused: number;
  first: number;
  last: number;
  /** When the burst was last reported (0: never), and the counts reported then. */
  reportedAt: number;
  reported: number;
  blockedReported: boolean;
}

/** Addresses tracked at once; failures from further ones share one bucket. */
const MAX_ADDRESSES = 65_536;
const OTHERS = 'other addresses';
const REPORT_EVERY_MS = 10 * 60_000;
const SWEEP_MS = 1000;

export class FailedAuthLimiter {
  private readonly bursts = new Map<string, Burst>();
  private readonly perMs: number;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: FailedAuthOptions) {
    this.perMs = opts.perMinute / 60_000;
    this.now = opts.now ?? (() => performance.now());
    this.timer = setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  /**
   * 0 if `ip` may present a token now; otherwise the milliseconds until it
   * may again (the request is counted as refused).
   */
  blockedFor(ip: string): number {
    const b = this.bursts.get(this.key(ip));
    if (!b) return 0;
    this.refill(b);
    if (b.tokens >= 1) return 0;
    b.refused++;
    b.last = this.now();
    return Math.ceil((1 - b.tokens) / this.perMs);
  }

  /** Records a failed token attempt from `ip`. */
  failed(ip: string): void {
    const key = this.key(ip);
    let b = this.bursts.get(key);
    const now = this.now();
    if (!b) {
      b = { tokens: this.opts.burst, at: now, failures: 0, refused: 0, first: now, last: now, reportedAt: 0, reported: 0, blockedReported: false };
      this.bursts.set(key, b);
    }
    this.refill(b);
    b.tokens -= 1;
    b.failures++;
    b.last = now;
    if (b.tokens < 1 && !b.blockedReported) {
      b.blockedReported = true;
      this.opts.log(
        { ip: key, failures: b.failures },
        `${b.failures} failed token attempts from ${key}: its requests get 429 until it slows down (further attempts are counted, not logged one by one)`,
      );
    }
  }

  /** Reports and forgets bursts that are over; reports long ones every ten minutes. */
  sweep(): void {
    const now = this.now();
    for (const [key, b] of this.bursts) {
      this.refill(b);
      if (b.tokens >= this.opts.burst) {
        this.report(key, b, 'over');
        this.bursts.delete(key);
      } else if (now - (b.reportedAt || b.first) >= REPORT_EVERY_MS && b.failures + b.refused > b.reported) {
        this.report(key, b, 'going on');
        b.reportedAt = now;
        b.reported = b.failures + b.refused;
      }
    }
  }

  /** Reports every open burst and stops the timer. */
  close(): void {
    clearInterval(this.timer);
    for (const [key, b] of this.bursts) this.report(key, b, 'at shutdown');
    this.bursts.clear();
  }

  private report(key: string, b: Burst, state: string): void {
    const seconds = Math.round((b.last - b.first) / 1000);
    this.opts.log(
      { ip: key, failures: b.failures, refused: b.refused, seconds },
      `${b.failures} failed token attempts from ${key} in ${seconds} s` +
        `${b.refused ? `, and ${b.refused} requests refused with 429` : ''} (burst ${state})`,
    );
  }

  private refill(b: Burst): void {
    const now = this.now();
    b.tokens = Math.min(this.opts.burst, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
  }

  private key(ip: string): string {
    const k = addressKey(ip);
    return this.bursts.has(k) || this.bursts.size < MAX_ADDRESSES ? k : OTHERS;
  }
}

/** The unit a limit applies to: an IPv4 address, or an IPv6 address's /64 network. */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (isIPv4(ip) || !isIPv6(ip)) return ip;
  const [head = '', tail] = ip.toLowerCase().split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
