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
import type { Identity } from '../crypto/identity.js';
import { MasterKeys, generateMasterKeys } from '../crypto/keys.js';
import type { KdfCost } from '../crypto/kdf.js';
import { createKeySlot, KeySlotInfo, newKeyId, parseKeySlot, tryOpenKeySlot } from '../crypto/keyslot.js';
import { MemberKeySet, newMemberKeySet } from '../crypto/memberkeys.js';
import { ObnamError } from '../errors.js';
import { decodeCbor } from '../format/cbor.js';
import { configAtVersion, decodeConfig, DEFAULT_GC_GRACE, encodeConfig, newConfig, RepoConfig } from '../format/config.js';
import { envelopeVersion, openObject } from '../format/envelope.js';
import { CONFIG_ID } from '../format/ids.js';
import { decodeGcPlan, encodeGcPlan, GcPlan, newPlanId } from '../format/gcplan.js';
import {
  checkMemberName,
  decodeMemberObject,
  encodeMemberObject,
  MemberInfo,
  memberInfoOf,
  memberMacValid,
  MemberObject,
  newMemberId,
  unlockMemberKeys,
} from '../format/member.js';
import type { Snapshot } from '../format/snapshot.js';
import { encodeTreeNode, ObjectAddress, TreeEntry, TreeNode, TreeRefs } from '../format/tree.js';
import { writeDirectory } from '../format/treesplit.js';
import { checkReadableVersion, GC_VERSION, isSharedVersion, Kind, SHARED_VERSION } from '../format/version.js';
import type { ObjectAccess, ObjectStore, RepackOptions, RepackResult, StoreOptions, StoreSpec } from '../store/store.js';
import { MAX_PLAINTEXT } from './limits.js';
import type { Sealing, SnapshotReader } from './sealing.js';
import { MasterKeySealing } from './sealing-v2.js';
import { MemberKeySealing } from './sealing-v3.js';
import {
  ChunkWriter,
  ConfigView,
  DamagedSnapshot,
  decodeTreeObject,
  GcPlanInfo,
  ObjectInventory,
  ObjectReader,
  ObjectRemover,
  ObjectWriter,
  PlanCatalog,
  PutResult,
  ReadOptions,
  ReferenceReader,
  SnapshotCatalog,
  SnapshotInfo,
  SnapshotScan,
  StartedPut,
  UnreadableSnapshot,
} from './views.js';

export type { DamagedSnapshot, GcPlanInfo, PutResult, SnapshotInfo, SnapshotScan, UnreadableSnapshot } from './views.js';
export type { SnapshotReader } from './sealing.js';

/**
 * Format version 3: who a new snapshot's key is wrapped for besides its
 * owner, asked just before it is written (standing grants, sharing.md 9.3).
 */
export type SnapshotRecipients = (s: Snapshot) => Promise<SnapshotReader[]>;

