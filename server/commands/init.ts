/**
 * obnam-server init [DIR] [--cert FILE --key FILE] [--hostname NAME...]
 *   [--storage local|s3://BUCKET/PREFIX --s3-endpoint URL [--s3-region R]]:
 * creates a server directory and prints the certificate's SHA-256
 * fingerprint for clients to pin.
 */
import { ObnamError } from '../../lib/errors.js';
import { parseS3Url } from '../../lib/blob/s3.js';
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

export async function initCommand(args: InitArgs): Promise<number> {
  const { dir, fingerprint } = await initServerDir(args.dir ?? process.env.OBNAM_SERVER_DIR ?? process.cwd(), {
    cert: args.cert,
    key: args.key,
    hostnames: args.hostname,
    storage: storageChoice(args),
  });
  process.stdout.write(
    `initialised obnam-server directory ${dir.dir}\n` +
      `certificate SHA-256 fingerprint: ${fingerprint}\n` +
      `next: obnam-server client add NAME --dir ${dir.dir}, then obnam-server serve --dir ${dir.dir}\n`,
  );
  return 0;
}
