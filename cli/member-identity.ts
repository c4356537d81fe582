/**
 * The identity a member opens a shared (version 3) repository with: the
 * identity file of --identity-file or the default path
 * ($XDG_CONFIG_HOME/obnam/identity), unlocked with its passphrase from the
 * same sources as a repository passphrase (--passphrase-file,
 * OBNAM_PASSPHRASE, OBNAM_PASSPHRASE_FILE, the config's passphrase_file, a
 * prompt).
 */
import * as path from 'node:path';
import { Identity, loadIdentity, readIdentityFile } from '../lib/crypto/identity.js';
import { defaultIdentityPath } from './config.js';
import { getPassphrase } from './passphrase.js';

/** The path of the identity file these arguments name. */
export function identityFilePath(args: { 'identity-file'?: string }): string {
  return path.resolve(args['identity-file'] ?? defaultIdentityPath());
}

/**
 * The unlocked identity (NO_IDENTITY if there is none, BAD_PASSPHRASE if
 * the passphrase does not open it). `pass` is a passphrase already read
 * (mount's daemon gets it from its parent).
 */
export async function unlockMemberIdentity(
  ctx: { args: { 'identity-file'?: string; 'passphrase-file'?: string }; config: { passphrase_file?: string } },
  pass?: string,
): Promise<Identity> {
  const file = identityFilePath(ctx.args);
  await readIdentityFile(file); // NO_IDENTITY before asking for a passphrase
  const passphrase =
    pass ?? (await getPassphrase({ passphraseFile: ctx.args['passphrase-file'], configPassphraseFile: ctx.config.passphrase_file }));
  return loadIdentity(file, passphrase);
}
