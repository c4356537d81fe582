/**
 * HttpTransport: one keep-alive connection pool to an obnam-server, with a
 * bound on requests in flight and retries with exponential backoff (and
 * jitter) on transient failures: network errors, 408, 429 and 5xx. A 4xx is
 * an answer, never retried. TLS trust is set up by http-tls.ts.
 *
 * Every request has an overall deadline (deadlineMs, from when it gets a
 * slot): all its attempts and the pauses between them, each from connecting
 * to the last byte of the answer, must fit in it. A server that answers
 * slowly but never falls silent (which the idle timeout would catch) so
 * fails the request after the deadline, with one line naming the server,
 * and the failure is not retried.
 */
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { ObnamError, throwIfAborted } from '../errors.js';
import { errorFromTransport, isTransientStatus } from './http-errors.js';
import { parseFingerprint, PinnedAgent } from './http-tls.js';
import { Release, Semaphore } from './http-batch.js';

export interface TransportOptions {
  /** Requests in flight at once (and sockets kept open). */
  concurrency?: number;
  /** Retries after the first attempt of a request. */
  retries?: number;
  /** First retry delay; doubles per attempt up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A request whose socket is idle this long fails (and is retried). */
  timeoutMs?: number;
  /** Overall deadline of a request, retries included. */
  deadlineMs?: number;
  /** Idle keep-alive sockets are closed after this long (keep it below the server's keep-alive timeout). */
  idleSocketMs?: number;
  /** Largest response body accepted. */
  maxResponseBytes?: number;
}

export interface HttpTarget {
  url: string;
  token: string;
  fingerprint?: string;
  caFile?: string;
  /** Allows an http:// URL (the token then travels in clear). */
  insecureHttp?: boolean;
}

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface HttpRequest {
  method: Method;
  /** Path below the server URL, with query. */
  path: string;
  headers?: Record<string, string | number>;
  body?: readonly Uint8Array[];
  signal?: AbortSignal;
  /**
   * This request's overall deadline and idle timeout, if not the transport's:
   * for a request the server works on for long before it answers (repack).
   */
  deadlineMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** An earlier attempt failed in a way that may have left it done on the server. */
  retried: boolean;
}

/** The default overall deadline of one request: room for a 32 MiB object at 1 Mbit/s. */
export const DEFAULT_REQUEST_TIMEOUT_SECONDS = 300;

/** A request that missed its overall deadline (never retried). */
class DeadlineError extends ObnamError {}

const DEFAULTS: Required<TransportOptions> = {
  concurrency: 8,
  retries: 8,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
  timeoutMs: 120_000,
  deadlineMs: DEFAULT_REQUEST_TIMEOUT_SECONDS * 1000,
  idleSocketMs: 10_000,
  maxResponseBytes: 512 << 20,
};
/** Retries allowed while the server has never answered (a wrong address should fail fast). */
const RETRIES_BEFORE_FIRST_ANSWER = 2;

export class HttpTransport {
  readonly location: string;
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly slots: Semaphore;
  private readonly opts: Required<TransportOptions>;
  private readonly authorization: string;
  /** Whether the server has ever answered (see RETRIES_BEFORE_FIRST_ANSWER). */
  private answered = false;

  private constructor(
    target: HttpTarget,
    ca: Buffer | undefined,
    opts: TransportOptions,
  ) {
    this.opts = { ...DEFAULTS, ...opts };
    this.base = new URL(target.url);
    if (this.base.protocol !== 'https:' && this.base.protocol !== 'http:') {
      throw new ObnamError('USAGE', `${target.url}: a server URL starts with https://`);
    }
    this.location = target.url;
    this.authorization = `Bearer ${target.token}`;
    const agentOptions: https.AgentOptions = {
      keepAlive: true,
      maxSockets: this.opts.concurrency,
      timeout: this.opts.idleSocketMs,
      scheduling: 'lifo',
    };
    if (ca) agentOptions.ca = ca;
    if (this.base.protocol === 'http:') {
      if (!target.insecureHttp) {
        throw new ObnamError('USAGE', `${target.url} is plain HTTP: refusing to send the access token unencrypted (allow it with insecureHttp)`);
      }
      if (target.fingerprint || ca) {
        throw new ObnamError('USAGE', `${target.url} is plain HTTP: a server fingerprint or CA file needs an https:// URL`);
      }
      this.agent = new http.Agent(agentOptions);
    } else if (target.fingerprint) {
      this.agent = new PinnedAgent(agentOptions, parseFingerprint(target.fingerprint));
    } else {
      this.agent = new https.Agent(agentOptions);
    }
    this.slots = new Semaphore(this.opts.concurrency);
  }

  static async create(target: HttpTarget, opts: TransportOptions = {}): Promise<HttpTransport> {
    if (!target.token) throw new ObnamError('USAGE', `${target.url} needs an access token`);
    if (target.fingerprint) parseFingerprint(target.fingerprint);
    let ca: Buffer | undefined;
    if (target.caFile) {
      try {
        ca = await fs.readFile(target.caFile);
      } catch (e) {
        throw new ObnamError('USAGE', `cannot read CA file ${target.caFile}: ${(e as Error).message}`);
      }
    }
    return new HttpTransport(target, ca, opts);
  }

  /** Waits for a free request slot (for callers that batch while the transport is busy). */
  acquire(): Promise<Release> {
    return this.slots.acquire();
  }

