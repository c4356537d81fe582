/**
 * Named namespaces and access grants (format-spec/sharing.md section 11):
 * besides each client's own namespace, the server keeps namespaces that
 * several clients may be granted read, append or full access to. Stored in
 * DIR/namespaces.json:
 *
 *   {"version": 1,
 *    "namespaces": [{"name": "family", "storage": "<32 hex>", "created": "<ISO time>"}],
 *    "grants": [{"client": "laptop", "client_id": "<the client's own namespace id>",
 *                "namespace": "family", "access": "read" | "append" | "full"}]}
 *
 * A grant names the client by its record's random namespace id as well as its
 * name, so a client removed and added again under the same name does not
 * inherit the old client's grants. The running server re-reads the file when
 * it changes (AclTable), so grants and revocations apply from the next request.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errnoCode, ObnamError } from '../lib/errors.js';
import { readClients } from './clients.js';
import type { ServerDir } from './layout.js';
import { ReloadingFile } from './reloading-file.js';
import { withFileLock, writeJsonFile } from './state-file.js';
import { providerFor } from './admin.js';

export type Access = 'read' | 'append' | 'full';
export const ACCESS_LEVELS: readonly Access[] = ['read', 'append', 'full'];

export interface NamespaceRecord {
  name: string;
  /** The directory name of its storage under DIR/data. */
  storage: string;
  created: string;
}

export interface GrantRecord {
  client: string;
  client_id: string;
  namespace: string;
  access: Access;
}

interface AclFile {
  version: 1;
  namespaces: NamespaceRecord[];
  grants: GrantRecord[];
}

/** Names that would collide with the routes at the root of the API. */
const RESERVED = new Set(['v1', 'health']);
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function aclFile(d: ServerDir): string {
  return path.join(d.dir, 'namespaces.json');
}

export function checkNamespaceName(name: string): void {
  if (!NAME_RE.test(name) || RESERVED.has(name)) {
    throw new ObnamError(
      'USAGE',
      `namespace name ${JSON.stringify(name)}: use 1 to 64 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit (not "v1" or "health")`,
    );
  }
}

export function parseAccess(s: unknown): Access {
  if (typeof s !== 'string' || !(ACCESS_LEVELS as readonly string[]).includes(s)) {
    throw new ObnamError('USAGE', `--access must be read, append or full, not ${JSON.stringify(s)}`);
  }
  return s as Access;
}

export async function readAcl(file: string): Promise<AclFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { version: 1, namespaces: [], grants: [] };
    throw new ObnamError('IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  let parsed: AclFile;
  try {
    parsed = JSON.parse(text) as AclFile;
  } catch {
    throw new ObnamError('CORRUPT', `${file} is not valid JSON`);
  }
  if (parsed?.version !== 1 || !Array.isArray(parsed.namespaces) || !Array.isArray(parsed.grants)) {
    throw new ObnamError('CORRUPT', `${file}: unknown format`);
  }
  for (const n of parsed.namespaces) {
    if (typeof n?.name !== 'string' || !NAME_RE.test(n.name) || !/^[0-9a-f]{32}$/.test(n.storage)) {
      throw new ObnamError('CORRUPT', `${file}: malformed namespace entry ${JSON.stringify(n?.name)}`);
    }
  }
  for (const g of parsed.grants) {
    if (
      typeof g?.client !== 'string' ||
      !/^[0-9a-f]{32}$/.test(g.client_id) ||
      !parsed.namespaces.some((n) => n.name === g.namespace) ||
      !(ACCESS_LEVELS as readonly string[]).includes(g.access)
    ) {
      throw new ObnamError('CORRUPT', `${file}: malformed grant entry for ${JSON.stringify(g?.client)}`);
    }
  }
  return parsed;
}



// The storage of a named namespace is made, found and dropped like a
// client's, through the server's namespace provider (storage.ts); these three
// are the only places here that know how.
async function createStorage(d: ServerDir, id: string): Promise<void> {
  const provider = await providerFor(d);
  try {
    await provider.create(id);
  } finally {
    await provider.close();
  }
}
async function dropStorage(d: ServerDir, id: string): Promise<void> {
  const provider = await providerFor(d);
  try {
    await provider.remove(id);
  } finally {
    await provider.close();
  }
}
/** Where a named namespace's objects are (for messages and listings). */
export async function storageLocation(d: ServerDir, id: string): Promise<string> {
  const provider = await providerFor(d);
  try {
    return provider.where(id);
  } finally {
    await provider.close();
  }
}