/** A shared repository's member side: who opened it, and the members (public key hex -> info) whose objects verify. */
interface SharedState {
  identity: Identity;
  self: MemberInfo;
  members: Map<string, MemberInfo>;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

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

const byTime = (a: Pick<SnapshotInfo, 'time' | 'id'>, b: Pick<SnapshotInfo, 'time' | 'id'>) =>
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
  implements ObjectReader, ReferenceReader, ObjectWriter, ChunkWriter, SnapshotCatalog, ObjectInventory, PlanCatalog, ObjectRemover, ConfigView
{
  private gear?: Uint32Array;
  private readonly reportedDamage = new Set<string>();
  /**
   * Told (once per id) about each snapshot that listSnapshots passes over
   * because it cannot be read. The CLI names it on stderr.
   */
  onDamagedSnapshot?: (d: DamagedSnapshot) => void;
  /**
   * Format version 3: who else a new snapshot's key is wrapped for, asked
   * by putSnapshot just before it writes (lib/format/share.ts's standing
   * grants, format-spec/sharing.md 9.3). Unset: the owner only.
   */
  snapshotRecipients?: SnapshotRecipients;

  private constructor(
    private readonly store: S,
    private readonly sealing: Sealing,
    readonly config: RepoConfig,
    readonly keyId: string,
    private readonly shared?: SharedState,
  ) {}

  /** The master keys of a version 1 or 2 repository (a shared one has member keys instead: memberKeys). */
  get keys(): MasterKeys {
    if (!(this.sealing instanceof MasterKeySealing)) throw new ObnamError('INTERNAL', 'a shared repository has no master keys');
    return this.sealing.keys;
  }

  /** The repository's format version: 1, 2, or 3 (shared). */
  get formatVersion(): number {
    return this.config.version;
  }

  /** Format version 3: the member key set (what a member object hands to a new member). */
  get memberKeys(): MemberKeySet {
    if (!(this.sealing instanceof MemberKeySealing)) throw new ObnamError('INTERNAL', 'only a shared repository has member keys');
    return this.sealing.keys;
  }

  /** Format version 3: the member this repository was opened as. */
  get self(): MemberInfo {
    return this.sharedState().self;
  }

  /** Format version 3: the identity this repository was opened with. */
  get identity(): Identity {
    return this.sharedState().identity;
  }

  private sharedState(): SharedState {
    if (!this.shared) throw new ObnamError('INTERNAL', 'only a shared (format version 3) repository has members');
    return this.shared;
  }

  private v3(): MemberKeySealing {
    if (!(this.sealing instanceof MemberKeySealing)) throw new ObnamError('INTERNAL', 'only a shared (format version 3) repository has this');
    return this.sealing;
  }

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
    if (isSharedVersion(config.version)) throw new ObnamError('INTERNAL', 'a shared repository is made with Repository.initShared');
    await refuseUnlessEmpty(store, spec);
    const keys = generateMasterKeys();
    const keyId = newKeyId();
    const slot = await createKeySlot(keyId, keys, passphraseBytes(passphrase), hostInfo(), opts.kdf);
    await store.put('key', keyId, slot);
    const sealing = new MasterKeySealing(keys, config.version, config.compressionLevel);
    const configBytes = sealing.sealRecord('config', CONFIG_ID, encodeConfig(config));
    // The config is written last: a store with a config is a complete repository.
    if (!(await store.put('config', CONFIG_ID, configBytes))) {
      throw new ObnamError('REPOSITORY_EXISTS', `another obnam init created a repository at ${store.location} at the same time; use that one`);
    }
    return new Repository(store, sealing, config, keyId);
  }

  /**
   * Creates a shared (format version 3) repository in an empty store
   * (format-spec/sharing.md 4, 5): a fresh member key set, the first member
   * object (for `identity`, can_delete), then the config under the members'
   * key. `opts.config` (its version is made 3) sets chunker and compression.
   */
  static async initShared(
    store: ObjectStore,
    identity: Identity,
    opts: { name: string; config?: RepoConfig; spec?: StoreSpec; created?: number; memberKeys?: MemberKeySet },
  ): Promise<Repository> {
    checkMemberName(opts.name);
    await refuseUnlessEmpty(store, opts.spec);
    const config: RepoConfig = configAtVersion(opts.config ?? newConfig(), SHARED_VERSION);
    config.gcGrace ??= DEFAULT_GC_GRACE;
    return Repository.createShared(store, identity, { ...opts, config });
  }

