/**
 * Repository: a store plus the master keys and config that give its bytes
 * meaning. It turns plaintext into sealed, content-addressed objects and back,
 * and it is the only place that knows how ids are computed.
 *
 * Write order (format-spec, "Write order"): chunks, then the trees that name
 * them (children before parents), then the snapshot. A reader that sees a
 * snapshot can therefore rely on everything below it having been stored.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Chunker, deriveGearTable } from '../chunking/fastcdc.js';
import { hmacSha256 } from '../crypto/hash.js';
import { MasterKeys, generateMasterKeys } from '../crypto/keys.js';
import type { KdfCost } from '../crypto/kdf.js';
import { createKeySlot, KeySlotInfo, newKeyId, parseKeySlot, tryOpenKeySlot } from '../crypto/keyslot.js';
import { ObnamError } from '../errors.js';
import { decodeCbor } from '../format/cbor.js';
import { decodeConfig, encodeConfig, newConfig, RepoConfig } from '../format/config.js';
import { envelopeVersion, openObject, sealObject } from '../format/envelope.js';
import { CONFIG_ID } from '../format/ids.js';
import { decodeGcPlan, encodeGcPlan, GcPlan, newPlanId } from '../format/gcplan.js';
import { encodeSnapshot, Snapshot } from '../format/snapshot.js';
import { encodeTreeNode, TreeEntry, TreeNode } from '../format/tree.js';
import { writeDirectory } from '../format/treesplit.js';
import { checkReadableVersion, GC_VERSION, Kind } from '../format/version.js';
import type { ObjectAccess, ObjectStore, RepackOptions, RepackResult, StoreOptions, StoreSpec } from '../store/store.js';
import { MAX_PLAINTEXT } from './limits.js';
import {
  ChunkWriter,
  ConfigView,
  DamagedSnapshot,
  decodeSnapshotObject,
  decodeTreeObject,
  GcPlanInfo,
  ObjectInventory,
  ObjectReader,
  ObjectRemover,
  ObjectWriter,
  PlanCatalog,
  PutResult,
  SnapshotCatalog,
  SnapshotInfo,
  SnapshotScan,
  StartedPut,
} from './views.js';

export type { DamagedSnapshot, GcPlanInfo, PutResult, SnapshotInfo, SnapshotScan } from './views.js';

/** How new key slots are made: the scrypt cost (default DEFAULT_KDF_COST; test suites inject a cheap one). */
export interface NewKeyOptions {
  kdf?: KdfCost;
}

/** Errors that make Repository.open skip one key slot and go on with the others. */
const SKIPPED_SLOT_ERRORS: ReadonlySet<string> = new Set(['CORRUPT', 'UNSUPPORTED_VERSION', 'KDF_LIMIT']);

/**
 * Errors that make one snapshot object unreadable without saying anything
 * about the others: it fails authentication, decoding or its id (CORRUPT),
 * or was written by a newer format (UNSUPPORTED_VERSION). Transport and
 * permission errors are not damage: they stop the command.
 */
export function isDamage(e: unknown): e is ObnamError {
  return e instanceof ObnamError && (e.code === 'CORRUPT' || e.code === 'UNSUPPORTED_VERSION');
}

const byTime = (a: SnapshotInfo, b: SnapshotInfo) =>
  a.time.sec - b.time.sec || a.time.nsec - b.time.nsec || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function passphraseBytes(p: string | Uint8Array): Uint8Array {
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
}

/**
 * An open repository over a store S. Most repositories own a whole
 * ObjectStore; a worker thread's sees only ObjectAccess (single objects,
 * through its StoreProxy), so what lists, deletes or closes is not there.
 *
 * The store is private: engines get the repository through the narrow views
 * of views.ts, and nothing outside lib/repo reaches the store through it
 * (test/import-graph.test.ts). The worker pool's bridge gets single-object
 * access through objectAccessForWorkers().
 */
