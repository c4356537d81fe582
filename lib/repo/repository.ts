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
import { decodeSnapshot, encodeSnapshot, Snapshot } from '../format/snapshot.js';
import { decodeTreeNode, encodeTreeNode, TreeNode } from '../format/tree.js';
import { checkReadableVersion, Kind } from '../format/version.js';
import type { ObjectStore, StoreOptions, StoreSpec } from '../store/store.js';
import { MAX_PLAINTEXT } from './limits.js';

export interface PutResult {
  id: string;
  /** False if the object was already in the store. */
  isNew: boolean;
  /** Bytes stored (0 if it already existed). */
  storedBytes: number;
}

export interface SnapshotInfo extends Snapshot {
  id: string;
}

/** How new key slots are made: the scrypt cost (default DEFAULT_KDF_COST; test suites inject a cheap one). */
export interface NewKeyOptions {
  kdf?: KdfCost;
}

/** Errors that make Repository.open skip one key slot and go on with the others. */
const SKIPPED_SLOT_ERRORS: ReadonlySet<string> = new Set(['CORRUPT', 'UNSUPPORTED_VERSION', 'KDF_LIMIT']);

function passphraseBytes(p: string | Uint8Array): Uint8Array {
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
}

export class Repository {
  private gear?: Uint32Array;

  private constructor(
    readonly store: ObjectStore,
    readonly storeSpec: StoreSpec,
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
    const configBytes = sealObject(keys.encryption, 'config', CONFIG_ID, encodeConfig(config), config.compressionLevel);
    // The config is written last: a store with a config is a complete repository.
    if (!(await store.put('config', CONFIG_ID, configBytes))) {
      throw new ObnamError('REPOSITORY_EXISTS', `another obnam init created a repository at ${store.location} at the same time; use that one`);
    }
    return new Repository(store, spec, keys, config, keyId);
  }

  /** Opens a repository with a passphrase; BAD_PASSPHRASE if no key slot accepts it. */
  static async open(store: ObjectStore, spec: StoreSpec, passphrase: string | Uint8Array): Promise<Repository> {
    let configBytes: Uint8Array;
    try {
      configBytes = await store.get('config', CONFIG_ID);
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') {
        throw new ObnamError('NO_REPOSITORY', `no obnam repository at ${store.location}`);
      }
      throw e;
    }
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
        plain = openObject(keys.encryption, 'config', CONFIG_ID, configBytes, MAX_PLAINTEXT.config);
      } catch (e) {
        // A slot left by an interrupted init: it opens, but its keys are not this repository's.
        if (e instanceof ObnamError && e.code === 'CORRUPT') {
          unusable.push(`${id.slice(0, 8)} (its keys do not open the config)`);
          continue;
        }
        throw e;
      }
      const config = decodeConfig(decodeCbor(plain, 'repository config'));
      return new Repository(store, spec, keys, config, id);
    }
    if (unusable.length) {
      throw new ObnamError('BAD_PASSPHRASE', `wrong passphrase, or its key slot is unusable: ${unusable.join('; ')}`);
    }
    throw new ObnamError('BAD_PASSPHRASE', 'wrong passphrase: no key of this repository opens with it');
  }

  /** Opens a repository with keys already unlocked (worker threads). */
  static withKeys(store: ObjectStore, spec: StoreSpec, keys: MasterKeys, config: RepoConfig, keyId: string): Repository {
    return new Repository(store, spec, keys, config, keyId);
  }

  /** The content id of plaintext: HMAC-SHA256(id key, plaintext), hex. */
  contentId(plaintext: Uint8Array): string {
    return hmacSha256(this.keys.id, plaintext).toString('hex');
  }

  chunker(): Chunker {
    this.gear ??= deriveGearTable(this.keys.chunker);
    return new Chunker(this.gear, this.config.chunker);
  }

  seal(kind: Kind, id: string, plaintext: Uint8Array): Uint8Array {
    return sealObject(this.keys.encryption, kind, id, plaintext, this.config.compressionLevel);
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
    if (await this.store.has(kind, id, opts)) return { id, isNew: false, storedBytes: 0 };
    const sealed = this.seal(kind, id, plaintext);
    const size = sealed.length; // read before put: the bytes may be transferred to another thread
    const isNew = await this.store.put(kind, id, sealed, opts);
    return { id, isNew, storedBytes: isNew ? size : 0 };
  }

  async getObject(kind: Kind, id: string, opts?: StoreOptions): Promise<Uint8Array> {
    return this.unseal(kind, id, await this.store.get(kind, id, opts));
  }

  async putTree(node: TreeNode, opts?: StoreOptions): Promise<PutResult> {
    return this.putObject('tree', encodeTreeNode(node), opts);
  }

  async getTree(id: string, opts?: StoreOptions): Promise<TreeNode> {
    return decodeTreeNode(decodeCbor(await this.getObject('tree', id, opts), `tree ${id}`), `tree ${id}`);
  }

  async putSnapshot(s: Snapshot, opts?: StoreOptions): Promise<PutResult> {
    return this.putObject('snapshot', encodeSnapshot(s), opts);
  }

  async getSnapshot(id: string, opts?: StoreOptions): Promise<SnapshotInfo> {
    const s = decodeSnapshot(decodeCbor(await this.getObject('snapshot', id, opts), `snapshot ${id}`), `snapshot ${id}`);
    return { id, ...s };
  }

  /** All snapshots, oldest first. */
  async listSnapshots(opts?: StoreOptions): Promise<SnapshotInfo[]> {
    const ids: string[] = [];
    for await (const id of this.store.list('snapshot', opts)) ids.push(id);
    const out: SnapshotInfo[] = [];
    const limit = 16;
    for (let i = 0; i < ids.length; i += limit) {
      out.push(...(await Promise.all(ids.slice(i, i + limit).map((id) => this.getSnapshot(id, opts)))));
    }
    return out.sort((a, b) => a.time.sec - b.time.sec || a.time.nsec - b.time.nsec || (a.id < b.id ? -1 : 1));
  }

  /** A snapshot by full id, unique id prefix, or "latest". */
  async resolveSnapshot(ref: string, opts?: StoreOptions): Promise<SnapshotInfo> {
    if (ref === 'latest') {
      const all = await this.listSnapshots(opts);
      const last = all[all.length - 1];
      if (!last) throw new ObnamError('NOT_FOUND', 'the repository has no snapshots yet');
      return last;
    }
    if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new ObnamError('NOT_FOUND', `no snapshot ${JSON.stringify(ref)}: expected a hex id, an id prefix or "latest"`);
    const matches: string[] = [];
    for await (const id of this.store.list('snapshot', opts)) if (id.startsWith(ref)) matches.push(id);
    if (matches.length === 0) throw new ObnamError('NOT_FOUND', `no snapshot ${ref}`);
    if (matches.length > 1) throw new ObnamError('AMBIGUOUS', `snapshot prefix ${ref} matches ${matches.length} snapshots; give more digits`);
    return this.getSnapshot(matches[0]!, opts);
  }

  async listKeys(): Promise<KeySlotInfo[]> {
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
  async removeKey(ref: string): Promise<string> {
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

  async close(): Promise<void> {
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
  for (const kind of ['config', 'snapshot', 'tree', 'chunk'] as const) {
    for await (const _ of store.list(kind)) {
      present.push(kind === 'config' ? 'a stray config object' : `${kind}s`);
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
