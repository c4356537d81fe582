/**
 * Namespaces as local directory stores, DIR/data/NAMESPACE/ (the default,
 * `storage: local`). Serving stores flush by journal (one fsync shared by the
 * requests in flight; format-spec/local-store.md section 7).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errnoCode, ObnamError } from '../lib/errors.js';
import { LocalStore } from '../lib/store/local.js';
import type { NamespaceProvider, NamespaceStore } from './storage.js';

const NAMESPACE = /^[0-9a-f]{32}$/;

export class LocalNamespaces implements NamespaceProvider {
  constructor(readonly location: string) {}

  where(namespace: string): string {
    return path.join(this.location, namespace);
  }

  async create(namespace: string): Promise<void> {
    await (await LocalStore.create(this.where(namespace))).close();
  }

  open(namespace: string, opts: { serving?: boolean } = {}): Promise<NamespaceStore> {
    return LocalStore.open(this.where(namespace), { journalFlush: !!opts.serving });
  }

  async remove(namespace: string): Promise<void> {
    if (!NAMESPACE.test(namespace)) throw new ObnamError('USAGE', `invalid namespace ${namespace}`);
    await fs.rm(this.where(namespace), { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    try {
      return (await fs.readdir(this.location)).filter((n) => NAMESPACE.test(n));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw new ObnamError('IO', `cannot list ${this.location}: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {}
}
