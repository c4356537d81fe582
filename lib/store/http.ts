/**
 * HttpStore: an ObjectStore on an obnam-server (see format-spec/server-api.md).
 *
 * Every object travels with the SHA-256 of its bytes: the server refuses an
 * upload that does not match and keeps the digest; it checks a download
 * against the kept digest before sending it, so damage on the server's disk
 * shows up as CORRUPT. `has` calls, reads and small puts are gathered into
 * batch requests while the connections are busy (http-batch.ts). Connections,
 * retries and TLS trust are HttpTransport's. A put resolves once the object is
 * durable on the server, so there is nothing to flush. Constructible from a
 * StoreSpec alone, in any thread.
 */
import { ObnamError, throwIfAborted } from '../errors.js';
import { sha256 } from '../crypto/hash.js';
import { checkId, isId } from '../format/ids.js';
import type { Kind } from '../format/version.js';
import { Batcher, Release } from './http-batch.js';
import { errorFromResponse } from './http-errors.js';
import { HttpRequest, HttpResponse, HttpTarget, HttpTransport, TransportOptions } from './http-transport.js';
import {
  BATCH_CONTENT_TYPE,
  BatchRecord,
  BatchResponse,
  DIGEST_HEADER,
  decodeFetch,
  decodeRepackResult,
  encodeBatch,
  FETCH_LATER,
  FETCH_MAX_IDS,
  FETCH_MISSING,
  HasRequest,
  HasResponse,
  LIST_MAX_LIMIT,
  ListPage,
  OCTET_STREAM,
  RepackRequest,
  routes,
} from './http-wire.js';
import type { ObjectStore, RepackOptions, RepackResult, StoreOptions } from './store.js';

/** Objects up to this size are uploaded in batches. */
const SMALL_OBJECT = 128 * 1024;
const PUT_BATCH_BYTES = 4 << 20;
const PUT_BATCH_ITEMS = 256;
const HAS_BATCH_ITEMS = 1000;
/** How long the server may work on a repack before it answers (it rewrites packs meanwhile). */
const REPACK_DEADLINE_MS = 24 * 3600 * 1000;

function wrapError(e: unknown): ObnamError {
  return e instanceof ObnamError ? e : new ObnamError('NETWORK', (e as Error).message ?? String(e));
}

/** A 404 that says the route does not exist (a server older than the route), not a missing object or namespace. */
function noSuchRoute(body: Buffer): boolean {
  try {
    const e = (JSON.parse(body.toString('utf8')) as { error?: { message?: unknown } }).error;
    return e?.message === 'no such route';
  } catch {
    return false;
  }
}

export interface HttpStoreOptions extends TransportOptions {
  /** Ids per list request (at most LIST_MAX_LIMIT, the default). */
  listPageSize?: number;
}

export class HttpStore implements ObjectStore {
  readonly location: string;
  private readonly hasBatchers = new Map<Kind, Batcher<string, boolean>>();
  private readonly putBatchers = new Map<Kind, Batcher<BatchRecord, boolean>>();
  private readonly getBatchers = new Map<Kind, Pick<Batcher<string, Uint8Array>, 'add'>>();

  private constructor(
    private readonly transport: HttpTransport,
    private readonly listPageSize: number,
  ) {
    this.location = transport.location;
  }

  static async open(target: HttpTarget, opts: HttpStoreOptions = {}): Promise<HttpStore> {
    return new HttpStore(await HttpTransport.create(target, opts), Math.min(opts.listPageSize ?? LIST_MAX_LIMIT, LIST_MAX_LIMIT));
  }

  async put(kind: Kind, id: string, data: Uint8Array, opts: StoreOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    checkId(id);
    const digest = sha256(data);
    if (data.length <= SMALL_OBJECT) return this.putBatcher(kind).add({ id, digest, data });
    const res = await this.transport.request({
      method: 'PUT',
      path: routes.object(kind, id),
      headers: { 'content-type': OCTET_STREAM, [DIGEST_HEADER]: digest.toString('hex') },
      body: [data],
      signal: opts.signal,
    });
    if (res.status === 201) return true;
    if (res.status === 200) return false;
    throw this.fail(res, `store ${kind} ${id}`);
  }

  async get(kind: Kind, id: string, opts: StoreOptions = {}): Promise<Uint8Array> {
    throwIfAborted(opts.signal);
    if (!isId(id)) throw new ObnamError('NOT_FOUND', `invalid object id ${JSON.stringify(String(id).slice(0, 80))}`);
    return this.getBatcher(kind).add(id);
  }

  /** One object by its own GET request. */
  private async getOne(kind: Kind, id: string, slot?: Release, signal?: AbortSignal): Promise<Uint8Array> {
    const res = await this.transport.request({ method: 'GET', path: routes.object(kind, id), signal }, slot);
    if (res.status !== 200) throw this.fail(res, `read ${kind} ${id}`);
    // The server has checked the bytes against the digest it kept (422 if they
    // no longer match), TLS protects them in transit, and the repository
    // authenticates every object it opens; so no second SHA-256 here.
    return res.body;
  }