export async function addNamespace(d: ServerDir, name: string): Promise<NamespaceRecord> {
  checkNamespaceName(name);
  const rec: NamespaceRecord = { name, storage: randomBytes(16).toString('hex'), created: new Date().toISOString() };
  // A fresh random storage name: it can be made before taking the lock.
  await createStorage(d, rec.storage);
  try {
    await withFileLock(aclFile(d), 'another namespace or grant command', async () => {
      const acl = await readAcl(aclFile(d));
      if (acl.namespaces.some((n) => n.name === name)) throw new ObnamError('USAGE', `there is already a namespace named ${name}`);
      await writeJsonFile(aclFile(d), { ...acl, namespaces: [...acl.namespaces, rec] });
    });
  } catch (e) {
    await dropStorage(d, rec.storage);
    throw e;
  }
  return rec;
}

/** Removes a namespace and its grants; its objects stay on disk (as a removed client's do). */
export async function removeNamespace(d: ServerDir, name: string): Promise<NamespaceRecord> {
  return withFileLock(aclFile(d), 'another namespace or grant command', async () => {
    const acl = await readAcl(aclFile(d));
    const victim = acl.namespaces.find((n) => n.name === name);
    if (!victim) throw new ObnamError('NOT_FOUND', `there is no namespace named ${name}`);
    await writeJsonFile(aclFile(d), {
      version: 1,
      namespaces: acl.namespaces.filter((n) => n !== victim),
      grants: acl.grants.filter((g) => g.namespace !== name),
    });
    return victim;
  });
}

/** Gives a client access to a namespace, replacing any grant it has there. */
export async function grantAccess(d: ServerDir, clientName: string, namespace: string, access: Access): Promise<GrantRecord> {
  const client = (await readClients(d.clientsFile)).find((c) => c.name === clientName);
  if (!client) throw new ObnamError('NOT_FOUND', `there is no client named ${clientName}`);
  return withFileLock(aclFile(d), 'another namespace or grant command', async () => {
    const acl = await readAcl(aclFile(d));
    if (!acl.namespaces.some((n) => n.name === namespace)) throw new ObnamError('NOT_FOUND', `there is no namespace named ${namespace}`);
    const grant: GrantRecord = { client: client.name, client_id: client.namespace, namespace, access };
    const others = acl.grants.filter((g) => !(g.client_id === client.namespace && g.namespace === namespace));
    await writeJsonFile(aclFile(d), { ...acl, grants: [...others, grant] });
    return grant;
  });
}

/** Removes a client's grant on a namespace. */
export async function revokeAccess(d: ServerDir, clientName: string, namespace: string): Promise<GrantRecord> {
  return withFileLock(aclFile(d), 'another namespace or grant command', async () => {
    const acl = await readAcl(aclFile(d));
    const victim = acl.grants.find((g) => g.client === clientName && g.namespace === namespace);
    if (!victim) throw new ObnamError('NOT_FOUND', `client ${clientName} has no grant on namespace ${namespace}`);
    await writeJsonFile(aclFile(d), { ...acl, grants: acl.grants.filter((g) => g !== victim) });
    return victim;
  });
}

/** What a granted client may do in a namespace, and where its objects are. */
export interface NamespaceAccess {
  namespace: string;
  storage: string;
  access: Access;
}

/**
 * The running server's view of namespaces.json. `lookup` is the one decision
 * for a request naming a namespace: one map lookup keyed by the client and the
 * name, the same whether the namespace is missing or merely not granted.
 */
export class AclTable {
  private readonly table: ReloadingFile<Map<string, NamespaceAccess>>;

  constructor(file: string) {
    this.table = new ReloadingFile(
      file,
      async (f) => {
        const acl = await readAcl(f);
        const storage = new Map(acl.namespaces.map((n) => [n.name, n.storage]));
        return new Map(
          acl.grants.map((g) => [`${g.client_id}/${g.namespace}`, { namespace: g.namespace, storage: storage.get(g.namespace)!, access: g.access }]),
        );
      },
      new Map(),
    );
  }

  async lookup(clientId: string, namespace: string): Promise<NamespaceAccess | undefined> {
    return (await this.table.current()).get(`${clientId}/${namespace}`);
  }

  /** Re-reads the file if it changed since it was last read. */
  async refresh(): Promise<void> {
    await this.table.current();
  }
}
