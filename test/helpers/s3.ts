/**
 * A real S3-compatible server on 127.0.0.1 for tests: s3rver (npm dev
 * dependency), serving one fresh bucket from a temporary directory. s3rver
 * ignores If-None-Match on PUT, so backends over it are told
 * conditionalWrites: false (see lib/blob/s3.ts).
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import S3rver from 's3rver';
import { S3BlobBackend, S3Location } from '../../lib/blob/s3.js';
import { obnamServerOk } from './server.js';
import { tempDir } from './tmp.js';

export const S3_KEY = 'S3RVER';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  location(prefix?: string): S3Location;
  backend(prefix?: string, extra?: Partial<S3Location>): S3BlobBackend;
  stop(): Promise<void>;
}

// The AWS SDK warns once per process that Node 20 support ends in 2027: not the tests' concern.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export async function startS3(): Promise<TestS3> {
  const dir = await tempDir('obnam-s3-');
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: !process.env.S3DEBUG, directory: dir.path });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const bucket = `obnam-${randomBytes(4).toString('hex')}`;
  const admin = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_KEY } });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  admin.destroy();
  const backends: S3BlobBackend[] = [];
  const location = (prefix = ''): S3Location => ({
    bucket,
    prefix,
    endpoint,
    accessKeyId: S3_KEY,
    secretAccessKey: S3_KEY,
    conditionalWrites: false,
  });
  return {
    endpoint,
    bucket,
    location,
    backend(prefix = '', extra = {}) {
      const b = new S3BlobBackend({ ...location(prefix), ...extra });
      backends.push(b);
      return b;
    },
    async stop() {
      for (const b of backends) b.destroy();
      await server.close();
      await dir.remove();
    },
  };
}

/** The environment obnam-server needs for s3rver's credentials. */
export const S3_ENV = { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_KEY };

/**
 * `obnam-server init DIR`, on local storage or on a fresh s3rver bucket: the
 * server's certificate fingerprint, the environment its commands need, and
 * the S3 server (the caller stops it).
 */
export async function initServerOn(
  storage: 'local' | 'S3',
  dir: string,
): Promise<{ fingerprint: string; aws: Record<string, string>; s3?: TestS3 }> {
  if (storage === 'local') {
    const init = await obnamServerOk(['init', dir]);
    return { fingerprint: /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!, aws: {} };
  }
  const s3 = await startS3();
  try {
    const init = await obnamServerOk(['init', dir, '--storage', `s3://${s3.bucket}/obnam`, '--s3-endpoint', s3.endpoint], { env: S3_ENV });
    return { fingerprint: /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!, aws: S3_ENV, s3 };
  } catch (e) {
    await s3.stop();
    throw e;
  }
}
