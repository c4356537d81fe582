/**
 * obnam identity new|show: the member's X25519 identity, kept in
 * $XDG_CONFIG_HOME/obnam/identity (or --identity-file) under a passphrase
 * (format-spec/sharing.md section 2).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { generateIdentity, IdentityKdfCost, publicKeyText, readIdentityFile, saveIdentity } from '../../lib/crypto/identity.js';
import { errnoCode, ObnamError } from '../../lib/errors.js';
import { defaultIdentityPath, loadConfig } from '../config.js';
import type { GlobalArgs } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { getPassphrase } from '../passphrase.js';

export interface IdentityArgs extends GlobalArgs {
  'identity-file'?: string;
  force?: boolean;
}

/** What a program embedding the CLI may inject: the scrypt cost of a new identity file (tests make it cheap). */
export interface IdentityHooks {
  newKeyKdf?: IdentityKdfCost;
}

function identityFile(args: IdentityArgs): string {
  return path.resolve(args['identity-file'] ?? defaultIdentityPath());
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw new ObnamError('IO', `cannot look at ${file}: ${(e as Error).message}`);
  }
}

function printKey(args: IdentityArgs, text: string, file: string): void {
  if (args.json) process.stdout.write(JSON.stringify({ public_key: text, file }) + '\n');
  else process.stdout.write(`${text}\n`);
}

export async function identityNewCommand(args: IdentityArgs, hooks: IdentityHooks = {}): Promise<number> {
  const file = identityFile(args);
  // Refused before asking for a passphrase; saveIdentity refuses again atomically.
  if (!args.force && (await exists(file))) {
    throw new ObnamError('IDENTITY_EXISTS', `an identity already exists at ${file} and is never replaced silently (see obnam identity show; --force replaces it and keeps the old one beside it)`);
  }
  const config = await loadConfig(args.config);
  const passphrase = await getPassphrase({ passphraseFile: args['passphrase-file'], configPassphraseFile: config.passphrase_file }, { confirm: true });
  const id = generateIdentity();
  const { replaced } = await saveIdentity(file, id, passphrase, { force: args.force, cost: hooks.newKeyKdf });
  if (replaced) process.stderr.write(`obnam: the previous identity is kept as ${replaced}\n`);
  process.stderr.write(`obnam: created identity ${file}\n`);
  printKey(args, publicKeyText(id), file);
  return EXIT_OK;
}

export async function identityShowCommand(args: IdentityArgs): Promise<number> {
  const file = identityFile(args);
  const parsed = await readIdentityFile(file);
  printKey(args, publicKeyText(parsed), file);
  return EXIT_OK;
}
