/**
 * Repacking a server directory's namespaces without any client key
 * (`obnam-server repack`, format-spec 14.8): each namespace's store rewrites
 * the packs whose unused part is above the threshold, copying live records
 * byte for byte, and removes the old packs. Safe while `serve` runs on the
 * same directory or bucket: the stores are safe for several processes, and a
 * server that finds a pack gone reads the store's packs again.
 *
 * Which namespaces: every one with storage (clients', named ones, and those
 * of removed clients, whose data is still there), or the one of a client or
 * a named namespace.
 */
import { describeError, ObnamError } from '../lib/errors.js';
import type { RepackResult } from '../lib/store/store.js';
import { aclFile, readAcl } from './acl.js';
import { providerFor } from './admin.js';
import { readClients } from './clients.js';
import type { ServerDir } from './layout.js';
import type { NamespaceProvider } from './storage.js';

export interface RepackTarget {
  /** The storage id (DIR/data/ID, or PREFIX/data/ID in a bucket). */
  storage: string;
  /** What it is, for people: `client alice`, `namespace family`, `removed client (storage ID)`. */
  label: string;
  /** Where it is. */
  where: string;
}

export interface NamespaceRepack extends RepackTarget {
  result?: RepackResult;
  /** Why this namespace could not be repacked (the others still are). */
  error?: string;
}

export interface ServerRepackOptions {
  /** Only this client's own namespace. */
  client?: string;
  /** Only this named namespace. */
  namespace?: string;
  maxUnusedPercent: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** A namespace's repack starts. */
  onStart?: (t: RepackTarget) => void;
  onProgress?: (t: RepackTarget, done: number, total: number) => void;
  /** A namespace's repack ended (result or error). */
  onDone?: (r: NamespaceRepack) => void;
}

export async function repackServer(d: ServerDir, opts: ServerRepackOptions): Promise<NamespaceRepack[]> {
  const provider = await providerFor(d);
  try {
    const targets = await repackTargets(d, provider, opts);
    const out: NamespaceRepack[] = [];
    for (const t of targets) {
      if (opts.signal?.aborted) throw new ObnamError('ABORTED', 'repack interrupted');
      opts.onStart?.(t);
      const r = await repackOne(provider, t, opts);
      out.push(r);
      opts.onDone?.(r);
    }
    return out;
  } finally {
    await provider.close();
  }
}

async function repackOne(provider: NamespaceProvider, t: RepackTarget, opts: ServerRepackOptions): Promise<NamespaceRepack> {
  let store;
  try {
    store = await provider.open(t.storage);
  } catch (e) {
    return { ...t, error: `cannot open: ${describeError(e)}` };
  }
  try {
    if (!store.repack) return { ...t, error: 'this storage cannot repack' };
    const result = await store.repack({
      maxUnusedPercent: opts.maxUnusedPercent,
      dryRun: opts.dryRun,
      signal: opts.signal,
      onProgress: (done, total) => opts.onProgress?.(t, done, total),
    });
    return { ...t, result };
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'ABORTED') throw e;
    return { ...t, error: describeError(e) };
  } finally {
    await store.close().catch(() => undefined);
  }
}

/** The namespaces to repack, labelled; USAGE for an unknown client or namespace name. */
async function repackTargets(d: ServerDir, provider: NamespaceProvider, opts: ServerRepackOptions): Promise<RepackTarget[]> {
  const clients = await readClients(d.clientsFile);
  const acl = await readAcl(aclFile(d));
  const target = (storage: string, label: string): RepackTarget => ({ storage, label, where: provider.where(storage) });
  if (opts.client !== undefined) {
    const c = clients.find((x) => x.name === opts.client);
    if (!c) throw new ObnamError('USAGE', `no client ${JSON.stringify(opts.client)} (see obnam-server client list)`);
    return [target(c.namespace, `client ${c.name}`)];
  }
  if (opts.namespace !== undefined) {
    const n = acl.namespaces.find((x) => x.name === opts.namespace);
    if (!n) throw new ObnamError('USAGE', `no namespace ${JSON.stringify(opts.namespace)} (see obnam-server namespace list; a client's own namespace is --client NAME)`);
    return [target(n.storage, `namespace ${n.name}`)];
  }
  const labels = new Map<string, string>();
  for (const c of clients) labels.set(c.namespace, `client ${c.name}`);
  for (const n of acl.namespaces) labels.set(n.storage, `namespace ${n.name}`);
  return (await provider.list()).sort().map((s) => target(s, labels.get(s) ?? `removed client or namespace (storage ${s})`));
}
