/**
 * The obnam-server HTTP API as both sides see it: route paths, header names,
 * JSON body shapes and the binary batch-upload format. HttpStore (client) and
 * server/ (server) both use this module, so the two cannot drift apart.
 * format-spec/server-api.md documents the same thing for people.
 */
import { ObnamError } from '../errors.js';
import { ID_BYTES } from '../format/ids.js';
import type { Kind } from '../format/version.js';
import type { RepackResult } from './store.js';

export const API_PREFIX = '/v1';
/** SHA-256 of an object's bytes, 64 lowercase hex digits (request and response header). */
export const DIGEST_HEADER = 'obnam-sha256';
export const OCTET_STREAM = 'application/octet-stream';
/** Content type of a batch upload body (see encodeBatch). */
export const BATCH_CONTENT_TYPE = 'application/vnd.obnam.batch';

/** Largest page a list request may ask for, and the default page size. */
export const LIST_MAX_LIMIT = 10_000;

export const routes = {
  health: '/health',
  object: (kind: Kind, id: string) => `${API_PREFIX}/objects/${kind}/${id}`,
  list: (kind: Kind, after: string | undefined, limit: number) =>
    `${API_PREFIX}/objects/${kind}?limit=${limit}` + (after ? `&after=${after}` : ''),
  has: (kind: Kind) => `${API_PREFIX}/has/${kind}`,
  batch: (kind: Kind) => `${API_PREFIX}/batch/${kind}`,
  fetch: (kind: Kind) => `${API_PREFIX}/fetch/${kind}`,
  repack: `${API_PREFIX}/repack`,
  refresh: `${API_PREFIX}/refresh`,
};

/** POST /v1/has/KIND and POST /v1/fetch/KIND request body. */
export interface HasRequest {
  ids: string[];
}
/** POST /v1/has/KIND response body: one entry per requested id, in order. */
export interface HasResponse {
  exists: boolean[];
}
/** GET /v1/objects/KIND response body. `next` is the cursor for the following page, null at the end. */
export interface ListPage {
  ids: string[];
  next: string | null;
}
/** POST /v1/batch/KIND response body: per record, whether it was newly stored. */
export interface BatchResponse {
  created: boolean[];
}
/** POST /v1/repack request body. */
export interface RepackRequest {
  /** Rewrite packs when more than this percentage of the namespace's stored bytes is unused (0 to 100). */
  max_unused: number;
  dry_run?: boolean;
}
/** POST /v1/repack response body: RepackResult with the API's snake_case names. */
export interface RepackResponse {
  packs_before: number;
  packs_rewritten: number;
  packs_removed: number;
  objects_copied: number;
  bytes_before: number;
  bytes_after: number;
  bytes_freed: number;
  unused_bytes_before: number;
}

const REPACK_FIELDS: [keyof RepackResult, keyof RepackResponse][] = [
  ['packsBefore', 'packs_before'],
  ['packsRewritten', 'packs_rewritten'],
  ['packsRemoved', 'packs_removed'],
  ['objectsCopied', 'objects_copied'],
  ['bytesBefore', 'bytes_before'],
  ['bytesAfter', 'bytes_after'],
  ['bytesFreed', 'bytes_freed'],
  ['unusedBytesBefore', 'unused_bytes_before'],
];

export function encodeRepackResult(r: RepackResult): RepackResponse {
  const out = {} as RepackResponse;
  for (const [k, w] of REPACK_FIELDS) out[w] = r[k];
  return out;
}

/** The result in a repack answer; undefined if the answer is not of that shape. */
export function decodeRepackResult(body: unknown): RepackResult | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const out = {} as RepackResult;
  for (const [k, w] of REPACK_FIELDS) {
    const v = (body as Record<string, unknown>)[w];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return undefined;
    out[k] = v;
  }
  return out;
}

/** The request body of POST /v1/repack, checked; USAGE if malformed. */
export function parseRepackRequest(body: unknown): { maxUnusedPercent: number; dryRun: boolean } {
  const b = body as Partial<Record<keyof RepackRequest, unknown>> | undefined;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new ObnamError('USAGE', 'expected a JSON body {"max_unused": PERCENT, "dry_run": BOOLEAN}');
  for (const k of Object.keys(b)) if (k !== 'max_unused' && k !== 'dry_run') throw new ObnamError('USAGE', `repack: unknown field ${JSON.stringify(k).slice(0, 40)}`);
  const m = b.max_unused;
  if (typeof m !== 'number' || !Number.isFinite(m) || m < 0 || m > 100) throw new ObnamError('USAGE', 'repack: max_unused must be a percentage from 0 to 100');
  if (b.dry_run !== undefined && typeof b.dry_run !== 'boolean') throw new ObnamError('USAGE', 'repack: dry_run must be true or false');
  return { maxUnusedPercent: m, dryRun: b.dry_run === true };
}

