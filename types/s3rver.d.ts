/** The few parts of s3rver (an S3-compatible test server, dev dependency) the tests use. */
declare module 's3rver' {
  interface S3rverOptions {
    port?: number;
    address?: string;
    silent?: boolean;
    directory: string;
    configureBuckets?: { name: string }[];
  }
  /** An object being stored: `content` is the request body (or, for multipart uploads, the parts). */
  export interface S3rverObject {
    bucket: string;
    key: string;
    content: Buffer | AsyncIterable<Buffer>;
    metadata: Record<string, string>;
  }
  /** Its filesystem store (lib/stores/filesystem.js). */
  export interface S3rverStore {
    getResourcePath(bucket: string, key: string, resource: string): string;
    putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
    putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
  }
  export default class S3rver {
    constructor(opts: S3rverOptions);
    store: S3rverStore;
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
