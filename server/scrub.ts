/**
 * Scrub: reads every stored object of every client namespace and checks it
 * against the SHA-256 digest kept beside it (the storage engine's own
 * scrub), without any client key. Finds bit rot and tampering on the
 * server's disk. Also covers namespaces of removed clients, whose data is
 * still on disk.
 */
import { describeError } from '../lib/errors.js';
import { KINDS } from '../lib/format/version.js';
import { providerFor } from './admin.js';
import { readClients } from './clients.js';
import type { ServerDir } from './layout.js';
import type { NamespaceStore } from './storage.js';

export interface ScrubProblem {
  client: string;
  /** The damaged object, when the damage can be pinned to one. */
  kind?: string;
  id?: string;
  /** The file that holds the damage. */
  file: string;
  message: string;
}

export interface ScrubReport {
  namespaces: number;
  /** Objects in the namespaces checked. */
  objects: number;
  problems: ScrubProblem[];
}

export interface ScrubOptions {
  /** Only this client. */
  client?: string;
  onProblem?: (p: ScrubProblem) => void;
}

export async function scrub(d: ServerDir, opts: ScrubOptions = {}): Promise<ScrubReport> {
  const clients = await readClients(d.clientsFile);
  const targets = new Map(clients.map((c) => [c.namespace, c.name]));
  const provider = await providerFor(d);
  try {
    return await scrubWith(provider, targets, opts);
  } finally {
    await provider.close();
  }
}

async function scrubWith(provider: Awaited<ReturnType<typeof providerFor>>, targets: Map<string, string>, opts: ScrubOptions): Promise<ScrubReport> {
  if (!opts.client) {
    for (const ns of await provider.list()) if (!targets.has(ns)) targets.set(ns, `(removed client, namespace ${ns})`);
  } else {
    for (const [ns, name] of targets) if (name !== opts.client) targets.delete(ns);
  }
  const report: ScrubReport = { namespaces: 0, objects: 0, problems: [] };
  const problem = (p: ScrubProblem) => {
    report.problems.push(p);
    opts.onProblem?.(p);
  };
  for (const [ns, client] of targets) {
    const dir = provider.where(ns);
    let store: NamespaceStore;
    try {
      store = await provider.open(ns);
    } catch (e) {
      problem({ client, file: dir, message: describeError(e) });
      continue;
    }
    try {
      report.namespaces++;
      for (const kind of KINDS) for await (const _ of store.list(kind)) report.objects++;
      for await (const p of store.scrub()) problem({ client, ...p });
    } finally {
      await store.close();
    }
  }
  return report;
}