/** Every 4xx/5xx response body. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/**
 * A batch upload body is a sequence of records, each
 *
 *   32 bytes  object id (binary)
 *   32 bytes  SHA-256 of the object bytes
 *    4 bytes  length of the object bytes, big-endian
 *    n bytes  the object bytes
 */
export const BATCH_RECORD_HEADER = ID_BYTES + 32 + 4;

export interface BatchRecord {
  id: string;
  digest: Buffer;
  data: Uint8Array;
}

/** The body as a list of buffers (no copy of the object bytes). */
export function encodeBatch(records: readonly BatchRecord[]): Buffer[] {
  const out: Buffer[] = [];
  for (const r of records) {
    const h = Buffer.alloc(BATCH_RECORD_HEADER);
    h.write(r.id, 0, 'hex');
    r.digest.copy(h, ID_BYTES);
    h.writeUInt32BE(r.data.length, ID_BYTES + 32);
    out.push(h, Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength));
  }
  return out;
}

/** Parses a whole batch body; USAGE if it is malformed or truncated. */
export function decodeBatch(body: Buffer, maxRecords: number): BatchRecord[] {
  const out: BatchRecord[] = [];
  let off = 0;
  while (off < body.length) {
    if (out.length >= maxRecords) throw new ObnamError('TOO_LARGE', `batch has more than ${maxRecords} objects`);
    if (body.length - off < BATCH_RECORD_HEADER) throw new ObnamError('USAGE', 'batch body ends inside a record header');
    const id = body.toString('hex', off, off + ID_BYTES);
    const digest = body.subarray(off + ID_BYTES, off + ID_BYTES + 32);
    const len = body.readUInt32BE(off + ID_BYTES + 32);
    off += BATCH_RECORD_HEADER;
    if (body.length - off < len) throw new ObnamError('USAGE', 'batch body ends inside an object');
    out.push({ id, digest, data: body.subarray(off, off + len) });
    off += len;
  }
  return out;
}

/**
 * POST /v1/fetch/KIND answers {"ids": [...]} with one record per requested
 * id, in order, in the batch record format; a record whose length field is
 * one of these values carries no bytes and says why:
 */
export const FETCH_MISSING = 0xffffffff;
/** The server's copy no longer matches its digest. */
export const FETCH_DAMAGED = 0xfffffffe;
/** Not sent, to keep the answer within the server's size limit: fetch it on its own. */
export const FETCH_LATER = 0xfffffffd;
/** Ids in one fetch request. */
export const FETCH_MAX_IDS = 256;

export type FetchResult = { data: Buffer } | { status: typeof FETCH_MISSING | typeof FETCH_DAMAGED | typeof FETCH_LATER };

/** Encodes a fetch answer (server side). */
export function encodeFetch(results: readonly { id: string; digest?: Buffer; data?: Uint8Array; status?: number }[]): Buffer[] {
  const out: Buffer[] = [];
  for (const r of results) {
    const h = Buffer.alloc(BATCH_RECORD_HEADER);
    h.write(r.id, 0, 'hex');
    if (r.data && r.digest) {
      r.digest.copy(h, ID_BYTES);
      h.writeUInt32BE(r.data.length, ID_BYTES + 32);
      out.push(h, Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength));
    } else {
      h.writeUInt32BE(r.status ?? FETCH_MISSING, ID_BYTES + 32);
      out.push(h);
    }
  }
  return out;
}

/** Decodes a fetch answer for these ids (client side); INTERNAL if it does not match them. */
export function decodeFetch(body: Buffer, ids: readonly string[]): FetchResult[] {
  const out: FetchResult[] = [];
  let off = 0;
  for (const id of ids) {
    if (body.length - off < BATCH_RECORD_HEADER || body.toString('hex', off, off + ID_BYTES) !== id) {
      throw new ObnamError('INTERNAL', 'malformed answer to a fetch: records do not match the ids asked for');
    }
    const len = body.readUInt32BE(off + ID_BYTES + 32);
    off += BATCH_RECORD_HEADER;
    if (len === FETCH_MISSING || len === FETCH_DAMAGED || len === FETCH_LATER) {
      out.push({ status: len });
      continue;
    }
    if (body.length - off < len) throw new ObnamError('INTERNAL', 'malformed answer to a fetch: truncated');
    out.push({ data: body.subarray(off, off + len) });
    off += len;
  }
  if (off !== body.length) throw new ObnamError('INTERNAL', 'malformed answer to a fetch: trailing bytes');
  return out;
}
