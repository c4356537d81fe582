/**
 * The server configuration file (YAML; JSON is YAML too), with defaults for
 * everything but the TLS files. Relative file names are relative to the
 * config file's directory. init writes a commented copy of the defaults.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ObnamError } from '../lib/errors.js';
import type { ServerDir } from './layout.js';
import { parseStorageConfig, StorageConfig } from './storage-config.js';

export interface Limits {
  /** Largest single object upload (PUT body). */
  maxObjectBytes: number;
  /** Largest batch upload body. */
  maxBatchBytes: number;
  /** Most objects in one batch upload. */
  maxBatchObjects: number;
  /** Most ids in one "which of these exist" request. */
  maxLookupIds: number;
  /** Requests handled at once, of all clients; more wait in a queue (their bodies unread). */
  maxConcurrentRequests: number;
  /** Requests of one client handled at once; more of its requests wait. */
  maxConcurrentRequestsPerClient: number;
  /** Requests waiting beyond that; more get 503. */
  maxQueuedRequests: number;
  /** Requests of one client waiting; more of its requests get 503. */
  maxQueuedRequestsPerClient: number;
  /** Open connections; more are refused. */
  maxConnections: number;
  /** A request must arrive completely (headers and body) within this time. */
  requestTimeoutSeconds: number;
  /** A request's header block must arrive completely within this time. */
  headersTimeoutSeconds: number;
  /** A body being received must average at least this rate over the last window... */
  minBodyBytesPerSecond: number;
  /** ...of this many seconds (also the grace before the first check). */
  bodyRateWindowSeconds: number;
  /** Failed token attempts one source address may make in a row... */
  failedAuthBurst: number;
  /** ...and how many more it regains per minute; beyond them its requests get 429. */
  failedAuthPerMinute: number;
  /** A connection that sends and receives nothing for this long is closed. */
  idleTimeoutSeconds: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutSeconds: number;
}

export interface ServerConfig {
  /** Default listen address, HOST:PORT. */
  listen: string;
  tls: { cert: string; key: string };
  logLevel: string;
  limits: Limits;
  /** Where namespaces are kept (storage-config.ts). */
  storage: StorageConfig;
  repack: RepackConfig;
}

/** Repacking (format-spec 14.8): `obnam-server repack`, and by `serve` in the background. */
export interface RepackConfig {
  /** serve repacks namespaces that have had no request for idleSeconds. */
  background: boolean;
  idleSeconds: number;
  /** Packs are rewritten when more than this percentage of a namespace's stored bytes is unused. */
  maxUnusedPercent: number;
}

export const DEFAULT_REPACK: RepackConfig = { background: true, idleSeconds: 600, maxUnusedPercent: 10 };

export const DEFAULT_LIMITS: Limits = {
  maxObjectBytes: 32 << 20,
  maxBatchBytes: 16 << 20,
  maxBatchObjects: 4096,
  maxLookupIds: 10_000,
  maxConcurrentRequests: 64,
  maxConcurrentRequestsPerClient: 16,
  maxQueuedRequests: 4096,
  maxQueuedRequestsPerClient: 256,
  maxConnections: 4096,
  requestTimeoutSeconds: 120,
  headersTimeoutSeconds: 20,
  minBodyBytesPerSecond: 512,
  bodyRateWindowSeconds: 20,
  failedAuthBurst: 20,
  failedAuthPerMinute: 30,
  idleTimeoutSeconds: 60,
  keepAliveTimeoutSeconds: 30,
};

