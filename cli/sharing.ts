/**
 * What the commands of a shared (version 3) repository look up about its
 * members, shares and grants (format-spec/sharing.md 5, 9): the member
 * directory (authentic members by name and by public key), the share and
 * grant objects the acting member owns, and the recipients standing grants
 * add to a new snapshot (9.3).
 */
import { encodePublicKey } from '../lib/crypto/pubkey.js';
import { ObnamError } from '../lib/errors.js';
import type { MemberInfo } from '../lib/format/member.js';
import { currentGrantees, Grant, Grantee, openGrantObject, openShareObject, OpenedShare } from '../lib/format/share.js';
import { isDamage, Repository } from '../lib/repo/repository.js';

const keyHex = (k: Uint8Array) => Buffer.from(k).toString('hex');

/** The authentic members of a repository, by name and by public key. */
export class MemberDirectory {
  readonly byName = new Map<string, MemberInfo>();
  private readonly byKey = new Map<string, MemberInfo>();
  constructor(
    readonly members: readonly MemberInfo[],
    /** Member objects that are damaged or whose mac fails: not members (shown by member list). */
    readonly invalid: readonly { id: string; reason: string }[] = [],
  ) {
    for (const m of members) {
      this.byName.set(m.name, m);
      this.byKey.set(keyHex(m.publicKey), m);
    }
  }
  ofKey(key: Uint8Array): MemberInfo | undefined {
    return this.byKey.get(keyHex(key));
  }
  /** The member's name, or a short form of the key of someone who is no longer a member. */
  nameOf(key: Uint8Array): string {
    return this.ofKey(key)?.name ?? `(former member ${encodePublicKey(key).slice(0, 16)}…)`;
  }
  /** The member named `name`; NOT_FOUND naming the members if there is none. */
  named(name: string): MemberInfo {
    const m = this.byName.get(name);
    if (!m) {
      const names = [...this.byName.keys()].sort().join(', ');
      throw new ObnamError('NOT_FOUND', `no member named ${JSON.stringify(name)} (members: ${names})`);
    }
    return m;
  }
}

/** USAGE unless the repository is a shared one. */
export function requireShared(repo: Repository, command: string): void {
  if (repo.formatVersion !== 3) {
    throw new ObnamError(
      'USAGE',
      `${command} needs a shared repository (format version 3, made by obnam init --shared or obnam upgrade); this one has version ${repo.formatVersion}`,
    );
  }
}

/** PERMISSION unless the acting member may delete (add and remove members, forget others' snapshots). */
export function requireCanDelete(repo: Repository, what: string): void {
  if (!repo.self.canDelete) {
    throw new ObnamError('PERMISSION', `${what} needs a member with --can-delete; ${repo.self.name} is not one`);
  }
}

export async function memberDirectory(repo: Repository): Promise<MemberDirectory> {
  const { members, invalid } = await repo.scanMembers();
  return new MemberDirectory(members, invalid);
}

/**
 * Opens every share or grant object with `open`. One that is damaged or
 * malformed (any member can write such objects) is named on stderr and
 * passed over: it must not stop another member's commands.
 */
async function openRecords<T>(repo: Repository, kind: 'share' | 'grant', open: (id: string, plain: Uint8Array) => T | undefined): Promise<T[]> {
  const out: T[] = [];
  for await (const id of repo.listRecordIds(kind)) {
    try {
      const v = open(id, await repo.getRecord(kind, id));
      if (v) out.push(v);
    } catch (e) {
      if (e instanceof ObnamError && e.code === 'NOT_FOUND') continue; // deleted since the listing
      if (!isDamage(e)) throw e;
      process.stderr.write(`obnam: warning: passing over damaged ${kind} object ${id}: ${e.message}\n`);
    }
  }
  return out;
}

/** The share objects the acting member made (it holds a stanza in each), with their ids. */
export async function ownShares(repo: Repository): Promise<OpenedShare[]> {
  const me = keyHex(repo.identity.public);
  const all = await openRecords(repo, 'share', (id, plain) => openShareObject(id, plain, repo.identity));
  return all.filter((s) => keyHex(s.owner) === me);
}

/** The share objects that give the acting member snapshots of others. */
export async function sharesWithMe(repo: Repository): Promise<OpenedShare[]> {
  const me = keyHex(repo.identity.public);
  const all = await openRecords(repo, 'share', (id, plain) => openShareObject(id, plain, repo.identity));
  return all.filter((s) => keyHex(s.grantee) === me);
}

/**
 * Makes the snapshots that shares give the acting member readable
 * (format-spec/sharing.md 9.1, 8.3): a snapshot key from a share is taken
 * only if the share's owner (authenticated by its x25519-auth stanza) is the
 * snapshot's owner, so that no member can pass a snapshot of their own making
 * off as another's.
 */
export async function acceptShares(repo: Repository): Promise<void> {
  const keys: [string, Uint8Array, Uint8Array][] = [];
  for (const share of await sharesWithMe(repo)) {
    for (const s of share.snapshots) keys.push([s.id, s.key, share.owner]);
  }
  // The repository uses each key only for a snapshot whose header names the share's owner.
  if (keys.length) repo.acceptSnapshotKeys(keys);
}

/** The grant objects of the acting member (only the owner opens them). */
export async function ownGrants(repo: Repository): Promise<Grant[]> {
  return openRecords(repo, 'grant', (id, plain) => openGrantObject(id, plain, repo.identity));
}

/**
 * The members a new snapshot of `host` is wrapped for besides its owner
 * (9.3): grantees whose latest grant for the host is `granted` and who are
 * still members, under their current names.
 */
export function grantRecipients(grants: readonly Grant[], host: string, members: MemberDirectory, self: MemberInfo): Grantee[] {
  const out: Grantee[] = [];
  for (const g of currentGrantees(grants, host)) {
    const m = members.ofKey(g.publicKey);
    if (m && keyHex(m.publicKey) !== keyHex(self.publicKey)) out.push({ publicKey: m.publicKey, name: m.name });
  }
  return out;
}