  /**
   * The version 3 objects of a new shared repository written into `store`
   * without checking that it is empty: for obnam upgrade (lib/repo/upgrade-v3.ts),
   * which stages them beside a version 2 repository. The config is written
   * last, and only if `writeConfig` is not false (upgrade replaces it itself).
   */
  static async createShared(
    store: ObjectStore,
    identity: Identity,
    opts: { name: string; config: RepoConfig; created?: number; memberKeys?: MemberKeySet; writeConfig?: boolean },
  ): Promise<Repository> {
    const config = opts.config;
    if (config.version !== SHARED_VERSION) throw new ObnamError('INTERNAL', 'a shared repository has format version 3');
    const keys = opts.memberKeys ?? newMemberKeySet();
    const self: MemberInfo = {
      id: newMemberId(),
      name: opts.name,
      publicKey: identity.public,
      canDelete: true,
      created: opts.created ?? Math.floor(Date.now() / 1000),
      addedBy: '',
    };
    await store.put('member', self.id, encodeMemberObject(keys, self));
    const members = new Map([[hex(self.publicKey), self]]);
    const repo = Repository.sharedRepository(store, keys, config, { identity, self, members });
    if (opts.writeConfig !== false) {
      if (!(await store.put('config', CONFIG_ID, repo.sealing.sealRecord('config', CONFIG_ID, encodeConfig(config))))) {
        throw new ObnamError('REPOSITORY_EXISTS', `another obnam init created a repository at ${store.location} at the same time; use that one`);
      }
    }
    return repo;
  }

  private static sharedRepository<S extends ObjectAccess>(store: S, keys: MemberKeySet, config: RepoConfig, shared: SharedState): Repository<S> {
    const sealing = new MemberKeySealing(keys, config.compressionLevel, { identity: shared.identity, name: shared.self.name }, (pk) => shared.members.get(pk)?.name);
    return new Repository(store, sealing, config, '', shared);
  }

  /**
   * Opens a shared (format version 3) repository as the member whose public
   * key is `identity`'s (format-spec/sharing.md 5.2): NOT_A_MEMBER if there
   * is none; members whose mac does not verify are not members.
   */
  static async openShared(store: ObjectStore, identity: Identity): Promise<Repository> {
    const configBytes = await readConfigBytes(store);
    const version = envelopeVersion(configBytes);
    if (version === undefined) throw new ObnamError('CORRUPT', 'repository config: not an obnam object');
    checkReadableVersion(version, 'this repository');
    if (version !== SHARED_VERSION) {
      throw new ObnamError('USAGE', `the repository at ${store.location} is not shared (format version ${version}): open it with its passphrase`);
    }
    const { objects } = await readMemberObjects(store);
    const mine = objects.find((o) => Buffer.compare(o.publicKey, identity.public) === 0);
    if (!mine) throw new ObnamError('NOT_A_MEMBER', 'this identity is not a member of the repository');
    const keys = unlockMemberKeys(mine, identity);
    if (!memberMacValid(mine, keys.auth)) throw new ObnamError('NOT_A_MEMBER', 'this identity is not a member of the repository (its member object does not verify)');
    const members = new Map<string, MemberInfo>();
    for (const o of objects) if (memberMacValid(o, keys.auth)) members.set(hex(o.publicKey), memberInfoOf(o));
    const sealing = new MemberKeySealing(keys, 0);
    const config = decodeConfig(decodeCbor(sealing.openRecord('config', CONFIG_ID, configBytes, MAX_PLAINTEXT.config), 'repository config'));
    if (config.version !== SHARED_VERSION) throw new ObnamError('CORRUPT', "repository config: its version differs from its envelope's");
    return Repository.sharedRepository(store, keys, config, { identity, self: memberInfoOf(mine), members });
  }

  /** The format version of the repository in `store`, from its config's envelope (nothing is decrypted). */
  static async formatVersionOf(store: ObjectStore): Promise<number> {
    const version = envelopeVersion(await readConfigBytes(store));
    if (version === undefined) throw new ObnamError('CORRUPT', 'repository config: not an obnam object');
    return version;
  }

