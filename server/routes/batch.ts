/**
 * Batched routes, for work that would otherwise cost a round trip per object:
 *
 *   POST /v1/has/KIND     {"ids": [...]}  ->  {"exists": [...]}
 *   POST /v1/batch/KIND   records (lib/store/http-wire.ts)  ->  {"created": [...]}
 *   POST /v1/fetch/KIND   {"ids": [...]}  ->  records (lib/store/http-wire.ts)
 *
 * A batch upload is checked completely (format, every digest) before any of
 * it is stored, so a damaged or hostile batch changes nothing; the answer is
 * sent only once every object in it is durable.
 */
import type { FastifyInstance } from 'fastify';
import { sha256 } from '../../lib/crypto/hash.js';
import { ObnamError } from '../../lib/errors.js';
import { isId } from '../../lib/format/ids.js';
import {
  BATCH_CONTENT_TYPE,
  BatchResponse,
  decodeBatch,
  encodeFetch,
  FETCH_DAMAGED,
  FETCH_LATER,
  FETCH_MAX_IDS,
  FETCH_MISSING,
  HasResponse,
} from '../../lib/store/http-wire.js';
import { requestClient } from '../request.js';
import type { Limits } from '../config.js';
import { parseKind } from './objects.js';

/** Objects of one batch written at once (each holds a file descriptor while it is written). */
const BATCH_WRITERS = 16;

export function batchRoutes(api: FastifyInstance, limits: Limits): void {
  api.post('/has/:kind', { bodyLimit: limits.maxLookupIds * 70 + 1024 }, async (req): Promise<HasResponse> => {
    const kind = parseKind((req.params as { kind?: unknown }).kind);
    const ids = (req.body as { ids?: unknown } | undefined)?.ids;
    if (!Array.isArray(ids)) throw new ObnamError('USAGE', 'expected a JSON body {"ids": [...]}');
    if (ids.length > limits.maxLookupIds) throw new ObnamError('TOO_LARGE', `at most ${limits.maxLookupIds} ids per lookup`);
    if (!ids.every(isId)) throw new ObnamError('USAGE', 'malformed object id in lookup: expected 64 lowercase hex digits');
    const { store } = requestClient(req);
    const exists = await store.hasMany(kind, ids);
    // "Present" must mean durable: a client skips uploading what is present.
    if (exists.includes(true)) await store.flush();
    return { exists };
  });

  api.post('/fetch/:kind', { bodyLimit: FETCH_MAX_IDS * 70 + 1024 }, async (req, reply) => {
    const kind = parseKind((req.params as { kind?: unknown }).kind);
    const ids = (req.body as { ids?: unknown } | undefined)?.ids;
    if (!Array.isArray(ids)) throw new ObnamError('USAGE', 'expected a JSON body {"ids": [...]}');
    if (ids.length > FETCH_MAX_IDS) throw new ObnamError('TOO_LARGE', `at most ${FETCH_MAX_IDS} ids per fetch`);
    if (!ids.every(isId)) throw new ObnamError('USAGE', 'malformed object id in fetch: expected 64 lowercase hex digits');
    const { store } = requestClient(req);
    await store.flush(); // what is sent must be durable, as for single reads
    let budget = limits.maxBatchBytes;
    const results: { id: string; digest?: Buffer; data?: Uint8Array; status?: number }[] = [];
    if (store.getManyWithDigest) {
      const many = await store.getManyWithDigest(kind, ids, budget);
      many.forEach((r, i) => {
        const id = ids[i]!;
        if ('data' in r) results.push({ id, digest: r.digest, data: r.data });
        else if ('damaged' in r) {
          req.log.warn({ kind, id }, 'damaged object requested');
          results.push({ id, status: FETCH_DAMAGED });
        } else results.push({ id, status: 'later' in r ? FETCH_LATER : FETCH_MISSING });
      });
      return reply.header('content-type', BATCH_CONTENT_TYPE).send(Buffer.concat(encodeFetch(results)));
    }
    for (const id of ids) {
      if (budget <= 0) {
        results.push({ id, status: FETCH_LATER });
        continue;
      }
      try {
        const { data, digest } = await store.getWithDigest(kind, id);
        budget -= data.length;
        results.push({ id, digest, data });
      } catch (e) {
        if (!(e instanceof ObnamError) || (e.code !== 'NOT_FOUND' && e.code !== 'CORRUPT')) throw e;
        if (e.code === 'CORRUPT') req.log.warn({ kind, id }, 'damaged object requested');
        results.push({ id, status: e.code === 'NOT_FOUND' ? FETCH_MISSING : FETCH_DAMAGED });
      }
    }
    return reply.header('content-type', BATCH_CONTENT_TYPE).send(Buffer.concat(encodeFetch(results)));
  });

  api.post('/batch/:kind', { bodyLimit: limits.maxBatchBytes }, async (req): Promise<BatchResponse> => {
    const kind = parseKind((req.params as { kind?: unknown }).kind);
    if (!Buffer.isBuffer(req.body)) throw new ObnamError('USAGE', 'a batch upload needs Content-Type application/vnd.obnam.batch');
    const records = decodeBatch(req.body, limits.maxBatchObjects);
    for (const r of records) {
      if (!sha256(r.data).equals(r.digest)) {
        throw new ObnamError('CORRUPT', `${kind} ${r.id}: received bytes do not match the sender's SHA-256 digest; nothing of this batch was stored`);
      }
    }
    const { store } = requestClient(req);
    const created = new Array<boolean>(records.length);
    let next = 0;
    const writer = async () => {
      while (next < records.length) {
        const i = next++;
        const r = records[i]!;
        created[i] = await store.put(kind, r.id, r.data, { sha256: r.digest });
      }
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_WRITERS, records.length) }, writer));
    await store.flush();
    return { created };
  });
}
