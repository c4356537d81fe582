/**
 * Global options resolved once per command: which repository (flag, then
 * OBNAM_REPO, then the config file, then the default local repository), how
 * to reach it (token, trust, request timeout: flag, then environment, then
 * config file), and where the passphrase comes from. A plain http:// server
 * URL is refused unless --insecure-http is given: the token would cross the
 * network in clear.
 */
import * as path from 'node:path';
import type { KdfCost } from '../lib/crypto/kdf.js';
import { ObnamError } from '../lib/errors.js';
import { newConfig, RepoConfig } from '../lib/format/config.js';
import { SHARED_VERSION } from '../lib/format/version.js';
import { DamagedSnapshot, Repository } from '../lib/repo/repository.js';
import { createStore, openStore } from '../lib/store/open.js';
import type { StoreSpec } from '../lib/store/store.js';
import { Effective, effectiveSettings, FileConfig, loadConfig } from './config.js';
import { unlockMemberIdentity } from './member-identity.js';
import { acceptShares } from './sharing.js';
import { getPassphrase } from './passphrase.js';
import { getToken } from './token.js';
import { checkSeenSnapshots } from './seen-snapshots.js';

export interface GlobalArgs {
  repo?: string;
  config?: string;
  'passphrase-file'?: string;
  /** The identity file a member opens a shared repository with (default ~/.config/obnam/identity). */
  'identity-file'?: string;
  token?: string;
  'token-file'?: string;
  'request-timeout'?: number;
  'server-fingerprint'?: string;
  'ca-file'?: string;
  'insecure-http'?: boolean;
  json?: boolean;
}

/**
 * What a program embedding the CLI may change about how commands run,
 * passed to main() (never read from the environment): the test suite makes
 * new key slots cheap with it. bin/obnam passes none.
 */
export interface CliHooks {
  /** The scrypt cost of new key slots (default DEFAULT_KDF_COST). */
  newKeyKdf?: KdfCost;
}

export interface Context {
  args: GlobalArgs;
  /** The config file's settings. */
  config: FileConfig;
  /** Every setting after precedence (option, environment, file, default). */
  settings: Effective;
  spec: StoreSpec;
  json: boolean;
}

/** The settings alone, without resolving a repository (obnam config). */
export async function loadSettings(args: GlobalArgs): Promise<{ config: FileConfig; settings: Effective }> {
  const config = await loadConfig(args.config);
  return { config, settings: effectiveSettings(args as Record<string, unknown>, config) };
}

export async function makeContext(args: GlobalArgs): Promise<Context> {
  const { config, settings } = await loadSettings(args);
  return { args, config, settings, spec: await storeSpecFor(settings, args, config), json: !!args.json };
}

async function storeSpecFor({ values }: Effective, args: GlobalArgs, config: FileConfig): Promise<StoreSpec> {
  const location = values.repo!;
  if (/^https?:\/\//i.test(location)) {
    const plain = /^http:/i.test(location);
    if (plain && !args['insecure-http']) {
      throw new ObnamError(
        'USAGE',
        `${location} is plain HTTP: the access token and all traffic would cross the network unencrypted; ` +
          'use https://, or --insecure-http if a TLS tunnel or proxy protects the connection',
      );
    }
    const token = await getToken({
      token: args.token,
      tokenFile: args['token-file'],
      configToken: config.token,
      configTokenFile: config.token_file,
    });
    if (!token) {
      throw new ObnamError(
        'USAGE',
        `${location} needs an access token: --token, --token-file, OBNAM_TOKEN, OBNAM_TOKEN_FILE, or token or token_file in the config`,
      );
    }
    const fingerprint = values.server_fingerprint;
    const caFile = values.ca_file;
    const spec: StoreSpec = { type: 'http', url: location.replace(/\/+$/, ''), token };
    if (fingerprint) spec.fingerprint = fingerprint;
    if (caFile) spec.caFile = path.resolve(caFile);
    const timeout = values.request_timeout;
    if (timeout !== undefined) spec.requestTimeout = timeout;
    if (plain) {
      spec.insecureHttp = true;
      process.stderr.write(`obnam: warning: ${location} is plain HTTP (--insecure-http): the access token and data travel unencrypted\n`);
    }
    return spec;
  }
  return { type: 'local', dir: path.resolve(location) };
}