  /** Opens a repository with a passphrase; BAD_PASSPHRASE if no key slot accepts it. */
  static async open(store: ObjectStore, passphrase: string | Uint8Array): Promise<Repository> {
    return Repository.openConfig(store, passphrase, 'config', await readConfigBytes(store));
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
    if (isSharedVersion(version)) {
      throw new ObnamError('USAGE', `the repository at ${store.location} is shared (format version ${version}): members open it with their identity, not a passphrase`);
    }
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
      return new Repository(store, new MasterKeySealing(keys, config.version, config.compressionLevel), config, id);
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
    return new Repository(store, new MasterKeySealing(keys, config.version, config.compressionLevel), config, keyId);
  }

  /** A shared repository's chunk access with member keys already unlocked (worker threads: no identity, no snapshots). */
  static withMemberKeys<S extends ObjectAccess>(store: S, keys: MemberKeySet, config: RepoConfig): Repository<S> {
    return new Repository(store, new MemberKeySealing(keys, config.compressionLevel), config, '');
  }

  /** What a worker thread needs to open this repository's chunks and trees: its keys and config. */
  workerKeys(): { keys?: MasterKeys; memberKeys?: MemberKeySet } {
    return this.sealing instanceof MemberKeySealing ? { memberKeys: this.sealing.keys } : { keys: this.keys };
  }

  /** The content id of plaintext (format versions 1 and 2: HMAC-SHA256(id key, plaintext), hex). */
  contentId(plaintext: Uint8Array): string {
    if (!(this.sealing instanceof MasterKeySealing)) throw new ObnamError('INTERNAL', 'a shared repository addresses objects with address(kind, plaintext)');
    return this.sealing.contentId(plaintext);
  }

  /** The id (and, in format version 3, content key) of a chunk's or tree node's plaintext. */
  address(kind: 'chunk' | 'tree', plaintext: Uint8Array): ObjectAddress {
    return this.sealing.address(kind, plaintext);
  }

  chunker(): Chunker {
    this.gear ??= deriveGearTable(this.sealing.chunkerKey);
    return new Chunker(this.gear, this.config.chunker);
  }

  /** Stores a chunk's or tree node's plaintext unless an object with its id exists. */
  async putObject(kind: 'chunk' | 'tree', plaintext: Uint8Array, opts?: StoreOptions): Promise<PutResult> {
    if (kind === 'tree') return this.putTree(decodeTreeObject('(new)', plaintext, isSharedVersion(this.config.version)), opts);
    const at = this.address(kind, plaintext);
    const started = await this.startPut(kind, at, plaintext, opts);
    return started ? started.stored : { ...at, isNew: false, storedBytes: 0 };
  }

  /**
   * The first half of a put, for callers that computed the address: undefined
   * if the store has the object; otherwise the plaintext is sealed before
   * this resolves and the store's put is left in flight.
   */
  async startPut(kind: 'chunk' | 'tree', at: ObjectAddress, plaintext: Uint8Array, opts?: StoreOptions, node?: TreeNode): Promise<StartedPut | undefined> {
    if (await this.store.has(kind, at.id, opts)) return undefined;
    const sealed = kind === 'chunk' ? this.sealing.sealChunk(at, plaintext) : this.sealing.sealTree(at, plaintext, node ?? decodeTreeObject(at.id, plaintext, !!at.key));
    const size = sealed.length; // read before put: the bytes may be transferred to another thread
    const stored = this.store.put(kind, at.id, sealed, opts).then((isNew): PutResult => ({ ...at, isNew, storedBytes: isNew ? size : 0 }));
    return { stored };
  }

  /**
   * An object's plaintext; `opts.key` is its content key (format version 3:
   * chunks and trees). A tree is not decoded here (outside version 3, whose
   * reference list is checked): whoever uses it decodes it, which checks it.
   */
  async getObject(kind: Kind, id: string, opts?: ReadOptions): Promise<Uint8Array> {
    const stored = await this.store.get(kind, id, opts);
    switch (kind) {
      case 'chunk':
        return this.sealing.openChunk(id, opts?.key, stored, this.config.chunker.max);
      case 'tree':
        return this.sealing.openTreePlaintext(id, opts?.key, stored);
      case 'snapshot':
        return this.sealing.openSnapshotPlaintext(id, stored);
      case 'config':
      case 'gcplan':
      case 'share':
      case 'grant':
        return this.sealing.openRecord(kind, id, stored, MAX_PLAINTEXT[kind]);
      default:
        throw new ObnamError('INTERNAL', `${kind} objects are not read with getObject`);
    }
  }

