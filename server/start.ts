/**
 * startServer(): runs an obnam-server on an initialised server directory and
 * returns its address, certificate fingerprint and a close() that finishes
 * the requests in progress (every acknowledged write is already durable)
 * before it resolves. Used by `obnam-server serve`, by tests and by the
 * benchmark's remote mode.
 */
import type { FastifyInstance } from 'fastify';
import { ObnamError } from '../lib/errors.js';
import { AclTable, aclFile } from './acl.js';
import { buildApp } from './app.js';
import { ClientTable } from './clients.js';
import { Limits, loadServerConfig, parseListen } from './config.js';
import { checkServerDir, serverDir } from './layout.js';
import { FailedAuthLimiter } from './auth-limiter.js';
import { RequestLimiter } from './limiter.js';
import { Namespaces } from './namespaces.js';
import { BackgroundRepack, BackgroundRepackOptions } from './background-repack.js';
import { RepackLock } from './repack-lock.js';
import { namespaceProvider } from './storage-config.js';
import { fingerprintOf, loadCertificate } from './tls.js';

export interface StartOptions {
  /** The server directory (made by obnam-server init). */
  dir: string;
  /** Config file, if not DIR/obnam-server.yaml. */
  configFile?: string;
  /** HOST:PORT; default: the config's listen. Port 0 picks a free port. */
  listen?: string;
  /** Plain HTTP (behind a TLS-terminating proxy only). */
  insecureHttp?: boolean;
  /** Overrides the config's log_level ("silent" for none). */
  logLevel?: string;
  logStream?: { write(line: string): void };
  /** Overrides of configured limits. */
  limits?: Partial<Limits>;
  /** Close a namespace after this long without requests (default 5 minutes). */
  namespaceIdleMs?: number;
  /** Where S3 credentials not in the config come from (default: the process environment). */
  env?: Record<string, string | undefined>;
  /** Milliseconds on a monotonic clock, for the failed-token rate limit (tests inject one; default performance.now). */
  clock?: () => number;
  /**
   * Background repacking (default: the config's repack section). Tests give
   * short intervals and a clock (milliseconds) for namespace idleness.
   */
  backgroundRepack?: Partial<Omit<BackgroundRepackOptions, 'log'>> & { enabled?: boolean; now?: () => number };
}

export interface RunningServer {
  /** https://HOST:PORT (or http:// with insecureHttp). */
  url: string;
  host: string;
  port: number;
  /** SHA-256 fingerprint of the certificate, AB:CD:... (undefined over plain HTTP). */
  fingerprint?: string;
  /**
   * The most requests in progress at once, the most distinct clients with
   * requests in the server at once, and the most requests of one client in
   * progress at once.
   */
  peaks(): { requests: number; clients: number; perClient: number };
  /** Stops accepting connections, finishes requests in progress, closes storage. */
  close(): Promise<void>;
  app: FastifyInstance;
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const d = serverDir(opts.dir, opts.configFile);
  await checkServerDir(d);
  const config = await loadServerConfig(d);
  const limits = { ...config.limits, ...opts.limits };
  const { host, port } = parseListen(opts.listen ?? config.listen);

  let tls: { cert: Buffer; key: Buffer } | undefined;
  let fingerprint: string | undefined;
  if (!opts.insecureHttp) {
    if (!config.tls.cert || !config.tls.key) {
      throw new ObnamError('USAGE', `${d.configFile}: tls.cert and tls.key are needed (or serve with --insecure-http behind a TLS proxy)`);
    }
    const c = await loadCertificate(config.tls.cert, config.tls.key);
    tls = { cert: c.cert, key: c.key };
    fingerprint = fingerprintOf(c.x509);
  }

  const clients = new ClientTable(d.clientsFile);
  await clients.refresh();
  const namespaces = new Namespaces(namespaceProvider(d, config.storage, opts.env ?? process.env), opts.namespaceIdleMs, opts.backgroundRepack?.now);
  const repackLock = new RepackLock();
  const shutdown = new AbortController();
  const acl = new AclTable(aclFile(d));
  await acl.refresh();
  const limiter = new RequestLimiter({
    total: limits.maxConcurrentRequests,
    perClient: limits.maxConcurrentRequestsPerClient,
    queued: limits.maxQueuedRequests,
    queuedPerClient: limits.maxQueuedRequestsPerClient,
  });
  const failedAuth = new FailedAuthLimiter({
    burst: limits.failedAuthBurst,
    perMinute: limits.failedAuthPerMinute,
    log: (entry, message) => app.log.warn(entry, message),
    now: opts.clock,
  });
  const app = buildApp({
    limits,
    clients,
    namespaces,
    acl,
    limiter,
    failedAuth,
    tls,
    logLevel: opts.logLevel ?? config.logLevel,
    logStream: opts.logStream,
    repackLock,
    shutdown: shutdown.signal,
  });
  try {
    await app.listen({ host, port });
  } catch (e) {
    await app.close().catch(() => undefined);
    await namespaces.close().catch(() => undefined);
    throw new ObnamError('USAGE', `cannot listen on ${host}:${port}: ${(e as Error).message}`);
  }
  const bg = opts.backgroundRepack ?? {};
  const background =
    (bg.enabled ?? config.repack.background)
      ? new BackgroundRepack(namespaces, repackLock, {
          idleMs: bg.idleMs ?? config.repack.idleSeconds * 1000,
          maxUnusedPercent: bg.maxUnusedPercent ?? config.repack.maxUnusedPercent,
          checkIntervalMs: bg.checkIntervalMs,
          onRepack: bg.onRepack,
          onStart: bg.onStart,
          log: { info: (o, m) => app.log.info(o, m), warn: (o, m) => app.log.warn(o, m) },
        })
      : undefined;
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new ObnamError('INTERNAL', 'the server has no TCP address');
  const urlHost = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  const url = `${tls ? 'https' : 'http'}://${urlHost}:${addr.port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    host: addr.address,
    port: addr.port,
    fingerprint,
    peaks: () => ({ requests: limiter.peak, clients: limiter.peakClients, perClient: limiter.peakPerClient }),
    app,
    close: () =>
      (closing ??= (async () => {
        // Long requests (a client's repack) and the background repack stop; then the stores close.
        shutdown.abort();
        await Promise.all([app.close(), background?.stop()]);
        failedAuth.close();
        await namespaces.close();
      })()),
  };
}