export function describeLocation(spec: StoreSpec): string {
  return spec.type === 'local' ? spec.dir : spec.url;
}

/** The passphrase from its configured source, or a prompt (twice with `confirm`). */
export async function readPassphrase(ctx: Context, confirm = false): Promise<string> {
  return getPassphrase(
    { passphraseFile: ctx.args['passphrase-file'], configPassphraseFile: ctx.config.passphrase_file },
    { confirm },
  );
}

/**
 * Opens the repository with `pass`, or with the passphrase from
 * readPassphrase(), and warns on stderr about any snapshot this client saw
 * before that has vanished (seen-snapshots.ts).
 */
export async function openRepository(ctx: Context, pass?: string): Promise<Repository> {
  let repo: Repository;
  try {
    const store = await openStore(ctx.spec);
    try {
      // A shared repository (version 3) opens with the member's identity, any other with the repository passphrase.
      if ((await Repository.formatVersionOf(store)) === SHARED_VERSION) {
        repo = await Repository.openShared(store, await unlockMemberIdentity(ctx, pass));
        await acceptShares(repo);
      } else {
        repo = await Repository.open(store, pass ?? (await readPassphrase(ctx)));
      }
      repo.onDamagedSnapshot = warnDamagedSnapshot;
    } catch (e) {
      await store.close();
      throw e;
    }
  } catch (e) {
    throw withInitHint(e, ctx.spec);
  }
  try {
    const ids: string[] = [];
    for await (const id of repo.listSnapshotIds()) ids.push(id);
    await checkSeenSnapshots(repo.config.repositoryId, ids);
  } catch (e) {
    await repo.close();
    throw e;
  }
  return repo;
}

/** Names a snapshot that listing passed over, in one line on stderr. */
function warnDamagedSnapshot({ id, error }: DamagedSnapshot): void {
  const reason = error.message.startsWith(`snapshot ${id}: `) ? error.message.slice(`snapshot ${id}: `.length) : error.message;
  process.stderr.write(`obnam: warning: passing over damaged snapshot ${id} (obnam fsck checks it; obnam forget removes it): ${reason}\n`);
}

/** NO_REPOSITORY, completed with the command that creates one there. */
function withInitHint(e: unknown, spec: StoreSpec): unknown {
  if (!(e instanceof ObnamError) || e.code !== 'NO_REPOSITORY' || e.message.includes('obnam upgrade')) return e;
  const location = describeLocation(spec);
  const quoted = /^[\w@%+=:,./-]+$/.test(location) ? location : `'${location.replaceAll("'", "'\\''")}'`;
  return new ObnamError('NO_REPOSITORY', `${e.message}; create one with: obnam --repo ${quoted} init`, { cause: e });
}

/** What `obnam init` may choose for a new repository's config (undefined: the default). */
export interface InitChoices {
  compressionLevel?: number;
  inlineMax?: number;
}

function configFor(c: InitChoices): RepoConfig {
  return newConfig(undefined, c.compressionLevel, c.inlineMax);
}

/** Creates a shared repository (version 3) whose first member, with --can-delete, is the identity of `ctx` named `name`. */
export async function initSharedRepository(ctx: Context, name: string, choices: InitChoices): Promise<Repository> {
  const identity = await unlockMemberIdentity(ctx);
  const store = await createStore(ctx.spec);
  try {
    return await Repository.initShared(store, identity, { name, config: configFor(choices) });
  } catch (e) {
    await store.close();
    throw e;
  }
}

export async function initRepository(ctx: Context, choices: InitChoices, hooks: CliHooks): Promise<Repository> {
  const pass = await readPassphrase(ctx, true);
  const store = await createStore(ctx.spec);
  try {
    return await Repository.init(store, ctx.spec, pass, configFor(choices), { kdf: hooks.newKeyKdf });
  } catch (e) {
    await store.close();
    throw e;
  }
}
