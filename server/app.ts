/**
 * Builds the Fastify application: limits and timeouts from the config,
 * structured logging (pino: one line per request, warnings for refused and
 * broken requests), errors through server/errors.ts, the /health route, and
 * the authenticated /v1 API (routes/), for the client's own namespace or,
 * below /NAMESPACE, a named one it has a grant for (namespace-select.ts).
 *
 * A /v1 request passes, in order: the failed-token rate limit of its source
 * address (429), authentication (401), a request slot of its client
 * (limiter.ts; it waits there with its body unread), then its body is read
 * at no less than the minimum rate (body-rate.ts; 408). A request below
 * /NAMESPACE is refused without a grant (404, as for a missing namespace)
 * once it holds its slot, before its body is read.
 */
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest, LogController } from 'fastify';
import { ObnamError } from '../lib/errors.js';
import { appendOnly } from '../lib/store/guard.js';
import { API_PREFIX, BATCH_CONTENT_TYPE, OCTET_STREAM, routes } from '../lib/store/http-wire.js';
import type { AclTable } from './acl.js';
import type { ClientTable } from './clients.js';
import type { Limits } from './config.js';
import { httpError } from './errors.js';
import type { FailedAuthLimiter } from './auth-limiter.js';
import { watchBodyRate } from './body-rate.js';
import type { RequestLimiter } from './limiter.js';
import { rewriteNamespaceUrl, selectNamespace } from './namespace-select.js';
import type { Namespaces } from './namespaces.js';
import { batchRoutes } from './routes/batch.js';
import { repackRoutes } from './routes/repack.js';
import type { RepackLock } from './repack-lock.js';
import { objectRoutes } from './routes/objects.js';
import './request.js';

export interface AppDeps {
  limits: Limits;
  clients: ClientTable;
  namespaces: Namespaces;
  /** Named namespaces and grants; without it a /NAMESPACE/v1 URL names no namespace. */
  acl?: AclTable;
  limiter: RequestLimiter;
  failedAuth: FailedAuthLimiter;
  tls?: { cert: Buffer; key: Buffer };
  logLevel: string;
  /** Where log lines go (default: stdout). */
  logStream?: { write(line: string): void };
  /** One repack of a namespace at a time (shared with the background repacker). */
  repackLock: RepackLock;
  /** Aborted when the server shuts down: long requests (repack) stop. */
  shutdown: AbortSignal;
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{1,512})$/;

