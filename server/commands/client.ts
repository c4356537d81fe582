/**
 * obnam-server client add NAME [--append-only] | list | remove NAME:
 * who may use the server. `add` prints the new token alone on stdout (it is
 * shown only once; the server keeps only its SHA-256).
 */
import { ObnamError } from '../../lib/errors.js';
import { addClient, providerFor, removeClient } from '../admin.js';
import { readClients } from '../clients.js';
import { checkServerDir, resolveServerDir } from '../layout.js';

export interface ClientArgs {
  dir?: string;
  config?: string;
  name?: string;
  'append-only'?: boolean;
  json?: boolean;
}

export async function clientAddCommand(args: ClientArgs): Promise<number> {
  const d = resolveServerDir(args);
  await checkServerDir(d);
  const { token, client } = await addClient(d, args.name!, !!args['append-only']);
  process.stdout.write(`${token}\n`);
  process.stderr.write(`added client ${client.name}${client.append_only ? ' (append-only)' : ''}; the token above is shown only this once\n`);
  return 0;
}

export async function clientListCommand(args: ClientArgs): Promise<number> {
  const d = resolveServerDir(args);
  await checkServerDir(d);
  const clients = await readClients(d.clientsFile);
  const provider = await providerFor(d);
  const where = (c: { namespace: string }) => provider.where(c.namespace);
  await provider.close();
  if (args.json) {
    process.stdout.write(
      JSON.stringify(clients.map((c) => ({ name: c.name, append_only: c.append_only, created: c.created, storage: where(c) }))) + '\n',
    );
    return 0;
  }
  for (const c of clients) {
    process.stdout.write(`${c.name}\t${c.append_only ? 'append-only' : 'read-write'}\t${c.created}\t${where(c)}\n`);
  }
  return 0;
}

export async function clientRemoveCommand(args: ClientArgs): Promise<number> {
  const d = resolveServerDir(args);
  await checkServerDir(d);
  if (!args.name) throw new ObnamError('USAGE', 'client remove needs a NAME');
  const { client: c, storage } = await removeClient(d, args.name);
  process.stdout.write(`removed client ${c.name}; its objects remain in ${storage} (delete them to free the space)\n`);
  return 0;
}
