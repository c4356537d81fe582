/**
 * obnam upgrade: converts a format version 1 or 2 repository to version 4 in
 * place (format-spec 14.7, 14.9 and 6.7). Only the config changes: it gains
 * gc_grace (from version 1), bundle_target and version 4; every object
 * already stored stays as it is and is read as before. The config has a fixed id and stores only create if
 * absent, so it is replaced in four steps, each of which an interrupted run
 * resumes from:
 *
 *   1. stage: put the new config, sealed as kind gcplan under CONFIG_ID
 *      (a version 1 client never reads plans; collectors skip that id);
 *   2. delete the version 1 config;
 *   3. put the version 2 config (the staged one's plaintext);
 *   4. delete the staged copy.
 *
 * Between 2 and 3 the store has no config: every client refuses it, and
 * Repository.open names the interrupted upgrade. Running upgrade again
 * finishes the job; running it on a version 4 repository changes nothing.
 * No older client may write to the repository meanwhile (14.7); afterwards
 * they refuse it (an unknown format version).
 */
import { ObnamError } from '../errors.js';
import { decodeCbor } from '../format/cbor.js';
import { decodeConfig, encodeConfig, upgradedConfig } from '../format/config.js';
import { openObject, sealObject } from '../format/envelope.js';
import { CONFIG_ID } from '../format/ids.js';
import { BUNDLE_VERSION } from '../format/version.js';
import type { ObjectStore } from '../store/store.js';
import { MAX_PLAINTEXT } from './limits.js';
import { Repository } from './repository.js';

export interface UpgradeResult {
  /** The version found (1 or 2, or 4 if an earlier run had finished or got past step 2). */
  from: number;
  to: number;
  /** True if the repository already was at version 4 with nothing left to finish. */
  already: boolean;
  gcGrace: number;
}

async function getOrUndefined(store: ObjectStore, kind: 'config' | 'gcplan'): Promise<Uint8Array | undefined> {
  try {
    return await store.get(kind, CONFIG_ID);
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
}

async function deleteIfPresent(store: ObjectStore, kind: 'config' | 'gcplan'): Promise<void> {
  try {
    await store.delete(kind, CONFIG_ID);
  } catch (e) {
    if (!(e instanceof ObnamError && e.code === 'NOT_FOUND')) throw e;
  }
}

/** Upgrades the repository in `store` to format version 4; idempotent and resumable. */
export async function upgradeRepository(
  store: ObjectStore,
  passphrase: string | Uint8Array,
  gcGrace?: number,
): Promise<UpgradeResult> {
  const current = await getOrUndefined(store, 'config');
  let staged = await getOrUndefined(store, 'gcplan');
  if (!current && !staged) throw new ObnamError('NO_REPOSITORY', `no obnam repository at ${store.location}`);
  const repo = current
    ? await Repository.openConfig(store, passphrase, 'config', current)
    : await Repository.openConfig(store, passphrase, 'gcplan', staged!);
  const found = repo.config.version;
  if (current && found >= BUNDLE_VERSION) {
    // Done, or interrupted after step 3.
    if (staged) await deleteIfPresent(store, 'gcplan');
    return { from: found, to: found, already: !staged, gcGrace: repo.config.gcGrace! };
  }
  const level = repo.config.compressionLevel;
  if (!staged) {
    const next = upgradedConfig(repo.config, gcGrace);
    staged = sealObject(repo.keys.encryption, 'gcplan', CONFIG_ID, encodeConfig(next), level, undefined, BUNDLE_VERSION);
    await store.put('gcplan', CONFIG_ID, staged); // step 1
    await store.flush?.();
  }
  const next = decodeConfig(decodeCbor(openObject(repo.keys.encryption, 'gcplan', CONFIG_ID, staged, MAX_PLAINTEXT.config), 'staged config'));
  if (next.version !== BUNDLE_VERSION || next.repositoryId !== repo.config.repositoryId) {
    throw new ObnamError('CORRUPT', 'the staged config of an interrupted upgrade does not belong to this repository');
  }
  if (current) await deleteIfPresent(store, 'config'); // step 2
  await store.put('config', CONFIG_ID, sealObject(repo.keys.encryption, 'config', CONFIG_ID, encodeConfig(next), level, undefined, BUNDLE_VERSION)); // step 3
  await store.flush?.();
  await deleteIfPresent(store, 'gcplan'); // step 4
  return { from: found, to: BUNDLE_VERSION, already: false, gcGrace: next.gcGrace! };
}
