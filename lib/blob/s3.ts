/**
 * S3BlobBackend: blobs as objects of an S3-compatible bucket (AWS S3, MinIO,
 * Ceph RGW, Garage), under a key prefix: blob NAME is object PREFIX/NAME.
 * Path-style addressing (http://ENDPOINT/BUCKET/KEY), so MinIO-like
 * endpoints work without DNS names per bucket.
 *
 * put-if-absent: a HEAD first (so a repeated put of an existing name
 * returns false without uploading), then PUT with `If-None-Match: *`, which
 * endpoints that support conditional writes (AWS S3 since 2024, MinIO,
 * Ceph RGW) decide atomically, answering 412 to the loser. Endpoints that
 * ignore the header (s3rver) let a concurrent put of the same name replace
 * the blob whole; `atomicCreate` says which is assumed (see backend.ts for
 * why callers are safe either way).
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { ObnamError, throwIfAborted } from '../errors.js';
import type { StoreOptions } from '../store/store.js';
import { BlobBackend, BlobInfo, ByteRange, checkBlobName, PutOptions } from './backend.js';

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing '/', may be empty. */
  prefix: string;
  endpoint: string;
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Whether the endpoint honours If-None-Match: * on PUT (default true). */
  conditionalWrites?: boolean;
  /** Keys per listing request (at most 1000; tests use small pages). */
  listPageSize?: number;
}

