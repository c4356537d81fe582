/**
 * A harness for garbage-collection tests at library level: a repository on a
 * local store opened by two "machines" (each its own store handle, as two
 * processes would have), a clock the test moves, and a store wrapper that
 * lets a test stop one party at a chosen store operation and run the other
 * meanwhile. The wrapper passes every call through to the real store
 * unchanged; it only waits where the test says.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backup, BackupOptions } from '../../lib/backup/engine.js';
import { ObnamError } from '../../lib/errors.js';
import { newConfig } from '../../lib/format/config.js';
import { fsck } from '../../lib/fsck/engine.js';
import { prune, PruneReport } from '../../lib/gc/prune.js';
import type { Kind } from '../../lib/format/version.js';
import { Repository } from '../../lib/repo/repository.js';
import { walkTree } from '../../lib/repo/treewalk.js';
import { LocalStore } from '../../lib/store/local.js';
import type { ObjectStore, StoreOptions } from '../../lib/store/store.js';
import { startRepoPool } from '../../lib/engine-workers/start.js';
import { TEST_KDF } from './kdf.js';

export const PASS = 'gc harness passphrase';
export const GRACE_S = 3600;
export const G = GRACE_S * 1000;

/**
 * A clock the test moves. A backup waiting for a sweep (14.6 B3) sleeps on
 * it: each sleep moves the clock on by the time slept, then calls onSleep
 * (where a test runs the other party: the collector's sweep, say).
 */
export class TestClock {
  onSleep: ((ms: number) => Promise<void> | void) | undefined;
  /** Time slept on this clock so far. */
  slept = 0;
  constructor(public ms: number) {}
  now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
  sleep = async (ms: number): Promise<void> => {
    this.ms += ms;
    this.slept += ms;
    await this.onSleep?.(ms);
    await new Promise((r) => setImmediate(r));
  };
}

export type StoreOp = 'put' | 'get' | 'has' | 'hasMany' | 'list' | 'delete' | 'flush' | 'refresh';
export type Hook = (op: StoreOp, kind: Kind | undefined) => Promise<void> | void;

/** An ObjectStore that calls `hook` before each operation, then the real store. */
export class HookedStore implements ObjectStore {
  hook: Hook | undefined;
  constructor(readonly inner: LocalStore) {}
  get location(): string {
    return this.inner.location;
  }
  private async before(op: StoreOp, kind?: Kind): Promise<void> {
    await this.hook?.(op, kind);
  }
  async put(kind: Kind, id: string, data: Uint8Array, opts?: StoreOptions): Promise<boolean> {
    await this.before('put', kind);
    return this.inner.put(kind, id, data, opts);
  }
  async flush(): Promise<void> {
    await this.before('flush');
    return this.inner.flush();
  }
  async get(kind: Kind, id: string, opts?: StoreOptions): Promise<Uint8Array> {
    await this.before('get', kind);
    return this.inner.get(kind, id, opts);
  }
  async has(kind: Kind, id: string, opts?: StoreOptions): Promise<boolean> {
    await this.before('has', kind);
    return this.inner.has(kind, id, opts);
  }
  async hasMany(kind: Kind, ids: readonly string[], opts?: StoreOptions): Promise<boolean[]> {
    await this.before('hasMany', kind);
    return this.inner.hasMany(kind, ids, opts);
  }
  async *list(kind: Kind, opts?: StoreOptions): AsyncIterable<string> {
    await this.before('list', kind);
    yield* this.inner.list(kind, opts);
  }
  async delete(kind: Kind, id: string, opts?: StoreOptions): Promise<void> {
    await this.before('delete', kind);
    return this.inner.delete(kind, id, opts);
  }
  async refresh(): Promise<void> {
    await this.before('refresh');
    return this.inner.refresh();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** One party (a machine): its own store handle and repository. */
export interface Party {
  store: HookedStore;
  repo: Repository;
}

export async function createRepo(dir: string): Promise<void> {
  const repo = await Repository.init(await LocalStore.create(dir), { type: 'local', dir }, PASS, newConfig(undefined, 1, undefined, GRACE_S), { kdf: TEST_KDF });
  await repo.close();
}

export async function openParty(dir: string): Promise<Party> {
  const store = new HookedStore(await LocalStore.open(dir, { packSize: 64 * 1024 }));
  return { store, repo: await Repository.open(store, PASS) };
}

/** sha256 of every regular file below `dir`, by path relative to the snapshot root. */
export function expectedContent(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const p = path.join(dir, f);
    if (fs.lstatSync(p).isFile()) out.set(p, createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
  }
  return out;
}

/** Restores a snapshot's file contents into memory (every chunk read and checked): path -> sha256. */
export async function restoredContent(repo: Repository, snapshotId: string): Promise<Map<string, string>> {
  const snap = await repo.getSnapshot(snapshotId);
  const out = new Map<string, string>();
  for await (const { path: p, entry } of walkTree((id) => repo.getTree(id), snap.tree, Buffer.alloc(0))) {
    if (entry.type !== 'file') continue;
    const h = createHash('sha256');
    if (entry.data) h.update(entry.data);
    for (const c of entry.chunks ?? []) {
      const plain = await repo.getObject('chunk', c.id);
      if (plain.length !== c.length) throw new Error(`chunk ${c.id} has the wrong length`);
      h.update(plain);
    }
    out.set(p.toString('utf8'), h.digest('hex'));
  }
  return out;
}

/** Runs a backup of `src` as `party`; the snapshot id, or undefined if the GC rules refused it (GC_CONFLICT). */
export async function runBackup(
  party: Party,
  src: string,
  clock: TestClock,
  parent?: null,
  opts: Pick<BackupOptions, 'gcWaitMs' | 'onGcWait'> = {},
): Promise<string | undefined> {
  const pool = startRepoPool(party.repo, { size: 1, perWorker: 2 });
  try {
    const r = await backup(party.repo, { paths: [src], pool, clock, hostname: 'race-host', username: 'race', parent, ...opts });
    return r.id;
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'GC_CONFLICT') return undefined;
    throw e;
  } finally {
    await pool.close();
  }
}

export function runPrune(party: Party, clock: TestClock, exclusive = false): Promise<PruneReport> {
  return prune(party.repo, { clock, exclusive, hostname: 'collector' });
}

/** fsck quick on a fresh handle: the problems found (none expected). */
export async function fsckQuick(dir: string): Promise<string[]> {
  const p = await openParty(dir);
  const pool = startRepoPool(p.repo, { size: 1 });
  try {
    const report = await fsck(p.repo, { quick: true, pool });
    return report.problems.map((x) => `${x.status} ${x.kind} ${x.id}: ${x.message}`);
  } finally {
    await pool.close();
    await p.repo.close();
  }
}

/** A latch: the first waiter to reach it blocks until release() is called. */
export class Gate {
  private opened!: () => void;
  private reachedResolve!: () => void;
  readonly released = new Promise<void>((r) => (this.opened = r));
  readonly reached = new Promise<void>((r) => (this.reachedResolve = r));
  private hit = false;
  /** Blocks the caller (once) until release(). */
  async stop(): Promise<void> {
    if (this.hit) return;
    this.hit = true;
    this.reachedResolve();
    await this.released;
  }
  get wasReached(): boolean {
    return this.hit;
  }
  release(): void {
    this.opened();
  }
}
