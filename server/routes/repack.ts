/**
 * Routes that work on a client's namespace as a whole (format-spec/server-api.md):
 *
 *   POST /v1/repack   {"max_unused": PERCENT, "dry_run": BOOLEAN}  ->  what was repacked
 *   POST /v1/refresh  ->  204 once has and listings see everything stored until now
 *
 * A repack may take long: the connection's idle timeout is off while it
 * runs, and it stops (safely: repacking is interruptible at any point) when
 * the client goes away or the server shuts down. Only clients that may delete
 * get here with a store that repacks (app.ts gives the others a store that
 * refuses with PERMISSION, as for a delete).
 */
import type { FastifyInstance } from 'fastify';
import { ObnamError } from '../../lib/errors.js';
import { encodeRepackResult, parseRepackRequest, RepackResponse } from '../../lib/store/http-wire.js';
import type { Limits } from '../config.js';
import type { RepackLock } from '../repack-lock.js';
import { requestClient } from '../request.js';

export function repackRoutes(api: FastifyInstance, limits: Limits, lock: RepackLock, shutdown: AbortSignal): void {
  api.post('/repack', { bodyLimit: 4096 }, async (req, reply): Promise<RepackResponse> => {
    const { maxUnusedPercent, dryRun } = parseRepackRequest(req.body);
    const { store } = requestClient(req);
    const gone = new AbortController();
    const stop = () => gone.abort();
    // The response closes before it was sent: the client went away.
    reply.raw.once('close', stop);
    shutdown.addEventListener('abort', stop, { once: true });
    // The answer comes only when the repack is done: no idle timeout meanwhile.
    req.raw.socket?.setTimeout(0);
    try {
      const result = await lock.repack(req.obnamStorage!, store, { maxUnusedPercent, dryRun, signal: gone.signal });
      req.log.info({ client: req.obnamClient?.name, ...result, dryRun }, 'repacked at the request of a client');
      return encodeRepackResult(result);
    } catch (e) {
      if (shutdown.aborted) throw new ObnamError('NETWORK', 'the server is shutting down: the repack stopped (what it did so far stays done)');
      throw e;
    } finally {
      shutdown.removeEventListener('abort', stop);
      reply.raw.off('close', stop);
      req.raw.socket?.setTimeout(limits.idleTimeoutSeconds * 1000);
    }
  });

  api.post('/refresh', async (req, reply) => {
    const { store } = requestClient(req);
    await store.refresh?.();
    return reply.code(204).send();
  });
}