  async putTree(node: TreeNode, opts?: StoreOptions): Promise<PutResult> {
    const plaintext = encodeTreeNode(node);
    const at = this.address('tree', plaintext);
    const started = await this.startPut('tree', at, plaintext, opts, node);
    return started ? started.stored : { ...at, isNew: false, storedBytes: 0 };
  }

  async getTree(id: string, opts?: ReadOptions): Promise<TreeNode> {
    return this.sealing.openTree(id, opts?.key, await this.store.get('tree', id, opts)).node;
  }

  /** The ids a tree node names (format version 3: from its outer reference list, with no content key). */
  async getTreeRefs(id: string, opts?: StoreOptions): Promise<TreeRefs> {
    return this.sealing.openTreeRefs(id, await this.store.get('tree', id, opts));
  }

  /** Writes one directory's sorted entries as tree nodes, split with this repository's key; what putNode returned for the root. */
  writeDirectory<A extends string | ObjectAddress>(entries: TreeEntry[], putNode: (node: TreeNode) => Promise<A>): Promise<A> {
    return writeDirectory(entries, this.sealing.chunkerKey, putNode);
  }

  /**
   * Stores a snapshot. Format version 3: `s.treeKey` is required; the key
   * is wrapped for the owner and for whom snapshotRecipients names.
   */
  async putSnapshot(s: Snapshot, opts?: StoreOptions): Promise<PutResult> {
    const readers = this.shared && this.snapshotRecipients ? await this.snapshotRecipients(s) : [];
    const { id, bytes } = this.sealing.sealSnapshot(s, readers);
    if (await this.store.has('snapshot', id, opts)) return { id, isNew: false, storedBytes: 0 };
    const size = bytes.length;
    const isNew = await this.store.put('snapshot', id, bytes, opts);
    return { id, isNew, storedBytes: isNew ? size : 0 };
  }

  /** A snapshot; NOT_SHARED (format version 3) if this identity cannot read it. */
  async getSnapshot(id: string, opts?: StoreOptions): Promise<SnapshotInfo> {
    return this.sealing.openSnapshot(id, await this.store.get('snapshot', id, opts));
  }

  /** The root tree of a snapshot, as the collector reads it (format version 3: from the header, no identity involved). */
  async getSnapshotRoot(id: string, opts?: StoreOptions): Promise<string> {
    return this.sealing.openSnapshotHeader(id, await this.store.get('snapshot', id, opts)).tree;
  }

  /**
   * Format version 3: the snapshot key of a snapshot this identity can read
   * (to share it, format-spec/sharing.md 9.1); NOT_SHARED otherwise.
   */
  async snapshotKey(id: string, opts?: StoreOptions): Promise<Uint8Array> {
    return this.v3().snapshotKeyOf(id, await this.store.get('snapshot', id, opts));
  }

  /**
   * Format version 3: snapshot keys shares give this identity, as
   * [snapshot id, K_s, public key of the share's sender]: a key is used only
   * for a snapshot whose header names that sender as owner (sharing.md 9.1).
   * A wrong key opens nothing: the body is authenticated under the right one.
   */
  acceptSnapshotKeys(keys: Iterable<readonly [string, Uint8Array, Uint8Array?]>): void {
    const v3 = this.v3();
    for (const [id, key, owner] of keys) v3.acceptSnapshotKey(id, key, owner);
  }

  /** Format version 3: the members whose member objects verify, oldest first. */
  async listMembers(this: Repository): Promise<MemberInfo[]> {
    return (await this.scanMembers()).members;
  }

