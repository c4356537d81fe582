/**
 * obnam member add|list|remove: the members of a shared repository
 * (format-spec/sharing.md 5.2). Adding writes a member object giving the
 * member key set to PUBKEY; removing deletes it (keys are not rotated: the
 * removed member's server grant should be revoked too). Only members with
 * --can-delete add and remove; the last such member is never removed; names
 * and public keys are unique.
 *
 * `member list --json`: [{"id", "name", "public_key", "can_delete",
 * "created" (ISO), "added_by", "authentic": true, "you"}], then each member
 * object that is damaged or whose mac fails as {"id", "authentic": false,
 * "you": false, "error"} (it is not a member; `member remove ID` deletes it).
 */
import { decodePublicKey, encodePublicKey } from '../../lib/crypto/pubkey.js';
import { ObnamError } from '../../lib/errors.js';
import { checkMemberName, encodeMemberObject, MemberInfo, newMemberId } from '../../lib/format/member.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { isoSeconds } from '../format.js';
import { memberDirectory, requireCanDelete, requireShared } from '../sharing.js';

export interface MemberArgs extends GlobalArgs {
  pubkey?: string;
  name?: string;
  'can-delete'?: boolean;
}

export async function memberAddCommand(args: MemberArgs): Promise<number> {
  const publicKey = decodePublicKey(String(args.pubkey ?? ''));
  const name = checkMemberName(String(args.name ?? ''));
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    requireShared(repo, 'obnam member add');
    requireCanDelete(repo, 'adding a member');
    const dir = await memberDirectory(repo);
    if (dir.byName.has(name)) throw new ObnamError('USAGE', `there is already a member named ${name}`);
    const holder = dir.ofKey(publicKey);
    if (holder) throw new ObnamError('USAGE', `that public key is already the member ${holder.name}'s`);
    const info: MemberInfo = {
      id: newMemberId(),
      name,
      publicKey,
      canDelete: !!args['can-delete'],
      created: Math.floor(Date.now() / 1000),
      addedBy: repo.self.name,
    };
    await repo.putMemberObject(info.id, encodeMemberObject(repo.memberKeys, info));
    if (ctx.json) process.stdout.write(JSON.stringify(memberJson(info, false, true)) + '\n');
    else process.stdout.write(`added member ${name} (${encodePublicKey(publicKey)})${info.canDelete ? ', can delete' : ''}\n`);
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}

function memberJson(m: MemberInfo, you: boolean, authentic: boolean): Record<string, unknown> {
  return {
    id: m.id,
    name: m.name,
    public_key: encodePublicKey(m.publicKey),
    can_delete: m.canDelete,
    created: isoSeconds(m.created),
    added_by: m.addedBy,
    authentic,
    you,
  };
}

export async function memberListCommand(args: MemberArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    requireShared(repo, 'obnam member list');
    const dir = await memberDirectory(repo);
    const members = [...dir.members].sort((a, b) => a.name.localeCompare(b.name));
    const you = (m: MemberInfo) => m.id === repo.self.id;
    if (ctx.json) {
      const invalid = dir.invalid.map((o) => ({ id: o.id, authentic: false, you: false, error: o.reason }));
      process.stdout.write(JSON.stringify([...members.map((m) => memberJson(m, you(m), true)), ...invalid]) + '\n');
      return EXIT_OK;
    }
    for (const m of members) {
      const when = isoSeconds(m.created).replace('T', ' ').replace(/\.\d+Z$/, 'Z');
      const flags = [m.canDelete ? 'can delete' : '', m.addedBy ? `added by ${m.addedBy}` : 'first member', you(m) ? 'you' : '']
        .filter(Boolean)
        .join(', ');
      process.stdout.write(`${you(m) ? '*' : ' '} ${m.name}  ${encodePublicKey(m.publicKey)}  ${when}  ${flags}\n`);
    }
    for (const o of dir.invalid) {
      process.stdout.write(`! ${o.id.slice(0, 8)}  NOT A MEMBER: ${o.reason} (obnam member remove ${o.id.slice(0, 8)} deletes it)\n`);
    }
    if (dir.invalid.length) process.stderr.write(`obnam: warning: ${dir.invalid.length} member object(s) are damaged or do not verify, and are ignored\n`);
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}

/** The invalid member objects a reference names: a full id or a prefix of at least 8 hex digits. */
function invalidNamed(invalid: readonly { id: string }[], ref: string): string[] {
  if (!/^[0-9a-f]{8,64}$/.test(ref)) return [];
  return invalid.filter((o) => o.id.startsWith(ref)).map((o) => o.id);
}

export async function memberRemoveCommand(args: MemberArgs): Promise<number> {
  const name = String(args.name ?? '');
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    requireShared(repo, 'obnam member remove');
    requireCanDelete(repo, 'removing a member');
    const dir = await memberDirectory(repo);
    const member = dir.byName.get(name);
    if (!member) {
      // A member object that is not a member (damaged, or its mac fails) is removed by its id.
      const ids = invalidNamed(dir.invalid, name);
      if (ids.length > 1) throw new ObnamError('AMBIGUOUS', `${name} matches ${ids.length} member objects; give more digits`);
      if (!ids.length) dir.named(name); // NOT_FOUND with the names
      await repo.deleteMemberObject(ids[0]!);
      if (ctx.json) process.stdout.write(JSON.stringify({ removed: ids }) + '\n');
      else process.stdout.write(`removed member object ${ids[0]!.slice(0, 8)}, which was not a member\n`);
      return EXIT_OK;
    }
    if (member.canDelete && dir.members.filter((m) => m.canDelete).length === 1) {
      throw new ObnamError('REFUSED', `${name} is the last member with --can-delete and is not removed (add another such member first)`);
    }
    await repo.deleteMemberObject(member.id);
    if (ctx.json) process.stdout.write(JSON.stringify({ removed: [member.id], name }) + '\n');
    else {
      process.stdout.write(`removed member ${name}\n`);
      process.stderr.write(
        `obnam: ${name} can still read what was shared with them and keeps what members know (format-spec/sharing.md 13.4): revoke their server grant too\n`,
      );
    }
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}
