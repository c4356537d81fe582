/**
 * obnam init: creates a repository (the default local one unless told
 * otherwise). With --shared, a shared repository (format version 3) whose
 * first member, allowed to delete, is the identity (--identity-file or the
 * default one), named --name or the user name.
 */
import { encodePublicKey } from '../../lib/crypto/pubkey.js';
import { DEFAULT_CHUNKER } from '../../lib/chunking/fastcdc.js';
import { ObnamError } from '../../lib/errors.js';
import { DEFAULT_INLINE_MAX, inlineMaxAllowed, largestInlineMax } from '../../lib/format/config.js';
import { checkMemberName, isMemberName } from '../../lib/format/member.js';
import { hostInfo } from '../../lib/repo/repository.js';
import { CliHooks, Context, describeLocation, initRepository, initSharedRepository, InitChoices, makeContext, GlobalArgs } from '../context.js';
import { EXIT_OK } from '../exit.js';

export interface InitArgs extends GlobalArgs {
  'compression-level'?: number;
  'inline-max'?: number;
  shared?: boolean;
  name?: string;
}

/** The first member's name: --name, else the user name if it is a valid member name. */
function firstMemberName(args: InitArgs): string {
  if (args.name !== undefined) return checkMemberName(String(args.name));
  const user = hostInfo().username.toLowerCase();
  if (!isMemberName(user)) {
    throw new ObnamError('USAGE', `your user name ${JSON.stringify(user)} is not a valid member name: give one with --name (a-z, 0-9, '.', '_', '-')`);
  }
  return user;
}

async function initShared(ctx: Context, name: string, choices: InitChoices): Promise<number> {
  const repo = await initSharedRepository(ctx, name, choices);
  await repo.close();
  const where = describeLocation(ctx.spec);
  const key = encodePublicKey(repo.self.publicKey);
  if (ctx.json) process.stdout.write(JSON.stringify({ repository: repo.config.repositoryId, location: where, member: name, public_key: key }) + '\n');
  else process.stdout.write(`created shared repository ${repo.config.repositoryId.slice(0, 8)} at ${where}; you are its member ${name} (can delete)\n`);
  return EXIT_OK;
}

export async function initCommand(args: InitArgs, hooks: CliHooks = {}): Promise<number> {
  const level = args['compression-level'];
  if (level !== undefined && (!Number.isInteger(level) || level < 0 || level > 19)) {
    throw new ObnamError('USAGE', '--compression-level must be a whole number from 0 (off) to 19');
  }
  const inlineMax = args['inline-max'];
  if (inlineMax !== undefined && !inlineMaxAllowed(inlineMax, DEFAULT_CHUNKER)) {
    throw new ObnamError('USAGE', `--inline-max must be a whole number of bytes from 0 to ${largestInlineMax(DEFAULT_CHUNKER)} (default ${DEFAULT_INLINE_MAX})`);
  }
  const choices: InitChoices = { compressionLevel: level, inlineMax };
  if (args.name !== undefined && !args.shared) throw new ObnamError('USAGE', '--name is for a shared repository: obnam init --shared --name NAME');
  const name = args.shared ? firstMemberName(args) : undefined;
  const ctx = await makeContext(args);
  if (name !== undefined) return initShared(ctx, name, choices);
  const repo = await initRepository(ctx, choices, hooks);
  await repo.close();
  const where = describeLocation(ctx.spec);
  if (ctx.json) process.stdout.write(JSON.stringify({ repository: repo.config.repositoryId, location: where, key: repo.keyId }) + '\n');
  else process.stdout.write(`created repository ${repo.config.repositoryId.slice(0, 8)} at ${where}\n`);
  return EXIT_OK;
}
