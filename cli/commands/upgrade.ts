/**
 * obnam upgrade: converts a format version 1 or 2 repository to version 4
 * in place (lib/repo/upgrade.ts); with --shared, a version 4, 2 or 1 repository
 * into a shared repository of format version 3 owned by the local identity
 * (lib/repo/upgrade-v3.ts, format-spec/sharing.md 12). Both are idempotent
 * and safe to interrupt: run again.
 *
 * --shared needs the repository's passphrase (the usual sources) and the
 * identity's: --identity-passphrase-file, or else the same passphrase.
 */
import * as os from 'node:os';
import { loadIdentity } from '../../lib/crypto/identity.js';
import { ObnamError } from '../../lib/errors.js';
import { isMemberName } from '../../lib/format/member.js';
import { prune } from '../../lib/gc/prune.js';
import { upgradeRepository } from '../../lib/repo/upgrade.js';
import { openSharedSession, SharedCollector, upgradeToShared, UpgradeV3Result } from '../../lib/repo/upgrade-v3.js';
import { openStore } from '../../lib/store/open.js';
import { Context, describeLocation, GlobalArgs, makeContext, readPassphrase } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { identityFilePath } from '../member-identity.js';
import { getPassphrase } from '../passphrase.js';

export interface UpgradeArgs extends GlobalArgs {
  shared?: boolean;
  name?: string;
  'dry-run'?: boolean;
  'identity-passphrase-file'?: string;
}

export async function upgradeCommand(args: UpgradeArgs): Promise<number> {
  const ctx = await makeContext(args);
  if (args.shared) return upgradeShared(ctx, args);
  if (args['dry-run'] || args.name !== undefined) throw new ObnamError('USAGE', '--dry-run and --name go with --shared (the upgrade to a shared repository)');
  const pass = await readPassphrase(ctx);
  const store = await openStore(ctx.spec);
  try {
    const r = await upgradeRepository(store, pass);
    if (ctx.json) {
      process.stdout.write(JSON.stringify(r) + '\n');
    } else if (r.already) {
      process.stdout.write(
        `${describeLocation(ctx.spec)} already has format version ${r.to}: nothing to do ` +
          '(obnam upgrade --shared makes it a shared repository, format version 3)\n',
      );
    } else {
      process.stdout.write(
        `upgraded ${describeLocation(ctx.spec)} from format version ${r.from} to ${r.to} (gc grace period ${r.gcGrace} s; small files go into bundles from the next backup)\n` +
          `obnam clients that read only format version ${r.from === 1 ? '1' : '1 and 2'} now refuse it; no such client may have been writing to it meanwhile.\n` +
          (r.from === 1 ? 'obnam prune can now collect what forgotten snapshots left.\n' : ''),
      );
    }
    return EXIT_OK;
  } finally {
    await store.close();
  }
}

function defaultMemberName(): string | undefined {
  try {
    const n = os.userInfo().username.toLowerCase();
    return isMemberName(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Step 4 of the upgrade: every old object goes, so whatever pack holds any of them is repacked (a server repacks on request, or later by itself). */
const collectAll: SharedCollector = async (repo, opts) =>
  (await prune(repo, { exclusive: true, signal: opts?.signal, repack: repo.repacker(), maxUnusedPercent: 0 })).deleted;

async function upgradeShared(ctx: Context, args: UpgradeArgs): Promise<number> {
  const name = args.name ?? defaultMemberName();
  if (!name) throw new ObnamError('USAGE', 'your user name is not a valid member name: give one with --name NAME');
  const pass = await readPassphrase(ctx);
  const identityFile = identityFilePath(args);
  const identityPass = args['identity-passphrase-file'] ? await getPassphrase({ passphraseFile: args['identity-passphrase-file'] }) : pass;
  let identity;
  try {
    identity = await loadIdentity(identityFile, identityPass);
  } catch (e) {
    if (e instanceof ObnamError && e.code === 'BAD_PASSPHRASE' && !args['identity-passphrase-file']) {
      throw new ObnamError('BAD_PASSPHRASE', `the identity ${identityFile} does not open with the repository's passphrase: give its own with --identity-passphrase-file`);
    }
    throw e;
  }
  const store = await openStore(ctx.spec);
  let r: UpgradeV3Result;
  try {
    r = await upgradeToShared(store, {
      passphrase: Buffer.from(pass, 'utf8'),
      identity,
      name,
      dryRun: args['dry-run'],
      openShared: (store, id) => openSharedSession(store, id, collectAll),
      onPhase: (m) => process.stderr.write(`obnam: ${m}\n`),
    });
  } finally {
    await store.close();
  }
  const where = describeLocation(ctx.spec);
  if (ctx.json) {
    process.stdout.write(JSON.stringify({ ...r, member: name }) + '\n');
  } else if (r.dryRun) {
    process.stdout.write(
      r.already
        ? `${where} is a shared repository (format version 3): nothing to do\n`
        : `obnam upgrade --shared would rewrite ${r.snapshots} snapshots of ${r.bytes} bytes of files ` +
            `(${r.storedBytes ?? 0} bytes stored now) as snapshots of member ${name}, reading and writing every stored byte once\n`,
    );
  } else if (r.already) {
    process.stdout.write(`${where} already is a shared repository (format version 3): nothing to do\n`);
  } else {
    process.stdout.write(
      `upgraded ${where} to a shared repository, format version 3: ${r.rewritten.length} snapshots rewritten` +
        (r.skipped.length ? ` (${r.skipped.length} by an earlier run)` : '') +
        ` as member ${name} (can delete); ${r.keySlotsRemoved} key slots removed; collected ${r.collected.trees} trees and ${r.collected.chunks} chunks (${r.collected.bytes} bytes)\n` +
        'The passphrase no longer opens it: members open it with their identity (obnam member add PUBKEY --name NAME adds one).\n',
    );
  }
  return EXIT_OK;
}
