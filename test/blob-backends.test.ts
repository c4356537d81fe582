/** The blob backends (lib/blob/) against their conformance suite: a local directory, and S3 on a real S3-compatible server (s3rver on 127.0.0.1). */
import { after, before, describe } from 'node:test';
import { randomBytes } from 'node:crypto';
import { LocalBlobBackend } from '../lib/blob/local.js';
import { blobConformance } from './helpers/blob-conformance.js';
import { startS3, TestS3 } from './helpers/s3.js';
import { tempDir } from './helpers/tmp.js';

blobConformance('LocalBlobBackend', async () => {
  const dir = await tempDir();
  return { backend: await LocalBlobBackend.create(dir.path), other: () => LocalBlobBackend.create(dir.path), cleanup: dir.remove };
});

describe('S3', () => {
  let s3: TestS3;
  before(async () => {
    s3 = await startS3();
  });
  after(async () => {
    await s3.stop();
  });
  blobConformance('S3BlobBackend (s3rver)', async () => {
    const prefix = `t-${randomBytes(6).toString('hex')}`;
    // Small listing pages, so paging is exercised.
    return { backend: s3.backend(prefix, { listPageSize: 50 }), other: async () => s3.backend(prefix, { listPageSize: 50 }), cleanup: async () => {} };
  }, { tornConcurrentWrites: 's3rver writes object files in place' });
});