  async has(kind: Kind, id: string, opts: StoreOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    if (!isId(id)) return false;
    return this.hasBatcher(kind).add(id);
  }

  async hasMany(kind: Kind, ids: readonly string[], opts: StoreOptions = {}): Promise<boolean[]> {
    throwIfAborted(opts.signal);
    const out = ids.map(() => false);
    const valid = ids.flatMap((id, i) => (isId(id) ? [i] : []));
    const groups: number[][] = [];
    for (let i = 0; i < valid.length; i += HAS_BATCH_ITEMS) groups.push(valid.slice(i, i + HAS_BATCH_ITEMS));
    await Promise.all(
      groups.map(async (g) => {
        const answer = await this.sendHas(kind, g.map((i) => ids[i]!), undefined, opts.signal);
        g.forEach((i, j) => (out[i] = answer[j]!));
      }),
    );
    return out;
  }

  async *list(kind: Kind, opts: StoreOptions = {}): AsyncIterable<string> {
    let next: Promise<ListPage> | undefined = this.listPage(kind, undefined, opts.signal);
    while (next) {
      const page: ListPage = await next;
      // Fetch the following page while the caller works through this one.
      next = page.next ? this.listPage(kind, page.next, opts.signal) : undefined;
      next?.catch(() => undefined);
      for (const id of page.ids) yield id;
    }
  }

  async delete(kind: Kind, id: string, opts: StoreOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    if (!isId(id)) throw new ObnamError('NOT_FOUND', `invalid object id ${JSON.stringify(String(id).slice(0, 80))}`);
    const res = await this.transport.request({ method: 'DELETE', path: routes.object(kind, id), signal: opts.signal });
    if (res.status === 204) return;
    // A retry of a delete that the server carried out before the connection failed.
    if (res.status === 404 && res.retried) return;
    throw this.fail(res, `delete ${kind} ${id}`);
  }

  /**
   * Asks the server to make its answers to has and listings of this
   * namespace see everything put and deleted, by any process, until now
   * (format-spec 14.8: a backup's B1 and B4, a collector's M1 and S2).
   */
  async refresh(): Promise<void> {
    const res = await this.transport.request({ method: 'POST', path: routes.refresh });
    // A server from before this route answers every request from its current view: nothing to do.
    if (res.status === 204 || (res.status === 404 && noSuchRoute(res.body))) return;
    throw this.fail(res, 'refresh its view of the repository');
  }

