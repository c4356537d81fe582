/**
 * Opens a store from its serialisable description: the one place that maps a
 * StoreSpec to an implementation. (Worker threads do not open stores: they
 * reach the main thread's store through lib/workers/store-proxy.ts.)
 */
import * as fs from 'node:fs/promises';
import { ObnamError } from '../errors.js';
import { HttpStore } from './http.js';
import { LocalStore } from './local.js';
import type { ObjectStore, StoreSpec } from './store.js';

/** OBNAM_PACK_SIZE (bytes) tunes the target pack size of local stores; tests use small packs. */
function packSizeFromEnv(): number | undefined {
  const v = process.env.OBNAM_PACK_SIZE;
  if (!v) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 4096 || n > 1 << 30) throw new ObnamError('USAGE', 'OBNAM_PACK_SIZE must be a byte count from 4096 to 1 GiB');
  return n;
}

export async function openStore(spec: StoreSpec): Promise<ObjectStore> {
  switch (spec.type) {
    case 'local':
      return LocalStore.open(spec.dir, { packSize: packSizeFromEnv() });
    case 'http':
      return HttpStore.open(spec, spec.requestTimeout ? { deadlineMs: spec.requestTimeout * 1000 } : {});
    default:
      throw new ObnamError('USAGE', `unsupported repository type ${(spec as { type: string }).type}`);
  }
}

/** Prepares an empty store for a new repository: a new local directory, or a server namespace. */
export async function createStore(spec: StoreSpec): Promise<ObjectStore> {
  if (spec.type !== 'local') return openStore(spec);
  // A store without a config is what an interrupted init leaves: init may finish it.
  if (await LocalStore.exists(spec.dir)) return LocalStore.open(spec.dir, { packSize: packSizeFromEnv() });
  const existing = await fs.readdir(spec.dir).catch(() => [] as string[]);
  if (existing.length) throw new ObnamError('USAGE', `${spec.dir} exists and is not empty; choose a new directory`);
  return LocalStore.create(spec.dir, { packSize: packSizeFromEnv() });
}
