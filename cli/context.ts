/**
 * Global options resolved once per command: which repository (flag, then
 * OBNAM_REPO, then the config file, then the default local repository), how
 * to reach it, and where the passphrase comes from.
 */
import * as path from 'node:path';
import { ObnamError } from '../lib/errors.js';
import { newConfig } from '../lib/format/config.js';
import { Repository } from '../lib/repo/repository.js';
import { createStore, openStore } from '../lib/store/open.js';
import type { StoreSpec } from '../lib/store/store.js';
import { Effective, effectiveSettings, FileConfig, loadConfig } from './config.js';
import { getPassphrase } from './passphrase.js';

export interface GlobalArgs {
  repo?: string;
  config?: string;
  'passphrase-file'?: string;
  token?: string;
  'server-fingerprint'?: string;
  'ca-file'?: string;
  json?: boolean;
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
  return { args, config, settings, spec: storeSpecFor(settings), json: !!args.json };
}

function storeSpecFor({ values }: Effective): StoreSpec {
  const location = values.repo!;
  if (/^https?:\/\//i.test(location)) {
    const token = values.token;
    if (!token) throw new ObnamError('USAGE', `${location} needs an access token: --token, OBNAM_TOKEN or token in the config`);
    const fingerprint = values.server_fingerprint;
    const caFile = values.ca_file;
    const spec: StoreSpec = { type: 'http', url: location.replace(/\/+$/, ''), token };
    if (fingerprint) spec.fingerprint = fingerprint;
    if (caFile) spec.caFile = path.resolve(caFile);
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

/** Opens the repository with `pass`, or with the passphrase from readPassphrase(). */
export async function openRepository(ctx: Context, pass?: string): Promise<Repository> {
  const store = await openStore(ctx.spec);
  try {
    return await Repository.open(store, ctx.spec, pass ?? (await readPassphrase(ctx)));
  } catch (e) {
    await store.close();
    throw e;
  }
}

export async function initRepository(ctx: Context, compressionLevel?: number): Promise<Repository> {
  const pass = await readPassphrase(ctx, true);
  const store = await createStore(ctx.spec);
  return Repository.init(store, ctx.spec, pass, newConfig(undefined, compressionLevel));
}