/** Parses `s3://BUCKET/PREFIX`; USAGE if malformed. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new ObnamError('USAGE', `${url}: expected s3://BUCKET/PREFIX (bucket: 3 to 63 lowercase letters, digits, "." or "-")`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix && !prefix.split('/').every((p) => /^[A-Za-z0-9._-]+$/.test(p))) {
    throw new ObnamError('USAGE', `${url}: the prefix may hold only letters, digits, ".", "_", "-" and "/"`);
  }
  return { bucket: m[1]!, prefix };
}

export class S3BlobBackend implements BlobBackend {
  readonly atomicCreate: boolean;
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly pageSize: number;

  constructor(loc: S3Location, client?: S3Client) {
    this.bucket = loc.bucket;
    this.prefix = loc.prefix ? `${loc.prefix}/` : '';
    this.atomicCreate = loc.conditionalWrites ?? true;
    this.pageSize = Math.min(1000, loc.listPageSize ?? 1000);
    this.location = `s3://${loc.bucket}/${loc.prefix} at ${loc.endpoint}`;
    this.client =
      client ??
      new S3Client({
        endpoint: loc.endpoint,
        region: loc.region ?? 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: loc.accessKeyId, secretAccessKey: loc.secretAccessKey },
        // Retries are the job of the retry decorator (lib/blob/decorators.ts, withRetry), where one is wanted.
        maxAttempts: 1,
      });
  }

  /** The same bucket under a longer prefix (one namespace of a server), sharing the connection pool. */
  sub(prefix: string, loc: S3Location): S3BlobBackend {
    return new S3BlobBackend({ ...loc, prefix: [loc.prefix, prefix].filter(Boolean).join('/') }, this.client);
  }

  private key(name: string): string {
    return this.prefix + checkBlobName(name);
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[], opts: PutOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    if (!opts.unique && (await this.stat(name, opts))) return false;
    const body = data instanceof Uint8Array ? data : Buffer.concat(data as Uint8Array[]);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(name), Body: body, IfNoneMatch: '*' }), {
        abortSignal: opts.signal,
      });
      return true;
    } catch (e) {
      const status = statusOf(e);
      if (status === 412 || status === 409) return false;
      throw s3Error(e, `cannot store ${name} in ${this.location}`);
    }
  }

  async get(name: string, range?: ByteRange, opts: StoreOptions = {}): Promise<Buffer> {
    throwIfAborted(opts.signal);
    if (range?.length === 0) {
      const st = await this.stat(name, opts);
      if (!st) throw new ObnamError('NOT_FOUND', `${name} not found`);
      if (range.offset > st.size) throw new ObnamError('CORRUPT', `${name}: range ${range.offset}+0 is past the end of the blob`);
      return Buffer.alloc(0);
    }
    const header = range ? `bytes=${range.offset}-${range.length === undefined ? '' : range.offset + range.length - 1}` : undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(name), Range: header }), {
        abortSignal: opts.signal,
      });
      let bytes = Buffer.from(await out.Body!.transformToByteArray());
      // Servers that ignore the Range header (200, no Content-Range) or part of it (s3rver reads
      // "bytes=0-0" as "bytes=0-") send more: cut out what was asked for.
      if (range) {
        const start = Number(/^bytes (\d+)-/.exec(out.ContentRange ?? '')?.[1] ?? 0);
        const from = range.offset - start;
        if (from > 0 || (range.length !== undefined && bytes.length > range.length)) {
          bytes = bytes.subarray(from, range.length === undefined ? undefined : from + range.length);
        }
      }
      if (range?.length !== undefined && bytes.length !== range.length) {
        throw new ObnamError('CORRUPT', `${name}: range ${range.offset}+${range.length} is past the end of the blob`);
      }
      return bytes;
    } catch (e) {
      if (e instanceof ObnamError) throw e;
      const status = statusOf(e);
      if (status === 404) throw new ObnamError('NOT_FOUND', `${name} not found`);
      if (status === 416) throw new ObnamError('CORRUPT', `${name}: range ${range?.offset} is past the end of the blob`);
      throw s3Error(e, `cannot read ${name} from ${this.location}`);
    }
  }

  async stat(name: string, opts: StoreOptions = {}): Promise<{ size: number } | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(name) }), { abortSignal: opts.signal });
      return { size: out.ContentLength ?? 0 };
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw s3Error(e, `cannot look at ${name} in ${this.location}`);
    }
  }

  async *list(prefix: string, opts: StoreOptions = {}): AsyncIterable<BlobInfo> {
    // ListObjects (version 1) paged by Marker, the last key seen: every S3 implementation
    // honours it alike (s3rver's version-2 continuation tokens fail on OpenSSL 3).
    let startAfter: string | undefined;
    let more = true;
    while (more) {
      throwIfAborted(opts.signal);
      let out;
      try {
        out = await this.client.send(
          new ListObjectsCommand({ Bucket: this.bucket, Prefix: this.prefix + prefix, Marker: startAfter, MaxKeys: this.pageSize }),
          { abortSignal: opts.signal },
        );
      } catch (e) {
        throw s3Error(e, `cannot list ${prefix} in ${this.location}`);
      }
      const contents = out.Contents ?? [];
      for (const o of contents) {
        if (o.Key?.startsWith(this.prefix)) yield { name: o.Key.slice(this.prefix.length), size: o.Size ?? 0 };
      }
      startAfter = contents[contents.length - 1]?.Key;
      more = !!out.IsTruncated && startAfter !== undefined;
    }
  }

  async delete(name: string, opts: StoreOptions = {}): Promise<boolean> {
    // S3 deletes are idempotent and do not say whether the key existed: ask first.
    if (!(await this.stat(name, opts))) return false;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(name) }), { abortSignal: opts.signal });
      return true;
    } catch (e) {
      throw s3Error(e, `cannot delete ${name} from ${this.location}`);
    }
  }

  async close(): Promise<void> {}

  /** Checks that the bucket exists and can be listed with these credentials (one small request). */
  async probe(): Promise<void> {
    try {
      await this.client.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 }));
    } catch (e) {
      throw s3Error(e, `cannot use ${this.location}`);
    }
  }

  /** Closes the shared connection pool (once, by the owner of the top-level backend). */
  destroy(): void {
    this.client.destroy();
  }
}

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** An S3 failure as an ObnamError, by status (the one place that maps them). */
export function s3Error(e: unknown, what: string): ObnamError {
  if (e instanceof ObnamError) return e;
  if ((e as Error)?.name === 'AbortError') return new ObnamError('ABORTED', 'operation was cancelled');
  const status = statusOf(e);
  const detail = `${what}: ${(e as Error)?.name ?? 'error'}${status ? ` (HTTP ${status})` : ''}: ${(e as Error)?.message ?? String(e)}`;
  // The endpoint refusing our credentials is a storage failure (the server's, not its client's).
  if (status === 403 || status === 401) return new ObnamError('IO', `${detail} (check the S3 credentials and the bucket's policy)`);
  if (status === 507) return new ObnamError('NO_SPACE', detail);
  if (status === undefined || status >= 500) return new ObnamError('NETWORK', detail);
  return new ObnamError('IO', detail);
}
