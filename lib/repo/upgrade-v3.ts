/**
 * obnam upgrade --shared: converts a format version 2 repository into a
 * shared repository of format version 3 (format-spec/sharing.md section 12),
 * owned by the upgrading identity. Resumable: every step either finds its
 * work done or does it, so an interrupted run is finished by running again.
 *
 *   1. a fresh member key set and a member object for the identity
 *      (can_delete); reused if a run before this one wrote it;
 *   2. the config replaced: the version 3 config (sealed under `members`)
 *      staged under 00…01, the version 2 config deleted, the version 3
 *      config put under 00…00, the staged copy deleted;
 *   3. every version 2 snapshot rewritten as a version 3 snapshot of the
 *      member: file content read through the old chunks, chunked again with
 *      the new chunker key, trees rebuilt with content keys, the old time,
 *      hostname, paths, tags and summary kept, `upgraded_from` recording the
 *      old id. A snapshot some version 3 snapshot names as upgraded_from is
 *      skipped (rewritten by an earlier run);
 *   4. each old snapshot deleted once its rewrite is flushed, then the old
 *      key slots, then an exclusive collection removing the old trees and
 *      chunks (nothing else may write meanwhile: README 14.7).
 *
 * The old objects stay readable with the old master keys (key slots and the
 * passphrase) until step 4; the config between the steps says how far a run
 * got. This module knows the version 2 side (key slots, the old keys); the
 * version 3 side is the shared Repository behind `SharedTarget`.
 */
import { randomBytes } from 'node:crypto';
import { ObnamError } from '../errors.js';
import type { Identity } from '../crypto/identity.js';
import { MemberKeySet, newMemberKeySet, SHARED_FORMAT_VERSION } from '../crypto/memberkeys.js';
import { checkMemberName, decodeMemberObject, encodeMemberObject, MemberInfo, MemberObject, newMemberId, unlockMemberKeys } from '../format/member.js';
import type { Chunker } from '../chunking/fastcdc.js';
import { chunkViews } from '../chunking/fastcdc.js';
import type { MasterKeys } from '../crypto/keys.js';
import { parseKeySlot, tryOpenKeySlot } from '../crypto/keyslot.js';
import { decodeCbor } from '../format/cbor.js';
import { configAtVersion, decodeConfig, encodeConfig, RepoConfig } from '../format/config.js';
import { envelopeVersion, openObject } from '../format/envelope.js';
import { MemberKeySealing } from './sealing-v3.js';
import { CONFIG_ID } from '../format/ids.js';
import type { Snapshot } from '../format/snapshot.js';
import { bundleContent, isBundleRef } from '../format/tree.js';
import type { ChunkRef, ObjectAddress, TreeEntry } from '../format/tree.js';
import type { ObjectStore, StoreOptions } from '../store/store.js';
import { MAX_PLAINTEXT } from './limits.js';
import { Repository } from './repository.js';
import { directoryEntries } from './treewalk.js';
import { upgradeRepository } from './upgrade.js';
import { GC_VERSION, isSharedVersion } from '../format/version.js';

/** The staging id of the version 3 config while it replaces the version 2 one (12.2). */
export const STAGED_CONFIG_ID = '0'.repeat(63) + '1';

/** What the upgrade needs of the shared (version 3) repository it writes into. */
export interface SharedTarget {
  /** The chunker with the new chunker key and the config's parameters. */
  chunker(): Chunker;
  /** Stores one chunk (deduplicated); its id and content key. */
  putChunk(bytes: Uint8Array, opts?: StoreOptions): Promise<{ ref: ChunkRef; storedBytes: number }>;
  /** Stores one directory's entries (sorted by name) as tree nodes; the root node's address. */
  writeDirectory(entries: TreeEntry[], opts?: StoreOptions): Promise<ObjectAddress>;
  /** Writes a snapshot of the member (readable by them alone) and returns its id. */
  putSnapshot(s: Snapshot & { treeKey: Uint8Array; upgradedFrom: string }, opts?: StoreOptions): Promise<string>;
  /** The version 2 snapshot ids that readable version 3 snapshots name as upgraded_from. */
  upgradedFrom(opts?: StoreOptions): Promise<Set<string>>;
  flush(): Promise<void>;
}

export interface UpgradeV3Progress {
  snapshot: string;
  done: number;
  total: number;
}