export class Repository<S extends ObjectAccess = ObjectStore>
  implements ObjectReader, ObjectWriter, ChunkWriter, SnapshotCatalog, ObjectInventory, PlanCatalog, ObjectRemover, ConfigView
{
  private gear?: Uint32Array;
  private readonly reportedDamage = new Set<string>();
  /**
   * Told (once per id) about each snapshot that listSnapshots passes over
   * because it cannot be read. The CLI names it on stderr.
   */
  onDamagedSnapshot?: (d: DamagedSnapshot) => void;

  private constructor(
    private readonly store: S,
    readonly keys: MasterKeys,
    readonly config: RepoConfig,
    readonly keyId: string,
  ) {}

  /**
   * Creates a new repository in an empty store. Refuses (REPOSITORY_EXISTS)
   * a store that holds any object at all, and never deletes one: key slots
   * without a config may be all that protects data whose config was lost.
   */
  static async init(
    store: ObjectStore,
    spec: StoreSpec,
    passphrase: string | Uint8Array,
    config: RepoConfig = newConfig(),
    opts: NewKeyOptions = {},
  ): Promise<Repository> {
    await refuseUnlessEmpty(store, spec);
    const keys = generateMasterKeys();
    const keyId = newKeyId();
    const slot = await createKeySlot(keyId, keys, passphraseBytes(passphrase), hostInfo(), opts.kdf);
    await store.put('key', keyId, slot);
    const configBytes = sealObject(keys.encryption, 'config', CONFIG_ID, encodeConfig(config), config.compressionLevel, undefined, config.version);
    // The config is written last: a store with a config is a complete repository.
    if (!(await store.put('config', CONFIG_ID, configBytes))) {
      throw new ObnamError('REPOSITORY_EXISTS', `another obnam init created a repository at ${store.location} at the same time; use that one`);
    }
    return new Repository(store, keys, config, keyId);
  }

  /** Opens a repository with a passphrase; BAD_PASSPHRASE if no key slot accepts it. */
  static async open(store: ObjectStore, passphrase: string | Uint8Array): Promise<Repository> {
    let configBytes: Uint8Array;
    try {
      configBytes = await store.get('config', CONFIG_ID);
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') {
        if (await store.has('gcplan', CONFIG_ID).catch(() => false)) {
          throw new ObnamError('NO_REPOSITORY', `an obnam upgrade of the repository at ${store.location} was interrupted; run obnam upgrade to finish it`);
        }
        throw new ObnamError('NO_REPOSITORY', `no obnam repository at ${store.location}`);
      }
      throw e;
    }
    return Repository.openConfig(store, passphrase, 'config', configBytes);
  }

  /**
   * Opens a repository from config bytes stored as `kind`: the config, or
   * the staged config of an interrupted upgrade (lib/repo/upgrade.ts).
   */
  static async openConfig(
    store: ObjectStore,
    passphrase: string | Uint8Array,
    kind: 'config' | 'gcplan',
    configBytes: Uint8Array,
  ): Promise<Repository> {
    const version = envelopeVersion(configBytes);
    if (version === undefined) throw new ObnamError('CORRUPT', 'repository config: not an obnam object');
    checkReadableVersion(version, 'this repository');
    const pass = passphraseBytes(passphrase);
    const unusable: string[] = [];
    for await (const id of store.list('key')) {
      let keys: MasterKeys | undefined;
      try {
        keys = await tryOpenKeySlot(parseKeySlot(id, await readKeyObject(store, id)), pass);
      } catch (e) {
        // A damaged, unknown or too costly key slot must not lock people out of the others.
        if (!(e instanceof ObnamError) || !SKIPPED_SLOT_ERRORS.has(e.code)) throw e;
        unusable.push(`${id.slice(0, 8)} (${e.message})`);
        continue;
      }
      if (!keys) continue;
      let plain: Uint8Array;
      try {
        plain = openObject(keys.encryption, kind, CONFIG_ID, configBytes, MAX_PLAINTEXT.config);
      } catch (e) {
        // A slot left by an interrupted init: it opens, but its keys are not this repository's.
        if (e instanceof ObnamError && e.code === 'CORRUPT') {
          unusable.push(`${id.slice(0, 8)} (its keys do not open the config)`);
          continue;
        }
        throw e;
      }
      const config = decodeConfig(decodeCbor(plain, 'repository config'));
      if (config.version !== version) throw new ObnamError('CORRUPT', 'repository config: its version differs from its envelope\'s');
      return new Repository(store, keys, config, id);
    }
    if (unusable.length) {
      throw new ObnamError('BAD_PASSPHRASE', `wrong passphrase, or its key slot is unusable: ${unusable.join('; ')}`);
    }
    throw new ObnamError('BAD_PASSPHRASE', 'wrong passphrase: no key of this repository opens with it');
  }

  /**
   * Test-only: the store under a repository, for tests that damage, stage or
   * remove objects behind its back. Nothing in lib/, cli/, server/, mount/ or
   * bench/ may call it (test/import-graph.test.ts checks).
   */
  static storeForTests<S extends ObjectAccess>(repo: Repository<S>): S {
    return repo.store;
  }

  /** Opens a repository with keys already unlocked (worker threads). */
  static withKeys<S extends ObjectAccess>(store: S, keys: MasterKeys, config: RepoConfig, keyId: string): Repository<S> {
    return new Repository(store, keys, config, keyId);
  }

  /** The content id of plaintext: HMAC-SHA256(id key, plaintext), hex. */
  contentId(plaintext: Uint8Array): string {
    return hmacSha256(this.keys.id, plaintext).toString('hex');
  }

  chunker(): Chunker {
    this.gear ??= deriveGearTable(this.keys.chunker);
    return new Chunker(this.gear, this.config.chunker);
  }

  /** Seals plaintext at the repository's format version (a version 1 repository keeps getting version 1 objects). */
  seal(kind: Kind, id: string, plaintext: Uint8Array): Uint8Array {
    return sealObject(this.keys.encryption, kind, id, plaintext, this.config.compressionLevel, undefined, this.config.version);
  }

  /** Decrypts stored bytes and, for content-addressed kinds, checks the id. */
  unseal(kind: Kind, id: string, stored: Uint8Array): Uint8Array {
    const max = kind === 'chunk' ? this.config.chunker.max : MAX_PLAINTEXT[kind];
    const plain = openObject(this.keys.encryption, kind, id, stored, max);
    if ((kind === 'chunk' || kind === 'tree' || kind === 'snapshot') && this.contentId(plain) !== id) {
      throw new ObnamError('CORRUPT', `${kind} ${id}: content does not match its id`);
    }
    return plain;
  }

  /** Stores plaintext as an object of `kind` unless an object with its id exists. */
  async putObject(kind: 'chunk' | 'tree' | 'snapshot', plaintext: Uint8Array, opts?: StoreOptions): Promise<PutResult> {
    const id = this.contentId(plaintext);
    const started = await this.startPut(kind, id, plaintext, opts);
    return started ? started.stored : { id, isNew: false, storedBytes: 0 };
  }

  /**
   * The first half of a put, for callers that computed the id: undefined if
   * the store has the object; otherwise the plaintext is sealed before this
   * resolves and the store's put is left in flight.
   */
  async startPut(kind: 'chunk' | 'tree' | 'snapshot', id: string, plaintext: Uint8Array, opts?: StoreOptions): Promise<StartedPut | undefined> {
    if (await this.store.has(kind, id, opts)) return undefined;
    const sealed = this.seal(kind, id, plaintext);
    const size = sealed.length; // read before put: the bytes may be transferred to another thread
    const stored = this.store.put(kind, id, sealed, opts).then((isNew): PutResult => ({ id, isNew, storedBytes: isNew ? size : 0 }));
    return { stored };
  }

  async getObject(kind: Kind, id: string, opts?: StoreOptions): Promise<Uint8Array> {
    return this.unseal(kind, id, await this.store.get(kind, id, opts));
  }

  async putTree(node: TreeNode, opts?: StoreOptions): Promise<PutResult> {
    return this.putObject('tree', encodeTreeNode(node), opts);
  }

  async getTree(id: string, opts?: StoreOptions): Promise<TreeNode> {
    return decodeTreeObject(id, await this.getObject('tree', id, opts));
  }

  /** Writes one directory's sorted entries as tree nodes, split with this repository's key; the root node's id. */
  writeDirectory(entries: TreeEntry[], putNode: (node: TreeNode) => Promise<string>): Promise<string> {
    return writeDirectory(entries, this.keys.chunker, putNode);
  }

  async putSnapshot(s: Snapshot, opts?: StoreOptions): Promise<PutResult> {
    return this.putObject('snapshot', encodeSnapshot(s), opts);
  }

  async getSnapshot(id: string, opts?: StoreOptions): Promise<SnapshotInfo> {
    return decodeSnapshotObject(id, await this.getObject('snapshot', id, opts));
  }

  /** Resolves once every object put before the call is durable. */
  async flush(this: Repository): Promise<void> {
    await this.store.flush?.();
  }

  /** Single-object access to the store, for the worker pool's bridge to its workers' store proxies (lib/engine-workers). */
  objectAccessForWorkers(): ObjectAccess {
    return this.store;
  }

  hasObject(kind: Kind, id: string, opts?: StoreOptions): Promise<boolean> {
    return this.store.has(kind, id, opts);
  }

  hasMany(kind: Kind, ids: readonly string[], opts?: StoreOptions): Promise<boolean[]> {
    return this.store.hasMany(kind, ids, opts);
  }

  /** The stored (sealed) size of an object, read from the store without opening it. */
  async storedSize(kind: Kind, id: string, opts?: StoreOptions): Promise<number> {
    return (await this.store.get(kind, id, opts)).length;
  }

  /** Every id of a kind the store lists, in no order. */
  listIds(this: Repository, kind: 'snapshot' | 'tree' | 'chunk', opts?: StoreOptions): AsyncIterable<string> {
    return this.store.list(kind, opts);
  }

  /** Every snapshot id in the store, from its listing alone. */
  listSnapshotIds(this: Repository, opts?: StoreOptions): AsyncIterable<string> {
    return this.store.list('snapshot', opts);
  }

  /** Makes listings and has() see what other processes stored and deleted until now (format-spec 14.8). */
  async refresh(this: Repository): Promise<void> {
    await this.store.refresh?.();
  }

  /** Deletes a tree or chunk (the collector's sweep); NOT_FOUND if absent. */
  async deleteObject(this: Repository, kind: 'tree' | 'chunk', id: string, opts?: StoreOptions): Promise<void> {
    await this.store.delete(kind, id, opts);
  }

  /**
   * The store's repacking (format-spec 14.8), for prune's repack hook, or
   * undefined where the store has none (obnam-server repacks its own storage).
   */
  repacker(this: Repository): ((opts: RepackOptions) => Promise<RepackResult>) | undefined {
    const store = this.store;
    return store.repack ? (opts) => store.repack!(opts) : undefined;
  }

  /** Deletes a garbage-collection plan; NOT_FOUND if absent, PERMISSION where the store forbids deletion. */
  async deletePlan(this: Repository, id: string, opts?: StoreOptions): Promise<void> {
    await this.store.delete('gcplan', id, opts);
  }

  /**
   * Reads every snapshot object (16 at a time). One that is damaged (see
   * isDamage) is returned apart instead of failing the scan; one that
   * vanished since the listing (forgotten meanwhile) is left out.
   */
  async scanSnapshots(this: Repository, opts?: StoreOptions): Promise<SnapshotScan> {
    const ids: string[] = [];
    for await (const id of this.listSnapshotIds(opts)) ids.push(id);
    const snapshots: SnapshotInfo[] = [];
    const damaged: DamagedSnapshot[] = [];
    const limit = 16;
    for (let i = 0; i < ids.length; i += limit) {
      await Promise.all(
        ids.slice(i, i + limit).map(async (id) => {
          try {
            snapshots.push(await this.getSnapshot(id, opts));
          } catch (e) {
            if (e instanceof ObnamError && e.code === 'NOT_FOUND') return;
            if (!isDamage(e)) throw e;
            damaged.push({ id, error: e });
          }
        }),
      );
    }
    snapshots.sort(byTime);
    damaged.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const d of damaged) {
      if (this.reportedDamage.has(d.id)) continue;
      this.reportedDamage.add(d.id);
      this.onDamagedSnapshot?.(d);
    }
    return { snapshots, damaged };
  }

  /** The readable snapshots, oldest first; damaged ones are reported through onDamagedSnapshot and passed over. */
  async listSnapshots(this: Repository, opts?: StoreOptions): Promise<SnapshotInfo[]> {
    return (await this.scanSnapshots(opts)).snapshots;
  }

  /** The ids of the snapshots whose id is or starts with `ref` (hex), read from the listing alone. */
  private async snapshotIdsMatching(this: Repository, ref: string, opts?: StoreOptions): Promise<string[]> {
    if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new ObnamError('NOT_FOUND', `no snapshot ${JSON.stringify(ref)}: expected a hex id, an id prefix or "latest"`);
    const matches: string[] = [];
    for await (const id of this.listSnapshotIds(opts)) if (id.startsWith(ref)) matches.push(id);
    if (matches.length === 0) throw new ObnamError('NOT_FOUND', `no snapshot ${ref}`);
    if (matches.length > 1) throw new ObnamError('AMBIGUOUS', `snapshot prefix ${ref} matches ${matches.length} snapshots; give more digits`);
    return matches;
  }

  /**
   * The id of a snapshot named by full id, unique id prefix, or "latest"
   * (the newest readable one), without reading an object named by id: so a
   * damaged snapshot can be named (to forget it).
   */
  async resolveSnapshotId(this: Repository, ref: string, opts?: StoreOptions): Promise<string> {
    if (ref === 'latest') return (await this.latestSnapshot(opts)).id;
    return (await this.snapshotIdsMatching(ref, opts))[0]!;
  }

  /** A snapshot by full id, unique id prefix, or "latest" (the newest readable one). */
  async resolveSnapshot(this: Repository, ref: string, opts?: StoreOptions): Promise<SnapshotInfo> {
    if (ref === 'latest') return this.latestSnapshot(opts);
    return this.getSnapshot((await this.snapshotIdsMatching(ref, opts))[0]!, opts);
  }

  private async latestSnapshot(this: Repository, opts?: StoreOptions): Promise<SnapshotInfo> {
    const { snapshots, damaged } = await this.scanSnapshots(opts);
    const last = snapshots[snapshots.length - 1];
    if (last) return last;
    if (damaged.length) throw new ObnamError('CORRUPT', `no snapshot can be read: all ${damaged.length} are damaged (run obnam fsck)`);
    throw new ObnamError('NOT_FOUND', 'the repository has no snapshots yet');
  }

  /**
   * Forgets a snapshot: deletes its snapshot object and nothing else (its
   * trees and chunks are left for garbage collection; no other snapshot
   * refers to it). Already gone counts as done. PERMISSION where the store
   * forbids deletion (an append-only server client).
   */
  async deleteSnapshot(this: Repository, id: string, opts?: StoreOptions): Promise<void> {
    try {
      await this.store.delete('snapshot', id, opts);
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') return;
      throw e;
    }
  }

  /** Ids of the garbage-collection plans in the store (format-spec 14.3); none in a version 1 repository. */
  async listPlanIds(this: Repository, opts?: StoreOptions): Promise<string[]> {
    if (this.config.version < GC_VERSION) return [];
    const ids: string[] = [];
    // CONFIG_ID names the staged config of an upgrade in progress, not a plan (lib/repo/upgrade.ts).
    for await (const id of this.store.list('gcplan', opts)) if (id !== CONFIG_ID) ids.push(id);
    return ids.sort();
  }

  async getPlan(id: string, opts?: StoreOptions): Promise<GcPlanInfo> {
    return { id, ...decodeGcPlan(decodeCbor(await this.getObject('gcplan', id, opts), `gcplan ${id}`), `gcplan ${id}`) };
  }

  /** Puts a plan under a new random id; returns the id. */
  async putPlan(this: Repository, plan: GcPlan, opts?: StoreOptions): Promise<string> {
    if (this.config.version < GC_VERSION) throw new ObnamError('INTERNAL', 'plans exist only in format version 2 repositories');
    const id = newPlanId();
    await this.store.put('gcplan', id, this.seal('gcplan', id, encodeGcPlan(plan)), opts);
    await this.store.flush?.();
    return id;
  }

  async listKeys(this: Repository): Promise<KeySlotInfo[]> {
    const out: KeySlotInfo[] = [];
    for await (const id of this.store.list('key')) {
      const { wrapped: _w, version: _v, ...info } = parseKeySlot(id, await readKeyObject(this.store, id));
      out.push(info);
    }
    return out.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  }

  /** Adds a key slot for another passphrase; returns its id. */
  async addKey(passphrase: string | Uint8Array, opts: NewKeyOptions = {}): Promise<string> {
    const id = newKeyId();
    await this.store.put('key', id, await createKeySlot(id, this.keys, passphraseBytes(passphrase), hostInfo(), opts.kdf));
    return id;
  }

  /** Removes a key slot by id or unique prefix; refuses to remove the last one or the one in use. */
  async removeKey(this: Repository, ref: string): Promise<string> {
    const keys = await this.listKeys();
    const matches = keys.filter((k) => k.id.startsWith(ref));
    if (!/^[0-9a-f]+$/.test(ref) || matches.length === 0) throw new ObnamError('NOT_FOUND', `no key ${ref}`);
    if (matches.length > 1) throw new ObnamError('AMBIGUOUS', `key prefix ${ref} matches ${matches.length} keys`);
    const id = matches[0]!.id;
    if (id === this.keyId) {
      throw new ObnamError('USAGE', 'refusing to remove the key this passphrase opened; open the repository with another key to remove it');
    }
    if (keys.length < 2) throw new ObnamError('USAGE', 'refusing to remove the last key');
    await this.store.delete('key', id);
    return id;
  }

  async close(this: Repository): Promise<void> {
    await this.store.close();
  }
}

