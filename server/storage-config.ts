/**
 * The `storage` setting of the server config, and the provider it names:
 *
 *   storage: local                       # the default: DIR/data/NAMESPACE/
 *   storage:
 *     type: s3
 *     url: s3://BUCKET/PREFIX
 *     endpoint: https://s3.example.net:9000   # path-style addressing
 *     region: us-east-1                        # optional
 *     access_key_id: ...                       # optional: else $AWS_ACCESS_KEY_ID
 *     secret_access_key: ...                   # optional: else $AWS_SECRET_ACCESS_KEY
 */
import { ObnamError } from '../lib/errors.js';
import { parseS3Url } from '../lib/blob/s3.js';
import type { ServerDir } from './layout.js';
import { LocalNamespaces } from './storage-local.js';
import { S3Namespaces } from './storage-s3.js';
import type { NamespaceProvider } from './storage.js';

export type StorageConfig =
  | { type: 'local' }
  | { type: 's3'; url: string; endpoint: string; region?: string; accessKeyId?: string; secretAccessKey?: string };

const S3_KEYS: Record<string, 'url' | 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'> = {
  url: 'url',
  endpoint: 'endpoint',
  region: 'region',
  access_key_id: 'accessKeyId',
  secret_access_key: 'secretAccessKey',
};

export function parseStorageConfig(v: unknown, bad: (what: string) => ObnamError): StorageConfig {
  if (v === 'local') return { type: 'local' };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('storage must be "local" or a mapping with type: s3');
  const m = v as Record<string, unknown>;
  if (m.type === 'local' && Object.keys(m).length === 1) return { type: 'local' };
  if (m.type !== 's3') throw bad('storage.type must be local or s3');
  const out: Partial<Record<string, string>> = {};
  for (const [k, x] of Object.entries(m)) {
    if (k === 'type') continue;
    const field = S3_KEYS[k];
    if (!field) throw bad(`unknown storage setting ${JSON.stringify(k)}`);
    if (typeof x !== 'string' || !x) throw bad(`storage.${k} must be a non-empty string`);
    out[field] = x;
  }
  if (!out.url) throw bad('storage.url is needed: s3://BUCKET/PREFIX');
  if (!out.endpoint) throw bad('storage.endpoint is needed: the URL of the S3 endpoint');
  parseS3Url(out.url);
  checkEndpoint(out.endpoint);
  return { type: 's3', url: out.url, endpoint: out.endpoint, region: out.region, accessKeyId: out.accessKeyId, secretAccessKey: out.secretAccessKey };
}

export function checkEndpoint(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ObnamError('USAGE', `S3 endpoint ${JSON.stringify(url)}: expected a URL such as https://s3.example.net:9000`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ObnamError('USAGE', `S3 endpoint ${url}: expected http:// or https://`);
  return url;
}

/** The YAML init writes for a storage choice. */
export function storageConfigText(s: StorageConfig): string {
  if (s.type === 'local') return 'storage: local\n';
  return (
    'storage:\n  type: s3\n' +
    `  url: ${JSON.stringify(s.url)}\n` +
    `  endpoint: ${JSON.stringify(s.endpoint)}\n` +
    (s.region ? `  region: ${JSON.stringify(s.region)}\n` : '') +
    '  # credentials: $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or access_key_id and secret_access_key here\n'
  );
}

/**
 * The provider for a server directory's storage. `env`: where credentials
 * not in the config come from (the process environment; passed in so that
 * the library reads no environment itself).
 */
export function namespaceProvider(d: ServerDir, s: StorageConfig, env: Record<string, string | undefined>): NamespaceProvider {
  if (s.type === 'local') return new LocalNamespaces(d.dataDir);
  const accessKeyId = s.accessKeyId ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = s.secretAccessKey ?? env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new ObnamError(
      'USAGE',
      `${d.configFile}: S3 storage needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or storage.access_key_id and storage.secret_access_key`,
    );
  }
  const { bucket, prefix } = parseS3Url(s.url);
  return new S3Namespaces({ bucket, prefix, endpoint: s.endpoint, region: s.region ?? env.AWS_REGION, accessKeyId, secretAccessKey });
}
