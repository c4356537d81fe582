/**
 * Global options resolved once per command: which repository (flag, then
 * OBNAM_REPO, then the config file, then the default local repository), how
 * to reach it (token, trust, request timeout: flag, then environment, then
 * config file), and where the passphrase comes from. A plain http:// server
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
import { getToken } from './token.js';

export interface GlobalArgs {
  repo?: string;
  config?: string;
  'passphrase-file'?: string;
  token?: string;
  'token-file'?: string;
  'request-timeout'?: number;
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
  return { args, config, spec: await storeSpecFor(location, args, config), json: !!args.json };
}

async function storeSpecFor(location: string, args: GlobalArgs, config: FileConfig): Promise<StoreSpec> {
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
    const fingerprint = args['server-fingerprint'] ?? process.env.OBNAM_SERVER_FINGERPRINT ?? config.server_fingerprint;
    const caFile = args['ca-file'] ?? process.env.OBNAM_CA_FILE ?? config.ca_file;
    const spec: StoreSpec = { type: 'http', url: location.replace(/\/+$/, ''), token };
    if (fingerprint) spec.fingerprint = fingerprint;
    if (caFile) spec.caFile = path.resolve(caFile);
    const timeout = requestTimeout(args, config);
    if (timeout !== undefined) spec.requestTimeout = timeout;
    if (plain) {
      spec.insecureHttp = true;
      process.stderr.write(`obnam: warning: ${location} is plain HTTP (--insecure-http): the access token and data travel unencrypted\n`);
    }
    return spec;
  }
  return { type: 'local', dir: path.resolve(location) };
}

/** Seconds one request to the server may take: --request-timeout, OBNAM_REQUEST_TIMEOUT, request_timeout in the config. */
function requestTimeout(args: GlobalArgs, config: FileConfig): number | undefined {
  const env = process.env.OBNAM_REQUEST_TIMEOUT;
  const [value, source] =
    args['request-timeout'] !== undefined
      ? [args['request-timeout'], '--request-timeout']
      : env
        ? [Number(env), 'OBNAM_REQUEST_TIMEOUT']
        : [config.request_timeout, 'request_timeout in the config'];
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) throw new ObnamError('USAGE', `${source} must be a positive number of seconds`);
  return value;
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
