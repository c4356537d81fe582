/**
 * obnam forget in a shared repository (format-spec/sharing.md 10.4): a
 * member forgets their own snapshots; forgetting another member's needs
 * --can-delete. A member without it names only their own snapshots, and
 * their policies consider only their own; a member with it may also name
 * snapshots they cannot read (known by id, owner, host and time alone).
 */
import { ObnamError } from '../lib/errors.js';
import type { ForgetDecision } from '../lib/forget/engine.js';
import type { Repository, SnapshotInfo, UnreadableSnapshot } from '../lib/repo/repository.js';
import type { SnapshotCatalog } from '../lib/repo/views.js';
import { isoTime, localTime } from './format.js';

const keyHex = (k: Uint8Array) => Buffer.from(k).toString('hex');
const ownedBy = (s: SnapshotInfo, repo: Repository) => !!s.owner && keyHex(s.owner) === keyHex(repo.self.publicKey);

/**
 * In a shared repository, what a policy may remove: every readable snapshot
 * for a member with --can-delete, only one's own for the others
 * (format-spec/sharing.md 10.4).
 */
export function forgettable(repo: Repository): SnapshotCatalog {
  if (repo.self.canDelete) return repo;
  const own = (list: SnapshotInfo[]) => list.filter((s) => ownedBy(s, repo));
  return {
    listSnapshotIds: (opts) => repo.listSnapshotIds(opts),
    getSnapshot: (id, opts) => repo.getSnapshot(id, opts),
    scanSnapshots: async (opts) => {
      const scan = await repo.scanSnapshots(opts);
      return { ...scan, snapshots: own(scan.snapshots) };
    },
    listSnapshots: async (opts) => own(await repo.listSnapshots(opts)),
    resolveSnapshot: (ref, opts) => repo.resolveSnapshot(ref, opts),
    resolveSnapshotId: (ref, opts) => repo.resolveSnapshotId(ref, opts),
    deleteSnapshot: (id, opts) => repo.deleteSnapshot(id, opts),
  };
}

/** PERMISSION unless every snapshot to remove is the member's own, or the member has --can-delete (10.4). */
export function checkMayForget(repo: Repository, d: ForgetDecision): void {
  if (repo.self.canDelete) return;
  for (const n of d.named) {
    if ('snapshot' in n && ownedBy(n.snapshot, repo)) continue;
    const whose = 'snapshot' in n ? " is another member's" : ' cannot be read (damaged), so it is not known to be yours';
    throw new ObnamError(
      'PERMISSION',
      `snapshot ${n.id.slice(0, 8)}${whose}: forgetting other members' snapshots needs a member with --can-delete, and ${repo.self.name} is not one`,
    );
  }
}

/**
 * The named snapshots (full ids or prefixes) this member cannot read, apart
 * from the others (which forget reads as usual): PERMISSION for them unless
 * the member has --can-delete.
 */
export async function splitUnreadable(repo: Repository, refs: readonly string[]): Promise<{ readable: string[]; unreadable: UnreadableSnapshot[] }> {
  if (!refs.length) return { readable: [], unreadable: [] };
  const hidden = new Map((await repo.scanSnapshots()).unreadable.map((u) => [u.id, u]));
  const readable: string[] = [];
  const unreadable: UnreadableSnapshot[] = [];
  for (const ref of refs) {
    const u = ref === 'latest' ? undefined : hidden.get(await repo.resolveSnapshotId(ref));
    if (!u) readable.push(ref);
    else if (!unreadable.includes(u)) unreadable.push(u);
  }
  if (unreadable.length && !repo.self.canDelete) {
    throw new ObnamError(
      'PERMISSION',
      `snapshot ${unreadable[0]!.id.slice(0, 8)} is another member's: forgetting other members' snapshots needs a member with --can-delete, and ${repo.self.name} is not one`,
    );
  }
  return { readable, unreadable };
}

export function printUnreadable(list: readonly UnreadableSnapshot[]): void {
  const lines = list.map((u) => `  ${u.id.slice(0, 8)}  ${localTime(u.time)}  ${u.hostname}  ${u.ownerName ?? '(former member)'}  (not shared with you)\n`);
  process.stdout.write(`remove ${list.length} snapshot${list.length === 1 ? '' : 's'} of other members (named):\n${lines.join('')}`);
}

export function unreadableJson(u: UnreadableSnapshot): Record<string, unknown> {
  return { id: u.id, short_id: u.id.slice(0, 8), owner: u.ownerName ?? null, hostname: u.hostname, time: isoTime(u.time), readable: false, damaged: false };
}