export interface RewriteReport {
  /** The old snapshot ids rewritten by this run, and the new ids. */
  rewritten: { from: string; to: string }[];
  /** Old snapshots an earlier run had rewritten already. */
  skipped: string[];
  /** Plaintext bytes of file content read through old chunks. */
  bytesRead: number;
  /** Bytes this run added to the store (new chunks and trees). */
  storedBytes: number;
}

/** The old master keys from the version 2 key slots: whichever slot the passphrase opens. */
export async function unlockOldKeys(store: ObjectStore, passphrase: Uint8Array, opts?: StoreOptions): Promise<{ keys: MasterKeys; keyId: string } | undefined> {
  for await (const id of store.list('key', opts)) {
    const bytes = await store.get('key', id, opts);
    if (bytes.length > MAX_PLAINTEXT.key) continue;
    let keys: MasterKeys | undefined;
    try {
      keys = await tryOpenKeySlot(parseKeySlot(id, bytes), passphrase);
    } catch (e) {
      if (e instanceof ObnamError && (e.code === 'CORRUPT' || e.code === 'UNSUPPORTED_VERSION' || e.code === 'KDF_LIMIT')) continue;
      throw e;
    }
    if (keys) return { keys, keyId: id };
  }
  return undefined;
}

/** The state of the config objects: which step of 12.2 a repository is in. */
export type ConfigState =
  | { step: 'v2'; config: Uint8Array; staged?: Uint8Array }
  | { step: 'staged-only'; staged: Uint8Array }
  | { step: 'v3'; config: Uint8Array; staged?: Uint8Array }
  | { step: 'none' };

