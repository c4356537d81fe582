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
import { defaultRepoPath, FileConfig, loadConfig } from './config.js';
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
  config: FileConfig;
  spec: StoreSpec;
  json: boolean;
}

export async function makeContext(args: GlobalArgs): Promise<Context> {
  const config = await loadConfig(args.config);
  const location = args.repo ?? process.env.OBNAM_REPO ?? config.repo ?? defaultRepoPath();
  return { args, config, spec: storeSpecFor(location, args, config), json: !!args.json };
}

function storeSpecFor(location: string, args: GlobalArgs, config: FileConfig): StoreSpec {
  if (/^https?:\/\//i.test(location)) {
    const token = args.token ?? process.env.OBNAM_TOKEN ?? config.token;
    if (!token) throw new ObnamError('USAGE', `${location} needs an access token: --token, OBNAM_TOKEN or token in the config`);
    const fingerprint = args['server-fingerprint'] ?? process.env.OBNAM_SERVER_FINGERPRINT ?? config.server_fingerprint;
    const caFile = args['ca-file'] ?? process.env.OBNAM_CA_FILE ?? config.ca_file;
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

async function passphrase(ctx: Context, confirm = false): Promise<string> {
  return getPassphrase(
    { passphraseFile: ctx.args['passphrase-file'], configPassphraseFile: ctx.config.passphrase_file },
    { confirm },
  );
}

export async function openRepository(ctx: Context): Promise<Repository> {
  const store = await openStore(ctx.spec);
  try {
    const repo = await Repository.open(store, ctx.spec, await passphrase(ctx));
    repo.onDamagedSnapshot = ({ id, error }) => {
      const reason = error.message.startsWith(`snapshot ${id}: `) ? error.message.slice(`snapshot ${id}: `.length) : error.message;
      process.stderr.write(`obnam: warning: passing over damaged snapshot ${id} (obnam fsck checks it; obnam forget removes it): ${reason}\n`);
    };
    return repo;
  } catch (e) {
    await store.close();
    throw e;
  }
}

export async function initRepository(ctx: Context, compressionLevel?: number): Promise<Repository> {
  const pass = await passphrase(ctx, true);
  const store = await createStore(ctx.spec);
  return Repository.init(store, ctx.spec, pass, newConfig(undefined, compressionLevel));
}
