/**
 * Namespaces in an S3-compatible bucket (`storage: s3`): namespace NS is a
 * packed store (lib/store/packed.ts) under PREFIX/data/NS/. Every request is
 * acknowledged only once its objects are durable in the bucket (a flush
 * writes the open pack as one object), so any number of servers can serve
 * the same bucket and a server keeps nothing that a crash could lose.
 */
import type { BlobBackend } from '../lib/blob/backend.js';
import { withLimits, withRetry } from '../lib/blob/decorators.js';
import { S3BlobBackend, S3Location } from '../lib/blob/s3.js';
import { ObnamError } from '../lib/errors.js';
import { BLOB_MARKER, PackedStore } from '../lib/store/packed.js';
import type { NamespaceProvider, NamespaceStore } from './storage.js';

const NAMESPACE = /^[0-9a-f]{32}$/;
/** Requests in flight to the endpoint, per namespace. */
const MAX_CONCURRENT = 32;

/** How stale a serving store's "exists?" answers may be about objects other servers stored. */
export const S3_MAX_STALE_MS = 2000;

export class S3Namespaces implements NamespaceProvider {
  readonly location: string;
  private readonly root: S3BlobBackend;

  constructor(private readonly loc: S3Location) {
    this.root = new S3BlobBackend(loc);
    this.location = `s3://${loc.bucket}/${loc.prefix}`;
  }

  where(namespace: string): string {
    return `${this.location.replace(/\/$/, '')}/data/${namespace}`;
  }

  /** A namespace's blobs: passing endpoint failures retried with backoff, requests in flight bounded. */
  private backend(namespace: string): BlobBackend {
    if (!NAMESPACE.test(namespace)) throw new ObnamError('USAGE', `invalid namespace ${namespace}`);
    return withLimits(withRetry(this.root.sub(`data/${namespace}`, this.loc)), { maxConcurrent: MAX_CONCURRENT });
  }

  async create(namespace: string): Promise<void> {
    await (await PackedStore.create(this.backend(namespace))).close();
  }

  open(namespace: string, opts: { serving?: boolean } = {}): Promise<NamespaceStore> {
    return PackedStore.open(this.backend(namespace), { maxStaleMs: opts.serving ? S3_MAX_STALE_MS : undefined });
  }

  async remove(namespace: string): Promise<void> {
    const b = this.backend(namespace);
    for await (const x of b.list('')) await b.delete(x.name);
  }

  async list(): Promise<string[]> {
    const out: string[] = [];
    for await (const x of this.root.list('data/')) {
      const m = /^data\/([0-9a-f]{32})\/(.+)$/.exec(x.name);
      if (m && m[2] === BLOB_MARKER) out.push(m[1]!);
    }
    return out;
  }

  async close(): Promise<void> {
    this.root.destroy();
  }
}
