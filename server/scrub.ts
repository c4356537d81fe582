/**
 * Scrub: reads every stored object of every client namespace and checks it
 * against the SHA-256 digest kept beside it (the storage engine's own
 * scrub), without any client key. Finds bit rot and tampering on the
 * server's disk. Also covers namespaces of removed clients, whose data is
 * still on disk.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describeError, errnoCode } from '../lib/errors.js';
import { KINDS } from '../lib/format/version.js';
import { readClients } from './clients.js';
import type { ServerDir } from './layout.js';
import { NamespaceStore, openNamespace } from './namespaces.js';

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
  if (!opts.client) {
    let entries: string[] = [];
    try {
      entries = await fs.readdir(d.dataDir);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
    for (const ns of entries) if (!targets.has(ns)) targets.set(ns, `(removed client, namespace ${ns})`);
  } else {
    for (const [ns, name] of targets) if (name !== opts.client) targets.delete(ns);
  }
  const report: ScrubReport = { namespaces: 0, objects: 0, problems: [] };
  const problem = (p: ScrubProblem) => {
    report.problems.push(p);
    opts.onProblem?.(p);
  };
  for (const [ns, client] of targets) {
    const dir = path.join(d.dataDir, ns);
    let store: NamespaceStore;
    try {
      store = await openNamespace(dir);
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