  /**
   * Asks the server to repack this namespace (POST /v1/repack): it rewrites
   * packs whose unused part is above the threshold and answers what it did.
   * PERMISSION for clients that may not delete. `onProgress` is not called:
   * the server reports only the result.
   */
  async repack(opts: RepackOptions): Promise<RepackResult> {
    throwIfAborted(opts.signal);
    const body: RepackRequest = { max_unused: opts.maxUnusedPercent, ...(opts.dryRun ? { dry_run: true } : {}) };
    const res = await this.transport.request({
      method: 'POST',
      path: routes.repack,
      headers: { 'content-type': 'application/json' },
      body: [Buffer.from(JSON.stringify(body))],
      signal: opts.signal,
      deadlineMs: REPACK_DEADLINE_MS,
    });
    if (res.status === 404 && noSuchRoute(res.body)) {
      throw new ObnamError('NOT_IMPLEMENTED', `${this.location}: this obnam-server is too old to repack (upgrade it to give the space back)`);
    }
    if (res.status !== 200) throw this.fail(res, 'repack');
    let answer: unknown;
    try {
      answer = JSON.parse(res.body.toString('utf8'));
    } catch {
      answer = undefined;
    }
    const r = decodeRepackResult(answer);
    if (!r) throw new ObnamError('INTERNAL', `${this.location}: malformed answer to a repack`);
    return r;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private fail(res: HttpResponse, what: string): ObnamError {
    return errorFromResponse(res.status, res.body, this.location, what);
  }

  private async json<T>(req: HttpRequest, what: string, slot?: Release): Promise<T> {
    const res = await this.transport.request(req, slot);
    if (res.status !== 200) throw this.fail(res, what);
    try {
      return JSON.parse(res.body.toString('utf8')) as T;
    } catch {
      throw new ObnamError('INTERNAL', `${this.location}: cannot ${what}: the server's answer is not JSON`);
    }
  }

  private async listPage(kind: Kind, after: string | undefined, signal?: AbortSignal): Promise<ListPage> {
    const page = await this.json<ListPage>({ method: 'GET', path: routes.list(kind, after, this.listPageSize), signal }, `list ${kind} objects`);
    if (!page || !Array.isArray(page.ids) || !page.ids.every(isId) || !(page.next === null || isId(page.next))) {
      throw new ObnamError('INTERNAL', `${this.location}: malformed list of ${kind} objects`);
    }
    // A page that names a next one holds ids, and its cursor moves forward: otherwise a server could keep a listing going forever.
    if (page.next !== null && (page.ids.length === 0 || (after !== undefined && page.next <= after))) {
      throw new ObnamError('INTERNAL', `${this.location}: malformed list of ${kind} objects (its cursor does not advance)`);
    }
    return page;
  }

  private async sendHas(kind: Kind, ids: string[], slot?: Release, signal?: AbortSignal): Promise<boolean[]> {
    const body = Buffer.from(JSON.stringify({ ids } satisfies HasRequest));
    const answer = await this.json<HasResponse>(
      { method: 'POST', path: routes.has(kind), headers: { 'content-type': 'application/json' }, body: [body], signal },
      `look up ${kind} objects`,
      slot,
    );
    if (!answer || !Array.isArray(answer.exists) || answer.exists.length !== ids.length) {
      throw new ObnamError('INTERNAL', `${this.location}: malformed answer to a lookup of ${kind} objects`);
    }
    return answer.exists.map((x) => x === true);
  }

  /**
   * Reads gathered like lookups: a read made while every connection is busy
   * waits with the others, and they leave as one fetch request. Answers are
   * values or errors, one per id (a missing object fails only its own read).
   */
  private getBatcher(kind: Kind): Pick<Batcher<string, Uint8Array>, 'add'> {
    let b = this.getBatchers.get(kind);
    if (!b) {
      const batcher = new Batcher<string, Uint8Array | ObnamError>({
        acquire: () => this.transport.acquire(),
        send: (ids, slot) => (ids.length === 1 ? this.getOne(kind, ids[0]!, slot).catch((e: unknown) => wrapError(e)).then((r) => [r]) : this.fetch(kind, ids, slot)),
        maxItems: FETCH_MAX_IDS,
      });
      b = {
        add: async (id: string) => {
          const r = await batcher.add(id);
          if (r instanceof ObnamError) throw r;
          return r;
        },
      };
      this.getBatchers.set(kind, b);
    }
    return b;
  }

  private async fetch(kind: Kind, ids: string[], slot: Release): Promise<(Uint8Array | ObnamError)[]> {
    const res = await this.transport.request(
      { method: 'POST', path: routes.fetch(kind), headers: { 'content-type': 'application/json' }, body: [Buffer.from(JSON.stringify({ ids } satisfies HasRequest))] },
      slot,
    );
    if (res.status !== 200) {
      const e = this.fail(res, `read ${ids.length} ${kind} objects`);
      return ids.map(() => e);
    }
    const results = decodeFetch(res.body, ids);
    return Promise.all(
      results.map((r, i) => {
        if ('data' in r) return r.data;
        if (r.status === FETCH_LATER) return this.getOne(kind, ids[i]!).catch((e: unknown) => wrapError(e));
        return r.status === FETCH_MISSING
          ? new ObnamError('NOT_FOUND', `${kind} ${ids[i]} not found`)
          : new ObnamError('CORRUPT', `${this.location}: ${kind} ${ids[i]}: the server's copy does not match its digest`);
      }),
    );
  }

  private hasBatcher(kind: Kind): Batcher<string, boolean> {
    let b = this.hasBatchers.get(kind);
    if (!b) {
      b = new Batcher<string, boolean>({
        acquire: () => this.transport.acquire(),
        send: (ids, slot) => this.sendHas(kind, ids, slot),
        maxItems: HAS_BATCH_ITEMS,
      });
      this.hasBatchers.set(kind, b);
    }
    return b;
  }

  private putBatcher(kind: Kind): Batcher<BatchRecord, boolean> {
    let b = this.putBatchers.get(kind);
    if (!b) {
      b = new Batcher<BatchRecord, boolean>({
        acquire: () => this.transport.acquire(),
        send: async (records, slot) => {
          const answer = await this.json<BatchResponse>(
            { method: 'POST', path: routes.batch(kind), headers: { 'content-type': BATCH_CONTENT_TYPE }, body: encodeBatch(records) },
            `store ${records.length} ${kind} objects`,
            slot,
          );
          if (!answer || !Array.isArray(answer.created) || answer.created.length !== records.length) {
            throw new ObnamError('INTERNAL', `${this.location}: malformed answer to a batch upload`);
          }
          return answer.created.map((x) => x === true);
        },
        maxItems: PUT_BATCH_ITEMS,
        maxBytes: PUT_BATCH_BYTES,
        size: (r) => r.data.length,
      });
      this.putBatchers.set(kind, b);
    }
    return b;
  }
}
