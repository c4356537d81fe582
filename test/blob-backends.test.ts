/** The blob backends (lib/blob/) against their conformance suite: a local directory, and S3 on a real S3-compatible server (s3rver on 127.0.0.1). */
import { after, before, describe } from 'node:test';
import { randomBytes } from 'node:crypto';
import { withRetry } from '../lib/blob/decorators.js';
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
  // With the retry decorator, as obnam-server stacks it (server/storage-s3.ts): s3rver
  // answers an occasional listing that races a write with 500 InternalError, which real
  // object stores also do now and then and which the decorator exists to absorb.
  blobConformance('S3BlobBackend with retry (s3rver)', async () => {
    const prefix = `t-${randomBytes(6).toString('hex')}`;
    // Small listing pages, so paging is exercised.
    const open = () => withRetry(s3.backend(prefix, { listPageSize: 50 }), { baseDelayMs: 20 });
    return { backend: open(), other: async () => open(), cleanup: async () => {} };
  }, { tornConcurrentWrites: 's3rver writes object files in place' });
});
