/**
 * What the /v1 hooks attach to a request: the authenticated client and its
 * namespace's store (see app.ts).
 */
import type { FastifyRequest } from 'fastify';
import { ObnamError } from '../lib/errors.js';
import type { NamespaceStore } from './namespaces.js';
import type { ClientRecord } from './clients.js';

declare module 'fastify' {
  interface FastifyRequest {
    obnamClient: ClientRecord | null;
    obnamStore: NamespaceStore | null;
    /** The storage id of the namespace the request works on (the client's own or a named one). */
    obnamStorage: string | null;
  }
  interface FastifyReply {
    /** The full message of an error reply, for the request log line. */
    obnamError: string | null;
  }
}

/** The authenticated client of a request that passed the /v1 hooks. */
export function requestClient(req: FastifyRequest): { client: ClientRecord; store: NamespaceStore } {
  if (!req.obnamClient || !req.obnamStore) throw new ObnamError('INTERNAL', 'request without an authenticated client');
  return { client: req.obnamClient, store: req.obnamStore };
}