  /**
   * Format version 3: every member object: the members (objects that verify
   * with the auth key), and apart the ids of those that are damaged or do
   * not verify, with why (for member list and fsck). Refreshes who the
   * repository names as owners.
   */
  async scanMembers(this: Repository): Promise<{ members: MemberInfo[]; invalid: { id: string; reason: string }[] }> {
    const shared = this.sharedState();
    const { objects, damaged } = await readMemberObjects(this.store);
    const auth = this.memberKeys.auth;
    const members: MemberInfo[] = [];
    const invalid = [...damaged];
    for (const o of objects) {
      if (memberMacValid(o, auth)) members.push(memberInfoOf(o));
      else invalid.push({ id: o.id, reason: 'its mac does not verify with the members\' auth key: not a member' });
    }
    members.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
    shared.members.clear();
    for (const m of members) shared.members.set(hex(m.publicKey), m);
    return { members, invalid };
  }

  /** Format version 3: stores a member object's bytes (lib/format/member.ts encodes them); false if the id exists. */
  async putMemberObject(this: Repository, id: string, bytes: Uint8Array): Promise<boolean> {
    this.v3();
    if (bytes.length > MAX_PLAINTEXT.member) throw new ObnamError('INTERNAL', 'a member object is at most 64 KiB');
    return this.store.put('member', id, bytes);
  }

  /** Format version 3: deletes a member object; NOT_FOUND if absent, PERMISSION where the store forbids deletion. */
  async deleteMemberObject(this: Repository, id: string): Promise<void> {
    this.v3();
    await this.store.delete('member', id);
  }

  /** Format version 3: stores a share or grant object's outer plaintext (lib/format/share.ts), sealed under the members' key. */
  async putRecord(this: Repository, kind: 'share' | 'grant', id: string, plaintext: Uint8Array, opts?: StoreOptions): Promise<boolean> {
    this.v3();
    const ok = await this.store.put(kind, id, this.sealing.sealRecord(kind, id, plaintext), opts);
    await this.store.flush?.();
    return ok;
  }

  /** Format version 3: a share or grant object's outer plaintext. */
  async getRecord(kind: 'share' | 'grant', id: string, opts?: StoreOptions): Promise<Uint8Array> {
    this.v3();
    return this.sealing.openRecord(kind, id, await this.store.get(kind, id, opts), MAX_PLAINTEXT[kind]);
  }

  /** Format version 3: the ids of the share or grant objects. */
  listRecordIds(this: Repository, kind: 'share' | 'grant', opts?: StoreOptions): AsyncIterable<string> {
    this.v3();
    return this.store.list(kind, opts);
  }