const LIMIT_KEYS: Record<string, keyof Limits> = {
  max_object_bytes: 'maxObjectBytes',
  max_batch_bytes: 'maxBatchBytes',
  max_batch_objects: 'maxBatchObjects',
  max_lookup_ids: 'maxLookupIds',
  max_concurrent_requests: 'maxConcurrentRequests',
  max_concurrent_requests_per_client: 'maxConcurrentRequestsPerClient',
  max_queued_requests: 'maxQueuedRequests',
  max_queued_requests_per_client: 'maxQueuedRequestsPerClient',
  max_connections: 'maxConnections',
  request_timeout_seconds: 'requestTimeoutSeconds',
  headers_timeout_seconds: 'headersTimeoutSeconds',
  min_body_bytes_per_second: 'minBodyBytesPerSecond',
  body_rate_window_seconds: 'bodyRateWindowSeconds',
  failed_auth_burst: 'failedAuthBurst',
  failed_auth_per_minute: 'failedAuthPerMinute',
  idle_timeout_seconds: 'idleTimeoutSeconds',
  keep_alive_timeout_seconds: 'keepAliveTimeoutSeconds',
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const DEFAULT_LISTEN = '0.0.0.0:8443';

/** The config file init writes. */
export function defaultConfigText(cert: string, key: string): string {
  const limits = Object.entries(LIMIT_KEYS)
    .map(([k, f]) => `  ${k}: ${DEFAULT_LIMITS[f]}`)
    .join('\n');
  return (
    '# obnam-server configuration (see format-spec/server-api.md)\n' +
    `listen: "${DEFAULT_LISTEN}"\n` +
    'tls:\n' +
    `  cert: ${JSON.stringify(cert)}\n` +
    `  key: ${JSON.stringify(key)}\n` +
    '# fatal, error, warn, info, debug or trace (debug logs every request)\n' +
    'log_level: info\n' +
    'limits:\n' +
    limits +
    '\n' +
    '# repacking gives back the space of deleted objects (obnam prune, obnam-server repack);\n' +
    '# serve repacks a namespace after idle_seconds without requests, if more than\n' +
    '# max_unused_percent of its stored bytes is unused (background: false turns that off)\n' +
    'repack:\n' +
    `  background: ${DEFAULT_REPACK.background}\n` +
    `  idle_seconds: ${DEFAULT_REPACK.idleSeconds}\n` +
    `  max_unused_percent: ${DEFAULT_REPACK.maxUnusedPercent}\n`
  );
}

export async function loadServerConfig(d: ServerDir): Promise<ServerConfig> {
  const file = d.configFile;
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new ObnamError('USAGE', `cannot read server config ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new ObnamError('USAGE', `server config ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const bad = (what: string) => new ObnamError('USAGE', `server config ${file}: ${what}`);
  const top = mapping(raw ?? {}, bad, 'the file');
  const cfg: ServerConfig = { listen: DEFAULT_LISTEN, tls: { cert: '', key: '' }, logLevel: 'info', limits: { ...DEFAULT_LIMITS }, storage: { type: 'local' }, repack: { ...DEFAULT_REPACK } };
  const base = path.dirname(file);
  for (const [k, v] of Object.entries(top)) {
    if (k === 'listen') {
      if (typeof v !== 'string') throw bad('listen must be a string HOST:PORT');
      parseListen(v);
      cfg.listen = v;
    } else if (k === 'tls') {
      const t = mapping(v, bad, 'tls');
      for (const [tk, tv] of Object.entries(t)) {
        if ((tk !== 'cert' && tk !== 'key') || typeof tv !== 'string') throw bad(`tls.${tk}: expected cert and key file names`);
        cfg.tls[tk] = path.resolve(base, tv);
      }
    } else if (k === 'log_level') {
      if (typeof v !== 'string' || !LOG_LEVELS.includes(v)) throw bad(`log_level must be one of ${LOG_LEVELS.join(', ')}`);
      cfg.logLevel = v;
    } else if (k === 'limits') {
      for (const [lk, lv] of Object.entries(mapping(v, bad, 'limits'))) {
        const field = LIMIT_KEYS[lk];
        if (!field) throw bad(`unknown limit ${JSON.stringify(lk)}`);
        if (typeof lv !== 'number' || !Number.isFinite(lv) || lv <= 0) throw bad(`limits.${lk} must be a positive number`);
        cfg.limits[field] = lv;
      }
      if (cfg.limits.headersTimeoutSeconds > cfg.limits.requestTimeoutSeconds) {
        throw bad('limits.headers_timeout_seconds cannot be longer than limits.request_timeout_seconds');
      }
    } else if (k === 'storage') {
      cfg.storage = parseStorageConfig(v, bad);
    } else if (k === 'repack') {
      cfg.repack = parseRepackConfig(mapping(v, bad, 'repack'), bad);
    } else {
      throw bad(`unknown setting ${JSON.stringify(k)}`);
    }
  }
  return cfg;
}

function parseRepackConfig(m: Record<string, unknown>, bad: (w: string) => ObnamError): RepackConfig {
  const r = { ...DEFAULT_REPACK };
  for (const [k, v] of Object.entries(m)) {
    if (k === 'background') {
      if (typeof v !== 'boolean') throw bad('repack.background must be true or false');
      r.background = v;
    } else if (k === 'idle_seconds') {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad('repack.idle_seconds must be a positive number');
      r.idleSeconds = v;
    } else if (k === 'max_unused_percent') {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) throw bad('repack.max_unused_percent must be a percentage from 0 to 100');
      r.maxUnusedPercent = v;
    } else {
      throw bad(`unknown repack setting ${JSON.stringify(k)}`);
    }
  }
  return r;
}

function mapping(v: unknown, bad: (w: string) => ObnamError, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${what} must be a mapping`);
  return v as Record<string, unknown>;
}

/** "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces); port 0 picks a free port. */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ObnamError('USAGE', `listen address ${JSON.stringify(s)}: expected HOST:PORT (port 0 picks a free one)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
