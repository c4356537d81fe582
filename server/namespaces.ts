/**
 * One store per client namespace, opened on first use and shared by all of
 * that client's requests. The engine is the one obnam uses for local
 * repositories (lib/store/local.ts): this module is the only place in
 * server/ that names it.
 */
import { ObnamError } from '../lib/errors.js';
import { LocalStore } from '../lib/store/local.js';
import type { ClientRecord } from './clients.js';
import { namespaceDir, ServerDir } from './layout.js';

/** The storage engine of a namespace. */
export { LocalStore as NamespaceStore };

/** Creates the storage of a new namespace. */
export async function createNamespace(dir: string): Promise<void> {
  await (await LocalStore.create(dir)).close();
}

/** Opens the storage of an existing namespace (scrub, tests). */
export function openNamespace(dir: string): Promise<LocalStore> {
  return LocalStore.open(dir);
}

export class Namespaces {
  private readonly stores = new Map<string, Promise<LocalStore>>();

  constructor(private readonly dir: ServerDir) {}

  store(client: ClientRecord): Promise<LocalStore> {
    let s = this.stores.get(client.namespace);
    if (!s) {
      // Every upload is acknowledged after a flush: the journal makes that one fsync, not one pack.
      s = LocalStore.open(namespaceDir(this.dir, client), { journalFlush: true }).catch((e: unknown) => {
        this.stores.delete(client.namespace);
        throw new ObnamError('INTERNAL', `storage of client ${client.name} is missing or unreadable: ${(e as Error).message}`);
      });
      this.stores.set(client.namespace, s);
    }
    return s;
  }

  /** Makes everything stored durable and closes every open store. */
  async close(): Promise<void> {
    const all = await Promise.allSettled(this.stores.values());
    await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
  }
}
