/**
 * obnam share / unshare (format-spec/sharing.md 9): letting another member
 * read snapshots of one's own.
 *
 * - `share SNAPSHOT... --with NAME`: one share object giving NAME the
 *   snapshots' keys;
 * - `share --host HOST --with NAME`: a standing grant, applied to every
 *   later backup of HOST (9.3);
 * - `unshare --host HOST --with NAME`: withdraws it (a grant object with
 *   state "withdrawn");
 * - `unshare SNAPSHOT... --with NAME`: deletes the shares that give NAME
 *   those snapshots (a share naming others too is written again without them).
 *
 * What the member could already read stays readable to them (13.4).
 */
import { ObnamError } from '../../lib/errors.js';
import { currentGrantees, makeGrantObject, makeShareObject, newShareId } from '../../lib/format/share.js';
import type { Repository } from '../../lib/repo/repository.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { MemberDirectory, memberDirectory, ownGrants, ownShares, requireShared } from '../sharing.js';

export interface ShareArgs extends GlobalArgs {
  snapshots?: string[];
  with?: string | string[];
  host?: string | string[];
}

const keyHex = (k: Uint8Array) => Buffer.from(k).toString('hex');

function single(option: string, v: string | string[] | undefined): string | undefined {
  if (Array.isArray(v)) throw new ObnamError('USAGE', `--${option} given more than once`);
  if (v !== undefined && String(v).trim() === '') throw new ObnamError('USAGE', `--${option} needs a value`);
  return v === undefined ? undefined : String(v);
}

/** The request: snapshots or a host, never both, never neither. */
function request(args: ShareArgs, verb: string): { withName: string; host?: string; snapshots: string[] } {
  const withName = single('with', args.with)!;
  const host = single('host', args.host);
  const snapshots = args.snapshots ?? [];
  if (host !== undefined && snapshots.length) throw new ObnamError('USAGE', `obnam ${verb}: give snapshots or --host, not both`);
  if (host === undefined && !snapshots.length) throw new ObnamError('USAGE', `obnam ${verb}: name the snapshots, or a host with --host`);
  return { withName, host, snapshots };
}

/** The grantee: a member other than oneself. */
function granteeOf(repo: Repository, dir: MemberDirectory, name: string) {
  const m = dir.named(name);
  if (keyHex(m.publicKey) === keyHex(repo.self.publicKey)) throw new ObnamError('USAGE', `${name} is you: your own snapshots are always yours`);
  return m;
}

/** The ids of the named snapshots, each one the acting member owns (PERMISSION otherwise). */
async function ownSnapshotIds(repo: Repository, dir: MemberDirectory, refs: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const ref of refs) {
    const s = await repo.resolveSnapshot(ref);
    if (!s.owner || keyHex(s.owner) !== keyHex(repo.self.publicKey)) {
      throw new ObnamError('PERMISSION', `snapshot ${s.id.slice(0, 8)} is ${s.owner ? dir.nameOf(s.owner) : 'not yours'}'s: only its owner can share it`);
    }
    if (!ids.includes(s.id)) ids.push(s.id);
  }
  return ids;
}

function say(json: boolean, doc: Record<string, unknown>, line: string): void {
  process.stdout.write(json ? JSON.stringify(doc) + '\n' : `${line}\n`);
}

export async function shareCommand(args: ShareArgs): Promise<number> {
  const req = request(args, 'share');
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    requireShared(repo, 'obnam share');
    const dir = await memberDirectory(repo);
    const grantee = granteeOf(repo, dir, req.withName);
    const to = { publicKey: grantee.publicKey, name: grantee.name };
    if (req.host !== undefined) {
      const granted = currentGrantees(await ownGrants(repo), req.host).some((g) => keyHex(g.publicKey) === keyHex(grantee.publicKey));
      if (!granted) {
        const id = newShareId();
        await repo.putRecord('grant', id, makeGrantObject(id, repo.identity, { host: req.host, grantee: to, state: 'granted' }));
      }
      say(
        ctx.json,
        { host: req.host, with: grantee.name, state: 'granted', changed: !granted },
        granted
          ? `${grantee.name} already has a standing grant for host ${req.host}`
          : `granted ${grantee.name} every snapshot of host ${req.host} made from now on (earlier ones: obnam share SNAPSHOT... --with ${grantee.name})`,
      );
      return EXIT_OK;
    }
    const ids = await ownSnapshotIds(repo, dir, req.snapshots);
    const snapshots = [];
    for (const id of ids) snapshots.push({ id, key: await repo.snapshotKey(id) });
    const shareId = newShareId();
    await repo.putRecord('share', shareId, makeShareObject(shareId, repo.identity, to, snapshots));
    say(
      ctx.json,
      { share: shareId, with: grantee.name, snapshots: ids },
      `shared ${ids.length} snapshot${ids.length === 1 ? '' : 's'} (${ids.map((i) => i.slice(0, 8)).join(' ')}) with ${grantee.name}`,
    );
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}

export async function unshareCommand(args: ShareArgs): Promise<number> {
  const req = request(args, 'unshare');
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    requireShared(repo, 'obnam unshare');
    const dir = await memberDirectory(repo);
    if (req.host !== undefined) {
      // A former member can still be withdrawn: look the name up in the grants too.
      const grants = await ownGrants(repo);
      const member = dir.byName.get(req.withName);
      const current = currentGrantees(grants, req.host).find((g) =>
        member ? keyHex(g.publicKey) === keyHex(member.publicKey) : g.name === req.withName,
      );
      if (!current) throw new ObnamError('NOT_FOUND', `${req.withName} has no standing grant for host ${req.host}`);
      const id = newShareId();
      await repo.putRecord('grant', id, makeGrantObject(id, repo.identity, { host: req.host, grantee: current, state: 'withdrawn' }));
      say(
        ctx.json,
        { host: req.host, with: current.name, state: 'withdrawn' },
        `withdrew ${current.name}'s standing grant for host ${req.host}: later snapshots are not shared with them (those already shared stay readable to them)`,
      );
      return EXIT_OK;
    }
    const ids = await ownSnapshotIds(repo, dir, req.snapshots);
    const wanted = new Set(ids);
    let deleted = 0;
    for (const s of await ownShares(repo)) {
      if (s.granteeName !== req.withName || !s.snapshots.some((x) => wanted.has(x.id))) continue;
      const rest = s.snapshots.filter((x) => !wanted.has(x.id));
      if (rest.length) {
        const id = newShareId();
        const grantee = { publicKey: s.grantee, name: s.granteeName };
        await repo.putRecord('share', id, makeShareObject(id, repo.identity, grantee, rest, s.created));
      }
      await repo.deleteRecord('share', s.id);
      deleted++;
    }
    if (!deleted) {
      const wrapped = [];
      for (const id of ids) if ((await repo.getSnapshot(id)).sharedWith?.includes(req.withName)) wrapped.push(id.slice(0, 8));
      const why = wrapped.length
        ? `; ${wrapped.join(' ')} ${wrapped.length === 1 ? 'was' : 'were'} made readable to ${req.withName} when made (a standing grant), which cannot be undone but by forgetting the snapshot`
        : '';
      throw new ObnamError('NOT_FOUND', `none of these snapshots is shared with ${req.withName} by a share object${why}`);
    }
    say(
      ctx.json,
      { with: req.withName, snapshots: ids, deleted_shares: deleted },
      `${req.withName} is no longer given ${ids.length === 1 ? 'this snapshot' : 'these snapshots'} by a share (what they already read stays theirs)`,
    );
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}