  /** Format version 3: deletes a share or grant object; NOT_FOUND if absent. */
  async deleteRecord(this: Repository, kind: 'share' | 'grant', id: string, opts?: StoreOptions): Promise<void> {
    this.v3();
    await this.store.delete(kind, id, opts);
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
   * vanished since the listing (forgotten meanwhile) is left out. In a
   * shared repository, one this identity cannot read (NOT_SHARED) is
   * returned apart with its header.
   */
  async scanSnapshots(this: Repository, opts?: StoreOptions): Promise<SnapshotScan> {
    const ids: string[] = [];
    for await (const id of this.listSnapshotIds(opts)) ids.push(id);
    const snapshots: SnapshotInfo[] = [];
    const damaged: DamagedSnapshot[] = [];
    const unreadable: UnreadableSnapshot[] = [];
    const limit = 16;
    for (let i = 0; i < ids.length; i += limit) {
      await Promise.all(
        ids.slice(i, i + limit).map(async (id) => {
          let stored: Uint8Array;
          try {
            stored = await this.store.get('snapshot', id, opts);
          } catch (e) {
            if (e instanceof ObnamError && e.code === 'NOT_FOUND') return;
            if (!isDamage(e)) throw e;
            damaged.push({ id, error: e });
            return;
          }
          // A version 2 snapshot in a shared repository is one an upgrade is rewriting (sharing.md 12): not this repository's yet, not damage.
          if (isSharedVersion(this.config.version) && !isSharedVersion(envelopeVersion(stored) ?? SHARED_VERSION)) return;
          try {
            snapshots.push(this.sealing.openSnapshot(id, stored));
          } catch (e) {
            if (e instanceof ObnamError && e.code === 'NOT_SHARED') {
              const h = this.sealing.openSnapshotHeader(id, stored);
              const owner = 'owner' in h && h.owner ? h.owner : new Uint8Array(32);
              unreadable.push({ id, owner, ownerName: this.shared?.members.get(hex(owner))?.name, hostname: h.hostname, time: h.time, tree: h.tree });
              return;
            }
            if (!isDamage(e)) throw e;
            damaged.push({ id, error: e });
          }
        }),
      );
    }
    snapshots.sort(byTime);
    unreadable.sort(byTime);
    damaged.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const d of damaged) {
      if (this.reportedDamage.has(d.id)) continue;
      this.reportedDamage.add(d.id);
      this.onDamagedSnapshot?.(d);
    }
    return { snapshots, damaged, unreadable };
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
    await this.store.put('gcplan', id, this.sealing.sealRecord('gcplan', id, encodeGcPlan(plan)), opts);
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
async function refuseUnlessEmpty(store: ObjectStore, spec: StoreSpec | undefined): Promise<void> {
  if (await store.has('config', CONFIG_ID)) {
    throw new ObnamError('REPOSITORY_EXISTS', `a repository already exists at ${store.location}; obnam init never writes over one`);
  }
  let keys = 0;
  for await (const _ of store.list('key')) keys++;
  const present: string[] = keys ? [`${keys} key slot${keys === 1 ? '' : 's'}`] : [];
  for (const kind of ['config', 'snapshot', 'tree', 'chunk', 'gcplan', 'member', 'share', 'grant'] as const) {
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
    spec?.type === 'local'
      ? `remove ${them} (${path.join(spec.dir, 'keys')}) yourself, or initialise an empty directory`
      : `have the server's administrator remove ${them}, or use another client of the server`;
  const advice =
    present.length === 1 && keys > 0
      ? `left by an interrupted init? obnam init deletes nothing: if ${them === 'that key slot' ? 'it protects' : 'they protect'} nothing, ${removeThem}`
      : 'obnam init refuses to write there and deletes nothing: if its config was lost, put back a copy of it; otherwise initialise an empty location';
  throw new ObnamError('REPOSITORY_EXISTS', `${where} holds ${what} but no repository config (${advice})`);
}

/** The config object's bytes; NO_REPOSITORY (naming an interrupted upgrade) if there is none. */
async function readConfigBytes(store: ObjectStore): Promise<Uint8Array> {
  try {
    return await store.get('config', CONFIG_ID);
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'NOT_FOUND') {
      if (await store.has('gcplan', CONFIG_ID).catch(() => false)) {
        throw new ObnamError('NO_REPOSITORY', `an obnam upgrade of the repository at ${store.location} was interrupted; run obnam upgrade to finish it`);
      }
      throw new ObnamError('NO_REPOSITORY', `no obnam repository at ${store.location}`);
    }
    throw e;
  }
}

/** Every member object in the store, decoded; damaged ones (too large, bad shape) apart, with why. */
async function readMemberObjects(store: ObjectStore): Promise<{ objects: MemberObject[]; damaged: { id: string; reason: string }[] }> {
  const objects: MemberObject[] = [];
  const damaged: { id: string; reason: string }[] = [];
  for await (const id of store.list('member')) {
    try {
      objects.push(decodeMemberObject(id, await store.get('member', id)));
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') continue;
      if (!isDamage(e)) throw e;
      damaged.push({ id, reason: e.message });
    }
  }
  return { objects, damaged };
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