/**
 * Throws REPOSITORY_EXISTS, naming what is there and what to do, unless the
 * store holds no object of any kind. Only a few ids are listed per kind.
 */
async function refuseUnlessEmpty(store: ObjectStore, spec: StoreSpec): Promise<void> {
  if (await store.has('config', CONFIG_ID)) {
    throw new ObnamError('REPOSITORY_EXISTS', `a repository already exists at ${store.location}; obnam init never writes over one`);
  }
  let keys = 0;
  for await (const _ of store.list('key')) keys++;
  const present: string[] = keys ? [`${keys} key slot${keys === 1 ? '' : 's'}`] : [];
  for (const kind of ['config', 'snapshot', 'tree', 'chunk', 'gcplan'] as const) {
    for await (const _ of store.list(kind)) {
      present.push(kind === 'config' ? 'a stray config object' : kind === 'gcplan' ? 'garbage-collection plans' : `${kind}s`);
      break;
    }
  }
  if (present.length === 0) return;
  const what = present.length === 1 ? present[0]! : `${present.slice(0, -1).join(', ')} and ${present[present.length - 1]!}`;
  const where = store.location;
  const them = keys === 1 ? 'that key slot' : 'those key slots';
  const removeThem =
    spec.type === 'local'
      ? `remove ${them} (${path.join(spec.dir, 'keys')}) yourself, or initialise an empty directory`
      : `have the server's administrator remove ${them}, or use another client of the server`;
  const advice =
    present.length === 1 && keys > 0
      ? `left by an interrupted init? obnam init deletes nothing: if ${them === 'that key slot' ? 'it protects' : 'they protect'} nothing, ${removeThem}`
      : 'obnam init refuses to write there and deletes nothing: if its config was lost, put back a copy of it; otherwise initialise an empty location';
  throw new ObnamError('REPOSITORY_EXISTS', `${where} holds ${what} but no repository config (${advice})`);
}

/** A key object's bytes, refused if larger than any real key slot. */
async function readKeyObject(store: ObjectStore, id: string): Promise<Uint8Array> {
  const bytes = await store.get('key', id);
  if (bytes.length > MAX_PLAINTEXT.key) throw new ObnamError('CORRUPT', `key ${id.slice(0, 8)}: too large to be a key slot`);
  return bytes;
}

export function hostInfo(): { hostname: string; username: string } {
  let username = '';
  try {
    username = os.userInfo().username;
  } catch {
    username = process.env.USER ?? '';
  }
  return { hostname: os.hostname(), username };
}
