/**
 * Opens a store from its serialisable description: the one place that maps a
 * StoreSpec to an implementation (used by the CLI and by worker threads).
 */
import { ObnamError } from '../errors.js';
import { LocalStore } from './local.js';
import type { ObjectStore, StoreSpec } from './store.js';

export async function openStore(spec: StoreSpec): Promise<ObjectStore> {
  switch (spec.type) {
    case 'local':
      return LocalStore.open(spec.dir);
    default:
      throw new ObnamError('USAGE', `unsupported repository type ${(spec as { type: string }).type}`);
  }
}
