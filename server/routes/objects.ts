/**
 * Routes for single objects and listings of the authenticated client's own
 * namespace (format-spec/server-api.md):
 *
 *   GET    /v1/objects/KIND?after=ID&limit=N   one page of ids
 *   GET    /v1/objects/KIND/ID                 the bytes and their digest
 *   HEAD   /v1/objects/KIND/ID                 exists? (and the digest)
 *   PUT    /v1/objects/KIND/ID                 store if absent (digest checked)
 *   DELETE /v1/objects/KIND/ID                 remove (not for append-only clients)
 *
 * Every answer depends only on the client's own namespace, so an object of
 * another client is indistinguishable from one that does not exist. Every
 * answer is about durable state: a put is acknowledged after the store's
 * flush, and an object is reported present only once it is durable.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ObnamError } from '../../lib/errors.js';
import { isId } from '../../lib/format/ids.js';
import { isKind, Kind } from '../../lib/format/version.js';
import { DIGEST_HEADER, LIST_MAX_LIMIT, ListPage, OCTET_STREAM } from '../../lib/store/http-wire.js';
import type { Limits } from '../config.js';
import { requestClient } from '../request.js';

export function parseKind(kind: unknown): Kind {
  if (typeof kind !== 'string' || !isKind(kind)) throw new ObnamError('USAGE', 'unknown object kind');
  return kind;
}

function parseObject(params: unknown): { kind: Kind; id: string } {
  const p = params as { kind?: unknown; id?: unknown };
  const kind = parseKind(p.kind);
  if (!isId(p.id)) throw new ObnamError('USAGE', 'malformed object id: expected 64 lowercase hex digits');
  return { kind, id: p.id };
}

function objectHeaders(reply: FastifyReply, digest: Buffer): FastifyReply {
  return reply.header('content-type', OCTET_STREAM).header(DIGEST_HEADER, digest.toString('hex'));
}

export function objectRoutes(api: FastifyInstance, limits: Limits): void {
  api.get('/objects/:kind', async (req): Promise<ListPage> => {
    const kind = parseKind((req.params as { kind?: unknown }).kind);
    const q = req.query as { after?: unknown; limit?: unknown };
    if (q.after !== undefined && !isId(q.after)) throw new ObnamError('USAGE', 'after: expected an object id');
    const limit = q.limit === undefined ? LIST_MAX_LIMIT : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > LIST_MAX_LIMIT) {
      throw new ObnamError('USAGE', `limit: expected a whole number from 1 to ${LIST_MAX_LIMIT}`);
    }
    const { store } = requestClient(req);
    await store.flush(); // list only what is durable
    const ids = await store.listPage(kind, q.after as string | undefined, limit);
    return { ids, next: ids.length === limit ? ids[ids.length - 1]! : null };
  });

  api.get('/objects/:kind/:id', async (req, reply) => {
    const { kind, id } = parseObject(req.params);
    const { store } = requestClient(req);
    // The store checks the bytes against the kept digest as it reads them (422 if damaged).
    const { data, digest } = await store.getWithDigest(kind, id);
    return objectHeaders(reply, digest).send(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });

  api.head('/objects/:kind/:id', async (req, reply) => {
    const { kind, id } = parseObject(req.params);
    const { store } = requestClient(req);
    const digest = await store.digest(kind, id);
    await store.flush(); // "present" means durable
    return objectHeaders(reply, digest).send();
  });

  api.put('/objects/:kind/:id', { bodyLimit: limits.maxObjectBytes }, async (req, reply) => {
    const { kind, id } = parseObject(req.params);
    const digest = req.headers[DIGEST_HEADER];
    if (typeof digest !== 'string' || !/^[0-9a-fA-F]{64}$/.test(digest)) {
      throw new ObnamError('USAGE', `missing or malformed ${DIGEST_HEADER} header: expected the SHA-256 of the body in hex`);
    }
    const body = req.body ?? Buffer.alloc(0);
    if (!Buffer.isBuffer(body)) throw new ObnamError('USAGE', `an object upload needs Content-Type ${OCTET_STREAM}`);
    const { store } = requestClient(req);
    const created = await store.put(kind, id, body, { sha256: Buffer.from(digest, 'hex') });
    // Acknowledged only once durable (concurrent requests share the flush).
    await store.flush();
    return reply.code(created ? 201 : 200).send();
  });

  api.delete('/objects/:kind/:id', async (req, reply) => {
    const { kind, id } = parseObject(req.params);
    // Append-only clients get a store that refuses (lib/store/guard.ts, applied in app.ts).
    await requestClient(req).store.delete(kind, id);
    return reply.code(204).send();
  });
}
