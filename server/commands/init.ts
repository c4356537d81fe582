/**
 * obnam-server init [DIR] [--cert FILE --key FILE] [--hostname NAME...]
 *   [--storage local|s3://BUCKET/PREFIX --s3-endpoint URL [--s3-region R]]:
 * creates a server directory and prints the certificate's SHA-256
 * fingerprint for clients to pin.
 */
import { ObnamError } from '../../lib/errors.js';
import { parseS3Url, S3BlobBackend } from '../../lib/blob/s3.js';
import { initServerDir } from '../init.js';
import { checkEndpoint, StorageConfig } from '../storage-config.js';

export interface InitArgs {
  dir?: string;
  cert?: string;
  key?: string;
  hostname?: string[];
  storage?: string;
  's3-endpoint'?: string;
  's3-region'?: string;
}

function storageChoice(args: InitArgs): StorageConfig {
  const s = args.storage ?? 'local';
  if (s === 'local') {
    if (args['s3-endpoint'] || args['s3-region']) throw new ObnamError('USAGE', '--s3-endpoint and --s3-region go with --storage s3://BUCKET/PREFIX');
    return { type: 'local' };
  }
  if (!s.startsWith('s3://')) throw new ObnamError('USAGE', `--storage ${s}: expected local or s3://BUCKET/PREFIX`);
  parseS3Url(s);
  if (!args['s3-endpoint']) throw new ObnamError('USAGE', '--storage s3://... needs --s3-endpoint URL');
  return { type: 's3', url: s, endpoint: checkEndpoint(args['s3-endpoint']), region: args['s3-region'] };
}

/** With credentials at hand, checks that the bucket can be used before anything is written. */
async function probeStorage(s: StorageConfig): Promise<void> {
  if (s.type !== 's3') return;
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = process.env;
  if (!accessKeyId || !secretAccessKey) {
    process.stderr.write('note: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set: the bucket was not checked; set them (or storage.access_key_id and storage.secret_access_key in the config) before serving\n');
    return;
  }
  const b = new S3BlobBackend({ ...parseS3Url(s.url), endpoint: s.endpoint, region: s.region ?? process.env.AWS_REGION, accessKeyId, secretAccessKey });
  try {
    await b.probe();
  } finally {
    b.destroy();
  }
}

export async function initCommand(args: InitArgs): Promise<number> {
  const storage = storageChoice(args);
  await probeStorage(storage);
  const { dir, fingerprint } = await initServerDir(args.dir ?? process.env.OBNAM_SERVER_DIR ?? process.cwd(), {
    cert: args.cert,
    key: args.key,
    hostnames: args.hostname,
    storage,
  });
  process.stdout.write(
    `initialised obnam-server directory ${dir.dir}\n` +
      `certificate SHA-256 fingerprint: ${fingerprint}\n` +
      `next: obnam-server client add NAME --dir ${dir.dir}, then obnam-server serve --dir ${dir.dir}\n`,
  );
  return 0;
}
