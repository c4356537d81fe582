/**
 * Which namespace a /v1 request works on: the client's own, or, for a URL
 * /NAMESPACE/v1/..., a named namespace the client has a grant for
 * (server/acl.ts, format-spec/sharing.md section 11). The URL is rewritten
 * before routing (rewriteNamespaceUrl), so named namespaces get exactly the
 * routes, hooks and limits of the client's own; selectNamespace then decides
 * access with one grant lookup, and a namespace without a grant gets the
 * answer of one that does not exist.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { ObnamError } from '../lib/errors.js';
import type { AclTable, NamespaceAccess } from './acl.js';
import type { ClientRecord } from './clients.js';

type Tagged = IncomingMessage & { obnamNamespace?: string };

const NAMED = /^\/([^/?#]+)(\/v1(?:[/?#].*)?)$/s;

/** Fastify's rewriteUrl: /NAMESPACE/v1/... to /v1/..., remembering NAMESPACE on the raw request. */
export function rewriteNamespaceUrl(raw: IncomingMessage): string {
  const url = raw.url ?? '/';
  const m = NAMED.exec(url);
  if (!m || m[1] === 'v1') return url;
  let name: string;
  try {
    name = decodeURIComponent(m[1]!);
  } catch {
    name = m[1]!; // matches no namespace: answered like any other missing one
  }
  (raw as Tagged).obnamNamespace = name;
  return m[2]!;
}

/** The client record and storage a request works on; NOT_FOUND ("no such namespace") without a grant. */
export async function selectNamespace(
  req: FastifyRequest,
  client: ClientRecord,
  acl: AclTable | undefined,
): Promise<{ client: ClientRecord; storage: ClientRecord }> {
  const name = (req.raw as Tagged).obnamNamespace;
  if (name === undefined) return { client, storage: client };
  const granted = acl ? await acl.lookup(client.namespace, name) : undefined;
  if (!granted) throw new ObnamError('NOT_FOUND', 'no such namespace');
  checkAccess(granted, client, req);
  return {
    // The delete route refuses append-only clients: in a namespace, that is every access but full.
    client: { ...client, append_only: client.append_only || granted.access !== 'full' },
    storage: { ...client, name: `namespace ${granted.namespace}`, namespace: granted.storage },
  };
}

/** PERMISSION unless the grant allows the request: read (reads only), append (and create-if-absent uploads), full (and deletes, repacks). */
function checkAccess(granted: NamespaceAccess, client: ClientRecord, req: FastifyRequest): void {
  const route = req.routeOptions.url ?? '';
  // A repack gives back the space of deleted objects: it needs what a delete needs.
  const deletes = req.method === 'DELETE' || (req.method === 'POST' && route.endsWith('/repack'));
  const writes = req.method === 'PUT' || (req.method === 'POST' && route.endsWith('/batch/:kind'));
  const allowed = deletes ? granted.access === 'full' : writes ? granted.access !== 'read' : true;
  if (!allowed) {
    throw new ObnamError(
      'PERMISSION',
      `client ${client.name} has ${granted.access} access to namespace ${granted.namespace}: it may not ${deletes ? (req.method === 'POST' ? 'repack or delete' : 'delete') : 'store'} objects there`,
    );
  }
}
