/**
 * The client registry: who may connect, with which rights, and the name of
 * their namespace. Stored in DIR/clients.json (no storage code here: making
 * and removing a namespace's storage is admin.ts's, with storage.ts):
 *
 *   {"version": 1, "clients": [{"name": "laptop", "token_sha256": "<hex>",
 *     "append_only": false, "namespace": "<32 hex>", "created": "<ISO time>"}]}
 *
 * A token is 32 random bytes (base64url); only its SHA-256 is stored, so the
 * file does not let anyone in. The running server notices changes to the file
 * (client add/remove) without a restart: it checks the file at most once a
 * second, and at once when it meets an unknown token.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { errnoCode, ObnamError } from '../lib/errors.js';
import type { ServerDir } from './layout.js';
import { ReloadingFile } from './reloading-file.js';
import { withFileLock, writeJsonFile } from './state-file.js';

export interface ClientRecord {
  name: string;
  token_sha256: string;
  append_only: boolean;
  namespace: string;
  created: string;
}

interface ClientsFile {
  version: 1;
  clients: ClientRecord[];
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export async function readClients(file: string): Promise<ClientRecord[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw new ObnamError('IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  let parsed: ClientsFile;
  try {
    parsed = JSON.parse(text) as ClientsFile;
  } catch {
    throw new ObnamError('CORRUPT', `${file} is not valid JSON`);
  }
  if (parsed?.version !== 1 || !Array.isArray(parsed.clients)) throw new ObnamError('CORRUPT', `${file}: unknown format`);
  for (const c of parsed.clients) {
    if (
      typeof c?.name !== 'string' ||
      !/^[0-9a-f]{64}$/.test(c.token_sha256) ||
      typeof c.append_only !== 'boolean' ||
      !/^[0-9a-f]{32}$/.test(c.namespace)
    ) {
      throw new ObnamError('CORRUPT', `${file}: malformed client entry ${JSON.stringify(c?.name)}`);
    }
  }
  return parsed.clients;
}

function writeClients(file: string, clients: ClientRecord[]): Promise<void> {
  const body: ClientsFile = { version: 1, clients };
  return writeJsonFile(file, body);
}


/** A new client record and its token (shown once: only its hash is kept); USAGE for a bad name. */
export function newClient(name: string, appendOnly: boolean): { token: string; client: ClientRecord } {
  if (!NAME_RE.test(name)) {
    throw new ObnamError('USAGE', `client name ${JSON.stringify(name)}: use up to 64 letters, digits, ".", "_", "@" or "-"`);
  }
  const token = randomBytes(32).toString('base64url');
  const client: ClientRecord = {
    name,
    token_sha256: hashToken(token),
    append_only: appendOnly,
    namespace: randomBytes(16).toString('hex'),
    created: new Date().toISOString(),
  };
  return { token, client };
}

/** Adds a client record; USAGE if the name is taken. */
export async function registerClient(d: ServerDir, client: ClientRecord): Promise<void> {
  await withFileLock(d.clientsFile, 'another client command', async () => {
    const clients = await readClients(d.clientsFile);
    if (clients.some((c) => c.name === client.name)) throw new ObnamError('USAGE', `there is already a client named ${client.name}`);
    await writeClients(d.clientsFile, [...clients, client]);
  });
}

/** Removes a client's access (its objects stay on disk); returns the removed record. */
export async function removeClient(d: ServerDir, name: string): Promise<ClientRecord> {
  return withFileLock(d.clientsFile, 'another client command', async () => {
    const clients = await readClients(d.clientsFile);
    const victim = clients.find((c) => c.name === name);
    if (!victim) throw new ObnamError('NOT_FOUND', `there is no client named ${name}`);
    await writeClients(
      d.clientsFile,
      clients.filter((c) => c !== victim),
    );
    return victim;
  });
}

/** The running server's view of clients.json, by token hash. */
export class ClientTable {
  private readonly table: ReloadingFile<Map<string, ClientRecord>>;

  constructor(file: string) {
    this.table = new ReloadingFile(file, async (f) => new Map((await readClients(f)).map((c) => [c.token_sha256, c])), new Map());
  }

  /**
   * The client a token belongs to, or undefined. Every call looks at the
   * file as it is now, so a client removed by `obnam-server client remove`
   * is refused from its next request on, and a new client is accepted at once.
   */
  async authenticate(token: string): Promise<ClientRecord | undefined> {
    return (await this.table.current()).get(hashToken(token));
  }

  /** Re-reads the file if it changed since it was last read. */
  async refresh(): Promise<void> {
    await this.table.current();
  }
}