  /**
   * Sends a request, retrying transient failures; resolves with any
   * non-transient response (2xx, 3xx, 4xx). `slot` is a slot from acquire()
   * the caller already holds (and this call releases).
   */
  async request(req: HttpRequest, slot?: Release): Promise<HttpResponse> {
    const release = slot ?? (await this.slots.acquire());
    const deadlineMs = req.deadlineMs ?? this.opts.deadlineMs;
    const deadline = performance.now() + deadlineMs;
    let lastFailure: string | undefined;
    try {
      let retried = false;
      for (let attempt = 0; ; attempt++) {
        throwIfAborted(req.signal);
        if (performance.now() >= deadline) throw this.deadlineError(lastFailure, deadlineMs);
        let retryAfterMs = 0;
        try {
          const res = await this.once(req, deadline);
          this.answered = true;
          // A transient status after the last retry is the caller's to report.
          if (!isTransientStatus(res.status) || attempt >= this.opts.retries) return { ...res, retried };
          lastFailure = `HTTP status ${res.status}`;
          const ra = Number(res.headers['retry-after']);
          if (Number.isFinite(ra) && ra > 0) retryAfterMs = ra * 1000;
        } catch (e) {
          if (e instanceof DeadlineError) throw e;
          const f = errorFromTransport(e, this.location);
          const limit = this.answered ? this.opts.retries : Math.min(this.opts.retries, RETRIES_BEFORE_FIRST_ANSWER);
          if (!f.retry || attempt >= limit) throw f.error;
          lastFailure = f.error.message;
        }
        retried = true;
        const backoff = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** attempt);
        const pause = Math.max(retryAfterMs ? Math.min(retryAfterMs, this.opts.maxDelayMs) : 0, backoff * (0.5 + Math.random() / 2));
        if (performance.now() + pause >= deadline) throw this.deadlineError(lastFailure, deadlineMs);
        await sleep(pause, req.signal);
      }
    } finally {
      release();
    }
  }

  private deadlineError(lastFailure?: string, deadlineMs = this.opts.deadlineMs): DeadlineError {
    return new DeadlineError(
      'NETWORK',
      `${this.location}: no complete answer within ${deadlineMs / 1000} s` +
        `${lastFailure ? ` (last failure: ${lastFailure})` : ''}; ` +
        'if the server is only slow, give a longer --request-timeout (or OBNAM_REQUEST_TIMEOUT, request_timeout in the config)',
    );
  }

  private once(req: HttpRequest, deadline: number): Promise<Omit<HttpResponse, 'retried'>> {
    const mod = this.base.protocol === 'https:' ? https : http;
    const basePath = this.base.pathname.replace(/\/+$/, '');
    let length = 0;
    for (const b of req.body ?? []) length += b.length;
    const headers: http.OutgoingHttpHeaders = { authorization: this.authorization, ...req.headers };
    if (req.body) headers['content-length'] = length;
    return new Promise((resolveOnce, rejectOnce) => {
      const resolve = (v: Omit<HttpResponse, 'retried'>) => {
        clearTimeout(timer);
        resolveOnce(v);
      };
      const reject = (e: unknown) => {
        clearTimeout(timer);
        rejectOnce(e);
      };
      const timer = setTimeout(() => {
        const e = this.deadlineError(undefined, req.deadlineMs);
        reject(e);
        r.destroy(e);
      }, Math.max(0, deadline - performance.now()));
      const r = mod.request(
        {
          agent: this.agent,
          protocol: this.base.protocol,
          hostname: this.base.hostname.replace(/^\[|\]$/g, ''),
          port: this.base.port || undefined,
          method: req.method,
          path: basePath + req.path,
          headers,
          signal: req.signal,
          timeout: req.deadlineMs ?? this.opts.timeoutMs,
        },
        (res) => {
          const declared = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
          if (declared !== undefined && declared > this.opts.maxResponseBytes) {
            res.destroy();
            reject(new ObnamError('TOO_LARGE', `${this.location}: response of ${declared} bytes is too large`));
            return;
          }
          // With a declared length, one buffer of its own (transferable to a worker thread, no concat).
          const whole = declared !== undefined && declared > 0 && req.method !== 'HEAD' ? Buffer.allocUnsafeSlow(declared) : undefined;
          const parts: Buffer[] = [];
          let got = 0;
          res.on('data', (d: Buffer) => {
            if (whole && got + d.length <= whole.length) whole.set(d, got);
            else parts.push(d);
            got += d.length;
            if (got > this.opts.maxResponseBytes || (whole && got > whole.length)) {
              res.destroy(new ObnamError('NETWORK', `${this.location}: the response is longer than announced or too large`));
            }
          });
          res.on('error', reject);
          res.on('aborted', () => reject(new ObnamError('NETWORK', `${this.location}: the connection closed in the middle of a response`)));
          res.on('end', () => {
            if (!res.complete || (req.method !== 'HEAD' && declared !== undefined && got !== declared)) {
              reject(new ObnamError('NETWORK', `${this.location}: the connection closed in the middle of a response`));
              return;
            }
            const body = whole ?? (parts.length === 1 ? parts[0]! : Buffer.concat(parts, got));
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: req.method === 'HEAD' ? Buffer.alloc(0) : body });
          });
        },
      );
      r.on('timeout', () => r.destroy(new ObnamError('NETWORK', `${this.location}: no answer within ${this.opts.timeoutMs / 1000} s`)));
      r.on('error', reject);
      for (const b of req.body ?? []) r.write(b);
      r.end();
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ObnamError('ABORTED', 'operation was cancelled'));
      return;
    }
    const onAbort = () => {
      clearTimeout(t);
      reject(new ObnamError('ABORTED', 'operation was cancelled'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
