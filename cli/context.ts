/**
 * Global options resolved once per command: which repository (flag, then
 * OBNAM_REPO, then the config file, then the default local repository), how
 * to reach it, and where the passphrase comes from. A plain http:// server
 * URL is refused unless --insecure-http is given: the token would cross the
 * network in clear.
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
  'insecure-http'?: boolean;
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
    const plain = /^http:/i.test(location);
    if (plain && !args['insecure-http']) {
      throw new ObnamError(
        'USAGE',
        `${location} is plain HTTP: the access token and all traffic would cross the network unencrypted; ` +
          'use https://, or --insecure-http if a TLS tunnel or proxy protects the connection',
      );
    }
    const token = args.token ?? process.env.OBNAM_TOKEN ?? config.token;
    if (!token) throw new ObnamError('USAGE', `${location} needs an access token: --token, OBNAM_TOKEN or token in the config`);
    const fingerprint = args['server-fingerprint'] ?? process.env.OBNAM_SERVER_FINGERPRINT ?? config.server_fingerprint;
    const caFile = args['ca-file'] ?? process.env.OBNAM_CA_FILE ?? config.ca_file;
    const spec: StoreSpec = { type: 'http', url: location.replace(/\/+$/, ''), token };
    if (fingerprint) spec.fingerprint = fingerprint;
    if (caFile) spec.caFile = path.resolve(caFile);
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

async function passphrase(ctx: Context, confirm = false): Promise<string> {
  return getPassphrase(
    { passphraseFile: ctx.args['passphrase-file'], configPassphraseFile: ctx.config.passphrase_file },
    { confirm },
  );
}

export async function openRepository(ctx: Context): Promise<Repository> {
  try {
    const store = await openStore(ctx.spec);
    try {
      return await Repository.open(store, ctx.spec, await passphrase(ctx));
    } catch (e) {
      await store.close();
      throw e;
    }
  } catch (e) {
    throw withInitHint(e, ctx.spec);
  }
}

/** NO_REPOSITORY, completed with the command that creates one there. */
function withInitHint(e: unknown, spec: StoreSpec): unknown {
  if (!(e instanceof ObnamError) || e.code !== 'NO_REPOSITORY') return e;
  const location = describeLocation(spec);
  const quoted = /^[\w@%+=:,./-]+$/.test(location) ? location : `'${location.replaceAll("'", "'\\''")}'`;
  return new ObnamError('NO_REPOSITORY', `${e.message}; create one with: obnam --repo ${quoted} init`, { cause: e });
}

export async function initRepository(ctx: Context, compressionLevel?: number): Promise<Repository> {
  const pass = await passphrase(ctx, true);
  const store = await createStore(ctx.spec);
  return Repository.init(store, ctx.spec, pass, newConfig(undefined, compressionLevel));
}