export function buildApp(deps: AppDeps): FastifyInstance {
  const { limits } = deps;
  let app: FastifyInstance;
  const httpOptions = {
    headersTimeout: Math.min(limits.headersTimeoutSeconds, limits.requestTimeoutSeconds) * 1000,
    // How often Node checks the headers and request timeouts (its default, 30 s, would stretch them).
    connectionsCheckingInterval: 1000,
  };
  const options = {
    http: httpOptions,
    logger: { level: deps.logLevel, ...(deps.logStream ? { stream: deps.logStream } : {}) },
    logController: new LogController({ disableRequestLogging: true }),
    connectionTimeout: limits.idleTimeoutSeconds * 1000,
    keepAliveTimeout: limits.keepAliveTimeoutSeconds * 1000,
    requestTimeout: limits.requestTimeoutSeconds * 1000,
    bodyLimit: 1 << 20,
    rewriteUrl: rewriteNamespaceUrl,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle' as const,
    // Fastify's own refusals (a URL that does not decode) get the API's error body too.
    frameworkErrors: (err: Error, req: FastifyRequest, reply: FastifyReply) => void sendError(req, reply, err),
    clientErrorHandler: (err: Error & { code?: string }, socket: import('node:net').Socket) => {
      const benign = err.code === 'ECONNRESET' || err.code === 'EPIPE';
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      app?.log[benign ? 'debug' : 'warn']({ code: err.code, ip: socket.remoteAddress }, `bad or broken connection: ${err.message}`);
      if (!benign && socket.writable) {
        socket.end(`HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      }
      socket.destroy();
    },
  };
  app = deps.tls ? (Fastify({ ...options, https: { ...deps.tls, ...httpOptions } }) as unknown as FastifyInstance) : Fastify(options);
  app.server.maxConnections = limits.maxConnections;
  // Emitted for connections idle in the middle of a request (not for idle
  // keep-alive connections, which keepAliveTimeout closes quietly).
  app.server.on('timeout', (socket: import('node:net').Socket) => {
    app.log.warn({ ip: socket.remoteAddress, bytesRead: socket.bytesRead }, 'connection idle for too long: closed');
    socket.destroy();
  });

  app.decorateRequest('obnamClient', null);
  app.decorateRequest('obnamStore', null);
  app.decorateRequest('obnamStorage', null);
  app.decorateReply('obnamError', null);

  app.addContentTypeParser([OCTET_STREAM, BATCH_CONTENT_TYPE], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => sendError(req, reply, err));
  app.setNotFoundHandler((req, reply) => sendError(req, reply, new ObnamError('NOT_FOUND', 'no such route')));

  app.addHook('onResponse', async (req, reply) => {
    const status = reply.statusCode;
    const entry = {
      client: req.obnamClient?.name,
      method: req.method,
      url: req.url.slice(0, 200),
      status,
      ms: Math.round(reply.elapsedTime),
      ip: req.ip,
      ...(reply.obnamError ? { error: reply.obnamError } : {}),
    };
    if (status >= 500) req.log.error(entry, 'request failed');
    // Failed token attempts are logged per burst, by the failed-token limiter.
    else if (status === 401 || status === 429) req.log.debug(entry, 'request refused');
    else if (status >= 400 && status !== 404) req.log.warn(entry, 'request refused');
    else if (status === 404) req.log.info(entry, 'not found');
    else req.log.debug(entry, 'request');
  });
  app.addHook('onRequestAbort', async (req) => {
    req.log.warn(
      { client: req.obnamClient?.name, method: req.method, url: req.url.slice(0, 200), ip: req.ip },
      'the connection closed before the request was complete (client gone or idle timeout); nothing stored',
    );
  });

  app.get(routes.health, async () => ({ status: 'ok' }));

  void app.register(
    async (api) => {
      api.addHook('onRequest', async (req, reply) => {
        const wait = deps.failedAuth.blockedFor(req.ip);
        if (wait) {
          reply.header('retry-after', String(Math.ceil(wait / 1000)));
          throw new ObnamError('RATE_LIMITED', 'too many failed token attempts from this address; try again later');
        }
        const m = BEARER.exec(req.headers.authorization ?? '');
        const client = m ? await deps.clients.authenticate(m[1]!) : undefined;
        if (!client) {
          deps.failedAuth.failed(req.ip);
          reply.header('www-authenticate', 'Bearer realm="obnam"');
          throw new ObnamError('UNAUTHORIZED', 'missing or unknown access token');
        }
        req.obnamClient = client;
        // Only now, authenticated, does the request take (or wait for) a slot of its client.
        const gone = new AbortController();
        let release: (() => void) | undefined;
        reply.raw.once('close', () => {
          // Only a request still waiting for its slot needs waking (an abort builds a DOMException: not on every request).
          if (release) release();
          else gone.abort();
        });
        try {
          release = await deps.limiter.enter(client.namespace, gone.signal);
        } catch (e) {
          // The client left while its request waited: there is no one to answer (onRequestAbort logs it).
          if (gone.signal.aborted) return reply.hijack();
          throw e;
        }
        if (gone.signal.aborted) {
          release();
          return reply.hijack();
        }
        const target = await selectNamespace(req, client, deps.acl);
        req.obnamClient = target.client;
        const lease = await deps.namespaces.acquire(target.storage.namespace, target.storage.name);
        req.obnamStorage = target.storage.namespace;
        reply.raw.once('close', lease.release);
        // Append-only clients (and grants short of full access) get a store that refuses deletes and repacks.
        req.obnamStore = target.client.append_only ? appendOnly(lease.store) : lease.store;
      });
      api.addHook('preParsing', async (req, reply, payload) => {
        const length = Number(req.headers['content-length'] ?? 0);
        if (!(length > 0) && req.headers['transfer-encoding'] === undefined) return payload;
        const watched = watchBodyRate(payload, { minBytesPerSecond: limits.minBodyBytesPerSecond, windowSeconds: limits.bodyRateWindowSeconds });
        reply.raw.once('close', watched.stop);
        return watched.stream;
      });
      objectRoutes(api, limits);
      batchRoutes(api, limits);
      repackRoutes(api, limits, deps.repackLock, deps.shutdown);
    },
    { prefix: API_PREFIX },
  );
  return app;
}

function sendError(req: FastifyRequest, reply: FastifyReply, e: unknown): FastifyReply {
  const h = httpError(e);
  reply.obnamError = h.detail;
  if (h.status >= 500 && h.status !== 503) req.log.error({ err: e }, h.detail);
  if (h.status === 503) reply.header('retry-after', '1');
  // A body cut off or refused before it was read: the rest of it is not
  // read, so the connection cannot carry another request.
  if (h.status === 408 || !req.raw.complete) reply.header('connection', 'close');
  return reply.code(h.status).type('application/json').send(h.body);
}