async function getOrUndefined(store: ObjectStore, id: string, opts?: StoreOptions): Promise<Uint8Array | undefined> {
  try {
    return await store.get('config', id, opts);
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
}

export async function configState(store: ObjectStore, opts?: StoreOptions): Promise<ConfigState> {
  const config = await getOrUndefined(store, CONFIG_ID, opts);
  const staged = await getOrUndefined(store, STAGED_CONFIG_ID, opts);
  if (config) {
    const v = envelopeVersion(config);
    if (v === undefined) throw new ObnamError('CORRUPT', 'repository config: not an obnam object');
    if (isSharedVersion(v)) return { step: 'v3', config, staged };
    return { step: 'v2', config, staged };
  }
  if (staged) return { step: 'staged-only', staged };
  return { step: 'none' };
}

/** Deletes a config object if it is there. */
export async function deleteConfigIfPresent(store: ObjectStore, id: string, opts?: StoreOptions): Promise<void> {
  try {
    await store.delete('config', id, opts);
  } catch (e) {
    if (!(e instanceof ObnamError && e.code === 'NOT_FOUND')) throw e;
  }
}

/** Opens the version 2 config with the old keys. */
export function openOldConfig(keys: MasterKeys, stored: Uint8Array): RepoConfig {
  return decodeConfig(decodeCbor(openObject(keys.encryption, 'config', CONFIG_ID, stored, MAX_PLAINTEXT.config), 'repository config'));
}

/** The version 2 snapshot ids in the store: snapshot objects whose envelope is older than version 3. */
export async function oldSnapshotIds(store: ObjectStore, opts?: StoreOptions): Promise<string[]> {
  const out: string[] = [];
  for await (const id of store.list('snapshot', opts)) {
    const v = envelopeVersion(await store.get('snapshot', id, opts));
    if (v !== undefined && !isSharedVersion(v)) out.push(id);
  }
  return out.sort();
}

/** What a dry run reports: the version 2 snapshots and the bytes a rewrite reads (file content). */
export async function planRewrite(old: Repository, ids: readonly string[], opts?: StoreOptions): Promise<{ snapshots: number; bytes: number; storedBytes: number }> {
  let bytes = 0;
  let storedBytes = 0;
  for (const id of ids) bytes += (await old.getSnapshot(id, opts)).summary.bytes;
  for await (const kind of ['chunk', 'tree', 'snapshot'] as const) {
    for await (const id of old.listIds(kind, opts)) storedBytes += await old.storedSize(kind, id, opts);
  }
  return { snapshots: ids.length, bytes, storedBytes };
}

/**
 * Step 3 (and the snapshot deletions of step 4): rewrites each old snapshot
 * of `old` into `target`, oldest first, deleting each old one once its
 * rewrite is flushed. Subtrees and files met before are not read again.
 */
export async function rewriteSnapshots(
  old: Repository,
  target: SharedTarget,
  ids: readonly string[],
  opts: StoreOptions & { onProgress?: (p: UpgradeV3Progress) => void } = {},
): Promise<RewriteReport> {
  const report: RewriteReport = { rewritten: [], skipped: [], bytesRead: 0, storedBytes: 0 };
  const done = await target.upgradedFrom(opts);
  const trees = new Map<string, ObjectAddress>(); // old tree id -> new address
  const files = new Map<string, ChunkRef[]>(); // old chunk list -> new chunk list
  const chunker = target.chunker();
  const snapshots = [];
  for (const id of ids) snapshots.push(await old.getSnapshot(id, opts));
  snapshots.sort((a, b) => a.time.sec - b.time.sec || a.time.nsec - b.time.nsec || (a.id < b.id ? -1 : 1));
  const newIds = new Map<string, string>();

  const rewriteFile = async (chunks: ChunkRef[]): Promise<ChunkRef[]> => {
    const key = chunks.map((c) => c.id).join(',');
    const known = files.get(key);
    if (known) return known;
    let i = 0;
    let current: Uint8Array = new Uint8Array(0);
    let at = 0;
    const read = async (buf: Uint8Array, offset: number, length: number): Promise<number> => {
      while (at === current.length) {
        if (i === chunks.length) return 0;
        current = await old.getObject('chunk', chunks[i++]!.id, opts);
        at = 0;
        report.bytesRead += current.length;
      }
      const n = Math.min(length, current.length - at);
      buf.set(current.subarray(at, at + n), offset);
      at += n;
      return n;
    };
    const size = chunks.reduce((n, c) => n + c.length, 0);
    const out: ChunkRef[] = [];
    for await (const view of chunkViews(chunker, read, (n) => new Uint8Array(n), size)) {
      const put = await target.putChunk(view, opts);
      report.storedBytes += put.storedBytes;
      out.push(put.ref);
    }
    files.set(key, out);
    return out;
  };

  const rewriteTree = async (oldId: string, depth: number): Promise<ObjectAddress> => {
    const known = trees.get(oldId);
    if (known) return known;
    if (depth > 4096) throw new ObnamError('CORRUPT', `tree ${oldId}: directories nested too deep`);
    const entries: TreeEntry[] = [];
    for await (const e of directoryEntries((id) => old.getTree(id, opts), oldId)) {
      opts.signal?.throwIfAborted();
      const n: TreeEntry = { ...e };
      delete n.subtree;
      delete n.subtreeKey;
      delete n.chunks;
      if (e.type === 'dir' && e.subtree !== undefined) {
        const sub = await rewriteTree(e.subtree, depth + 1);
        n.subtree = sub.id;
        if (sub.key) n.subtreeKey = sub.key;
      } else if (e.chunks && isBundleRef(e.chunks)) {
        // A small file in a bundle (version 4): version 3 has no bundles, so it goes inline again.
        n.data = Buffer.from(bundleContent(e.chunks[0]!, await old.getObject('chunk', e.chunks[0]!.id, opts)));
        report.bytesRead += n.data.length;
      } else if (e.chunks) {
        n.chunks = await rewriteFile(e.chunks);
      }
      entries.push(n);
    }
    const addr = await target.writeDirectory(entries, opts);
    trees.set(oldId, addr);
    return addr;
  };

  let count = 0;
  for (const s of snapshots) {
    count++;
    opts.onProgress?.({ snapshot: s.id, done: count - 1, total: snapshots.length });
    if (done.has(s.id)) {
      report.skipped.push(s.id);
    } else {
      const root = await rewriteTree(s.tree, 0);
      if (!root.key) throw new ObnamError('INTERNAL', 'the shared repository gave a tree without its content key');
      const { id: _id, ...fields } = s;
      const next: Snapshot & { treeKey: Uint8Array; upgradedFrom: string } = { ...fields, tree: root.id, treeKey: root.key, upgradedFrom: s.id };
      const parent = s.parent !== undefined ? newIds.get(s.parent) : undefined;
      if (parent !== undefined) next.parent = parent;
      else delete next.parent;
      const to = await target.putSnapshot(next, opts);
      await target.flush();
      newIds.set(s.id, to);
      report.rewritten.push({ from: s.id, to });
    }
    // The rewrite is durable (flushed now or by an earlier run): the old snapshot goes.
    try {
      await old.deleteSnapshot(s.id, opts);
    } catch (e) {
      if (!(e instanceof ObnamError && e.code === 'NOT_FOUND')) throw e;
    }
  }
  opts.onProgress?.({ snapshot: '', done: snapshots.length, total: snapshots.length });
  return report;
}

// ---- steps 1 and 2: the member and the config ----

/** The member objects in the store, decoded (damaged ones are left out: they are nobody's). */
async function memberObjects(store: ObjectStore, opts?: StoreOptions): Promise<MemberObject[]> {
  const out: MemberObject[] = [];
  for await (const id of store.list('member', opts)) {
    try {
      out.push(decodeMemberObject(id, await store.get('member', id, opts)));
    } catch (e) {
      if (!(e instanceof ObnamError && (e.code === 'CORRUPT' || e.code === 'UNSUPPORTED_VERSION'))) throw e;
    }
  }
  return out;
}

const samePublic = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** Seals a version 3 config under the members' key, as the object `id` (00…00 or the staging id 00…01). */
export function sealSharedConfigAs(keys: MemberKeySet, config: RepoConfig, id: string): Uint8Array {
  return new MemberKeySealing(keys, config.compressionLevel).sealRecord('config', id, encodeConfig({ ...config, version: SHARED_FORMAT_VERSION }));
}

function openSharedConfigAs(keys: MemberKeySet, stored: Uint8Array, id: string): RepoConfig {
  const c = decodeConfig(decodeCbor(new MemberKeySealing(keys, 0).openRecord('config', id, stored, MAX_PLAINTEXT.config), 'repository config'));
  if (c.version !== SHARED_FORMAT_VERSION) throw new ObnamError('CORRUPT', `config ${id.slice(0, 8)}: not a version 3 config`);
  return c;
}

/**
 * Steps 1 and 2: the identity's member object (made, or found from an
 * interrupted run) and the version 3 config in place of the version 2 one.
 * `oldConfig` is the version 2 config (undefined once it is gone). Returns
 * the version 3 config.
 */
export async function replaceConfig(
  store: ObjectStore,
  identity: Identity,
  name: string,
  oldConfig: RepoConfig | undefined,
  opts: StoreOptions & { now?: () => number } = {},
): Promise<RepoConfig> {
  const state = await configState(store, opts);
  const members = await memberObjects(store, opts);
  const mine = members.find((m) => samePublic(m.publicKey, identity.public));
  let keys: MemberKeySet;
  if (mine) {
    keys = unlockMemberKeys(mine, identity);
  } else {
    if (state.step !== 'v2' || members.length > 0) {
      throw new ObnamError(
        'REFUSED',
        `an upgrade of ${store.location} to a shared repository was started with another identity; finish it with that identity (obnam upgrade --shared)`,
      );
    }
    keys = newMemberKeySet();
    const info: MemberInfo = {
      id: newMemberId(),
      name: checkMemberName(name),
      publicKey: identity.public,
      canDelete: true,
      created: Math.floor((opts.now?.() ?? Date.now()) / 1000),
      addedBy: '',
    };
    await store.put('member', info.id, encodeMemberObject(keys, info), opts); // step 1
    await store.flush?.();
  }
  if (state.step === 'none') throw new ObnamError('NO_REPOSITORY', `no obnam repository at ${store.location}`);
  if (state.step === 'v3') {
    const config = openSharedConfigAs(keys, state.config, CONFIG_ID);
    if (state.staged) await deleteConfigIfPresent(store, STAGED_CONFIG_ID, opts);
    return config;
  }
  let config: RepoConfig;
  if (state.step === 'staged-only' || state.staged) {
    config = openSharedConfigAs(keys, state.staged!, STAGED_CONFIG_ID);
  } else {
    if (!oldConfig) throw new ObnamError('INTERNAL', 'upgrade: the version 2 config is needed to stage the version 3 one');
    // A new repository id: the snapshots all get new ids, and caches keyed by the old id would call the old ones vanished.
    // Version 3 has no bundles (format-spec 6.7): the rewrite stores small files inline again.
    config = { ...configAtVersion(oldConfig, SHARED_FORMAT_VERSION), repositoryId: randomBytes(32).toString('hex') };
    await store.put('config', STAGED_CONFIG_ID, sealSharedConfigAs(keys, config, STAGED_CONFIG_ID), opts); // 2: stage
    await store.flush?.();
  }
  if (state.step === 'v2') await deleteConfigIfPresent(store, CONFIG_ID, opts); // 2: from here on, version 2 clients refuse it
  await store.put('config', CONFIG_ID, sealSharedConfigAs(keys, config, CONFIG_ID), opts);
  await store.flush?.();
  await deleteConfigIfPresent(store, STAGED_CONFIG_ID, opts);
  return config;
}

// ---- step 4: what is left of version 2 ----

/** Deletes the key slots and the version 2 collection plans (after every old snapshot is gone). */
export async function removeOldKeysAndPlans(store: ObjectStore, opts?: StoreOptions): Promise<{ keySlots: number; plans: number }> {
  let keySlots = 0;
  let plans = 0;
  for (const id of await collect(store.list('key', opts))) {
    await store.delete('key', id, opts);
    keySlots++;
  }
  for (const id of await collect(store.list('gcplan', opts))) {
    const v = envelopeVersion(await store.get('gcplan', id, opts));
    if (v !== undefined && !isSharedVersion(v)) {
      await store.delete('gcplan', id, opts);
      plans++;
    }
  }
  await store.flush?.();
  return { keySlots, plans };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

// ---- the whole upgrade ----

/** The shared repository as the upgrade uses it: where it writes, and its collector. */
export interface SharedSession extends SharedTarget {
  /** An exclusive collection (README 14): what no version 3 snapshot reaches goes. */
  collect(opts?: StoreOptions): Promise<{ trees: number; chunks: number; bytes: number }>;
}

export interface UpgradeV3Options {
  /** The repository's passphrase (it opens the version 2 key slots). */
  passphrase: Uint8Array;
  /** The upgrading member's identity. */
  identity: Identity;
  /** The member's name (sharing.md 5.1). */
  name: string;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Opens the store as a shared repository with the identity (the version 3 data path). */
  openShared: (store: ObjectStore, identity: Identity) => Promise<SharedSession>;
  onPhase?: (message: string) => void;
  onProgress?: (p: UpgradeV3Progress) => void;
}

export interface UpgradeV3Result {
  dryRun: boolean;
  /** Nothing was left to do. */
  already: boolean;
  /** Version 2 snapshots found, and their file bytes (what a rewrite reads). */
  snapshots: number;
  bytes: number;
  /** Bytes the version 2 objects take in the store (dry run). */
  storedBytes?: number;
  rewritten: { from: string; to: string }[];
  skipped: string[];
  keySlotsRemoved: number;
  collected: { trees: number; chunks: number; bytes: number };
}

/** obnam upgrade --shared: the whole of sharing.md 12, resumable. */
export async function upgradeToShared(store: ObjectStore, opts: UpgradeV3Options): Promise<UpgradeV3Result> {
  const so = { signal: opts.signal };
  let state = await configState(store, so);
  if (state.step === 'none') throw new ObnamError('NO_REPOSITORY', `no obnam repository at ${store.location}`);
  let old: Repository | undefined;
  if (state.step === 'v2') {
    old = await Repository.openConfig(store, opts.passphrase, 'config', state.config);
    if (old.config.version < GC_VERSION) {
      if (opts.dryRun) throw new ObnamError('REFUSED', `${store.location} has format version 1: run obnam upgrade (to version 4) first`);
      await upgradeRepository(store, opts.passphrase);
      state = await configState(store, so);
      if (state.step !== 'v2') throw new ObnamError('INTERNAL', 'upgrade to version 2 left no version 2 config');
      old = await Repository.openConfig(store, opts.passphrase, 'config', state.config);
    }
  }
  const oldIds = await oldSnapshotIds(store, so);
  const keySlots = (await collect(store.list('key', so))).length;
  const result: UpgradeV3Result = {
    dryRun: !!opts.dryRun,
    already: false,
    snapshots: oldIds.length,
    bytes: 0,
    rewritten: [],
    skipped: [],
    keySlotsRemoved: 0,
    collected: { trees: 0, chunks: 0, bytes: 0 },
  };
  const oldView = async (config: RepoConfig): Promise<Repository> => {
    if (old) return old;
    const unlocked = await unlockOldKeys(store, opts.passphrase, so);
    if (!unlocked) throw new ObnamError('BAD_PASSPHRASE', 'wrong passphrase: no key slot of the version 2 repository opens with it');
    old = Repository.withKeys(store, unlocked.keys, configAtVersion(config, GC_VERSION), unlocked.keyId);
    return old;
  };

  if (opts.dryRun) {
    const config = state.step === 'v2' ? old!.config : await replaceConfigDryRun(store, opts.identity, so);
    if (oldIds.length) {
      const plan = await planRewrite(await oldView(config), oldIds, so);
      result.bytes = plan.bytes;
      result.storedBytes = plan.storedBytes;
    }
    result.already = state.step === 'v3' && oldIds.length === 0 && keySlots === 0;
    return result;
  }
  if (state.step === 'v3' && oldIds.length === 0 && keySlots === 0) result.already = true;

  opts.onPhase?.(`upgrading ${store.location} to a shared repository (format version 3): ${oldIds.length} snapshots to rewrite`);
  const config = await replaceConfig(store, opts.identity, opts.name, old?.config, so);
  const shared = await opts.openShared(store, opts.identity);
  if (oldIds.length) {
    const view = await oldView(config);
    for (const id of oldIds) result.bytes += (await view.getSnapshot(id, so)).summary.bytes;
    opts.onPhase?.(`upgrading: rewriting ${oldIds.length} snapshots`);
    const r = await rewriteSnapshots(view, shared, oldIds, { ...so, onProgress: opts.onProgress });
    result.rewritten = r.rewritten;
    result.skipped = r.skipped;
  }
  opts.onPhase?.('upgrading: removing the old key slots');
  result.keySlotsRemoved = (await removeOldKeysAndPlans(store, so)).keySlots;
  opts.onPhase?.('upgrading: collecting the old trees and chunks');
  result.collected = await shared.collect(so);
  if (result.collected.trees + result.collected.chunks > 0) result.already = false;
  return result;
}

/** The version 3 config for a dry run on a repository whose config was already replaced. */
async function replaceConfigDryRun(store: ObjectStore, identity: Identity, opts?: StoreOptions): Promise<RepoConfig> {
  const state = await configState(store, opts);
  const mine = (await memberObjects(store, opts)).find((m) => samePublic(m.publicKey, identity.public));
  if (!mine) throw new ObnamError('REFUSED', `the upgrade of ${store.location} was started with another identity`);
  const keys = unlockMemberKeys(mine, identity);
  if (state.step === 'v3') return openSharedConfigAs(keys, state.config, CONFIG_ID);
  if (state.step === 'staged-only') return openSharedConfigAs(keys, state.staged, STAGED_CONFIG_ID);
  throw new ObnamError('INTERNAL', 'upgrade dry run: unexpected config state');
}

/** The exclusive collection of step 4 on the shared repository (the caller's: the collector is an engine, lib/gc). */
export type SharedCollector = (repo: Repository, opts?: StoreOptions) => Promise<{ trees: number; chunks: number; bytes: number }>;

/**
 * Opens `store` as a shared repository for the upgrade: the version 3 data
 * path of lib/repo/repository.ts behind the narrow SharedSession, collecting
 * with `collector`. The store stays the caller's to close.
 */
export async function openSharedSession(store: ObjectStore, identity: Identity, collector: SharedCollector): Promise<SharedSession> {
  const repo = await Repository.openShared(store, identity);
  return {
    chunker: () => repo.chunker(),
    putChunk: async (bytes, opts) => {
      const r = await repo.putObject('chunk', bytes, opts);
      const ref: ChunkRef = { id: r.id, length: bytes.length };
      if (r.key) ref.key = r.key;
      return { ref, storedBytes: r.storedBytes };
    },
    writeDirectory: (entries, opts) =>
      repo.writeDirectory(entries, async (node) => {
        const r = await repo.putTree(node, opts);
        return r.key ? { id: r.id, key: r.key } : { id: r.id };
      }),
    putSnapshot: async (s, opts) => (await repo.putSnapshot(s, opts)).id,
    upgradedFrom: async (opts) => {
      const out = new Set<string>();
      for (const s of (await repo.scanSnapshots(opts)).snapshots) if (s.upgradedFrom) out.add(s.upgradedFrom);
      return out;
    },
    flush: () => repo.flush(),
    collect: (opts) => collector(repo, opts),
  };
}
