/**
 * obnam-server namespace add|list|remove NAME, grant CLIENT NAMESPACE
 * --access read|append|full, revoke CLIENT NAMESPACE: namespaces shared by
 * several clients (server/acl.ts). Changes apply to a running server from
 * its next request.
 */
import { ObnamError } from '../../lib/errors.js';
import { aclFile, addNamespace, grantAccess, parseAccess, readAcl, removeNamespace, revokeAccess, storageLocation } from '../acl.js';
import { checkServerDir, resolveServerDir } from '../layout.js';

export interface NamespaceArgs {
  dir?: string;
  config?: string;
  name?: string;
  client?: string;
  namespace?: string;
  access?: string;
  json?: boolean;
}

async function serverDirOf(args: NamespaceArgs) {
  const d = resolveServerDir(args);
  await checkServerDir(d);
  return d;
}

export async function namespaceAddCommand(args: NamespaceArgs): Promise<number> {
  const d = await serverDirOf(args);
  const n = await addNamespace(d, args.name!);
  process.stdout.write(`added namespace ${n.name}; give clients access with obnam-server grant CLIENT ${n.name} --access read|append|full\n`);
  return 0;
}

export async function namespaceListCommand(args: NamespaceArgs): Promise<number> {
  const d = await serverDirOf(args);
  const acl = await readAcl(aclFile(d));
  const rows = await Promise.all(
    acl.namespaces.map(async (n) => ({
      name: n.name,
      created: n.created,
      storage: await storageLocation(d, n.storage),
      grants: acl.grants.filter((g) => g.namespace === n.name).map((g) => ({ client: g.client, access: g.access })),
    })),
  );
  if (args.json) {
    process.stdout.write(JSON.stringify(rows) + '\n');
    return 0;
  }
  for (const r of rows) {
    const grants = r.grants.map((g) => `${g.client}:${g.access}`).join(',') || '-';
    process.stdout.write(`${r.name}\t${grants}\t${r.created}\t${r.storage}\n`);
  }
  return 0;
}

export async function namespaceRemoveCommand(args: NamespaceArgs): Promise<number> {
  const d = await serverDirOf(args);
  const n = await removeNamespace(d, args.name!);
  process.stdout.write(
    `removed namespace ${n.name} and its grants; its objects remain in ${await storageLocation(d, n.storage)} (delete them to free the space)\n`,
  );
  return 0;
}

export async function grantCommand(args: NamespaceArgs): Promise<number> {
  const d = await serverDirOf(args);
  if (args.access === undefined) throw new ObnamError('USAGE', 'grant needs --access read, append or full');
  const g = await grantAccess(d, args.client!, args.namespace!, parseAccess(args.access));
  process.stdout.write(`client ${g.client} has ${g.access} access to namespace ${g.namespace}\n`);
  return 0;
}

export async function revokeCommand(args: NamespaceArgs): Promise<number> {
  const d = await serverDirOf(args);
  const g = await revokeAccess(d, args.client!, args.namespace!);
  process.stdout.write(`client ${g.client} no longer has access to namespace ${g.namespace}\n`);
  return 0;
}
