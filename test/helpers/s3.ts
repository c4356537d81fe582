/**
 * A real S3-compatible server on 127.0.0.1 for tests: s3rver (npm dev
 * dependency), serving one fresh bucket from a temporary directory. s3rver
 * ignores If-None-Match on PUT, so backends over it are told
 * conditionalWrites: false (see lib/blob/s3.ts).
 *
 * s3rver writes an object in place as its body arrives, so a listing shows it
 * partial meanwhile, and one whose client is killed mid-upload stays partial
 * for good (a truncated pack no repack removes). S3 shows an object only once
 * its upload has completed, and the blob store relies on that
 * (format-spec/local-store.md 11.1, 11.2): here s3rver gathers the body first
 * and renames the whole object into place (storeWholeObjects).
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import S3rver, { S3rverStore } from 's3rver';
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

/**
 * Makes s3rver's PUT atomic, as S3's is: the body is read whole, written
 * beside the object under a name s3rver does not list, then renamed into
 * place. A request that ends early (its client killed) stores nothing.
 */
function storeWholeObjects(store: S3rverStore): void {
  store.putObject = async (object) => {
    const parts: Buffer[] = [];
    if (Buffer.isBuffer(object.content)) parts.push(object.content);
    else for await (const part of object.content) parts.push(part);
    const body = Buffer.concat(parts);
    const md5 = createHash('md5').update(body).digest('hex');
    const file = store.getResourcePath(object.bucket, object.key, 'object');
    await fs.mkdir(path.dirname(file), { recursive: true });
    const partial = `${file}.${randomBytes(6).toString('hex')}.partial`;
    await fs.writeFile(partial, body);
    await store.putMetadata(object.bucket, object.key, object.metadata, md5);
    await fs.rename(partial, file);
    return { size: body.length, md5 };
  };
}

export async function startS3(): Promise<TestS3> {
  const dir = await tempDir('obnam-s3-');
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: !process.env.S3DEBUG, directory: dir.path });
  storeWholeObjects(server.store);
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
