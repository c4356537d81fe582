/**
 * fsck --repair: removes the stored copies that fsck found damaged, so that
 * the next backup meeting their content stores it again. An object's id
 * comes from its content (format-spec 3.2), so a chunk or tree stored again
 * under its id makes every snapshot that names it whole again, with nothing
 * else rewritten. Until then fsck reports the object missing instead of
 * damaged; restore and the mount fail on it exactly as before.
 *
 * An object is removed only if its stored copy is damaged on its own: the
 * store's digest fails, or (outside shared repositories, where a content
 * key comes from the tree that names the object) it does not decrypt,
 * authenticate or match its id when read with no reference's length or
 * range. A chunk that is intact but named wrongly (a tree records another
 * length, or a bundle range past its end) stays: removing it would lose
 * what the other references read correctly. A missing object has nothing to
 * remove, and a damaged snapshot stays for obnam forget to remove by name.
 */
import { randomBytes } from 'node:crypto';
import { describeError, ObnamError, throwIfAborted } from '../errors.js';
import { isSharedVersion } from '../format/version.js';
import type { ConfigView, ObjectInventory, ObjectReader, ObjectRemover, ReferenceReader } from '../repo/views.js';
import type { FsckProblem } from './engine.js';

/** What the repair reads and deletes. */
export type RepairRepository = ConfigView &
  Pick<ObjectReader, 'getObject' | 'getTree'> &
  Pick<ReferenceReader, 'getTreeRefs'> &
  Pick<ObjectInventory, 'storedSize'> &
  ObjectRemover;

export interface RepairedObject {
  kind: 'tree' | 'chunk';
  id: string;
  /** Why it was removed (the damage), or why it was kept. */
  reason: string;
}

export interface RepairReport {
  /** Damaged stored copies removed: the next backup of their content stores them again. */
  removed: RepairedObject[];
  /** Objects fsck reported whose stored copy is intact (the fault is in what names them), left alone. */
  kept: RepairedObject[];
}

export interface RepairOptions {
  signal?: AbortSignal;
}

/** A refused delete, said as what --repair needs. */
function refused(e: unknown): unknown {
  if (!(e instanceof ObnamError && e.code === 'PERMISSION')) return e;
  return new ObnamError('PERMISSION', `fsck --repair needs a client allowed to delete: ${e.message}`, { cause: e });
}

/**
 * Refuses a repair up front, before the whole check, where the store forbids
 * deletion (an append-only client): deletes a random id, which is not there.
 */
export async function checkCanRepair(repo: ObjectRemover): Promise<void> {
  try {
    await repo.deleteObject('chunk', randomBytes(32).toString('hex'));
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'NOT_FOUND') return;
    throw refused(e);
  }
}

export async function repairDamaged(repo: RepairRepository, problems: readonly FsckProblem[], opts: RepairOptions = {}): Promise<RepairReport> {
  const report: RepairReport = { removed: [], kept: [] };
  for (const p of problems) {
    if (p.status !== 'corrupt' || (p.kind !== 'tree' && p.kind !== 'chunk')) continue;
    throwIfAborted(opts.signal);
    const kind = p.kind;
    const damage = await storedDamage(repo, kind, p.id, opts.signal);
    if (damage === undefined) {
      report.kept.push({ kind, id: p.id, reason: 'its stored copy is intact: what names it does not match it' });
      continue;
    }
    try {
      await repo.deleteObject(kind, p.id, { signal: opts.signal });
    } catch (e) {
      if (!(e instanceof ObnamError && e.code === 'NOT_FOUND')) throw refused(e); // NOT_FOUND: gone already, as good as removed
    }
    report.removed.push({ kind, id: p.id, reason: damage });
  }
  return report;
}

/** What is wrong with the stored copy itself, or undefined if it reads intact (or is gone). */
async function storedDamage(repo: RepairRepository, kind: 'tree' | 'chunk', id: string, signal?: AbortSignal): Promise<string | undefined> {
  const damaged = async (read: () => Promise<unknown>): Promise<string | undefined> => {
    try {
      await read();
      return undefined;
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'CORRUPT') return describeError(e);
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  };
  const opts = { signal };
  const digest = await damaged(() => repo.storedSize(kind, id, opts));
  if (digest !== undefined) return digest;
  if (isSharedVersion(repo.config.version)) {
    // Without the content key only a tree's outer envelope and reference list can be checked.
    return kind === 'tree' ? damaged(() => repo.getTreeRefs(id, opts)) : undefined;
  }
  return damaged(() => (kind === 'tree' ? repo.getTree(id, opts) : repo.getObject(kind, id, opts)));
}
