/**
 * Adding and removing clients: the registry (clients.ts) and the storage of
 * their namespaces (storage.ts), for `obnam-server client` and tests.
 */
import { ClientRecord, newClient, registerClient, removeClient as unregisterClient } from './clients.js';
import { loadServerConfig } from './config.js';
import type { ServerDir } from './layout.js';
import { namespaceProvider } from './storage-config.js';
import type { NamespaceProvider } from './storage.js';

/** The namespace provider a server directory's config names. */
export async function providerFor(d: ServerDir, env: Record<string, string | undefined> = process.env): Promise<NamespaceProvider> {
  return namespaceProvider(d, (await loadServerConfig(d)).storage, env);
}

/** Adds a client and makes its namespace; returns its token (shown once). */
export async function addClient(d: ServerDir, name: string, appendOnly: boolean): Promise<{ token: string; client: ClientRecord; storage: string }> {
  const { token, client } = newClient(name, appendOnly);
  const provider = await providerFor(d);
  try {
    // The namespace has a fresh random name: it can be made before taking the registry's lock.
    await provider.create(client.namespace);
    try {
      await registerClient(d, client);
    } catch (e) {
      await provider.remove(client.namespace).catch(() => undefined);
      throw e;
    }
    return { token, client, storage: provider.where(client.namespace) };
  } finally {
    await provider.close();
  }
}

/** Removes a client's access (its objects stay); returns the record and where its objects are. */
export async function removeClient(d: ServerDir, name: string): Promise<{ client: ClientRecord; storage: string }> {
  const client = await unregisterClient(d, name);
  const provider = await providerFor(d);
  try {
    return { client, storage: provider.where(client.namespace) };
  } finally {
    await provider.close();
  }
}
