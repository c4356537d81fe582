/**
 * The store as seen from a worker thread: every call is forwarded to the
 * main thread, which owns the one real store (its pack buffer and index, or
 * its HTTP connections). Object bytes move as transferred ArrayBuffers, not
 * copies. Workers only read and write single objects (ObjectAccess): they
 * never list, delete or close a store.
 *
 * Reads from a local repository skip the main thread's file I/O: for an
 * object in a finished pack the main thread answers with where its record
 * is (FileRecord), and the worker reads and checks the record itself, with
 * a few pack files of its own kept open. Any failure of such a read (a pack
 * repacked away meanwhile, damage) asks the main thread for the bytes
 * instead, so errors and refreshes stay the store's.
 */
import type { MessagePort } from 'node:worker_threads';
import { ErrorCode, ObnamError } from '../errors.js';
import type { Kind } from '../format/version.js';
import { OpenFiles } from '../blob/open-files.js';
import { checkRecord, RECORD_HEADER_BYTES } from '../store/pack-format.js';
import { FileRecord, hasFileRecords, ObjectAccess } from '../store/store.js';

/** Pack files a worker keeps open for its own reads. */
const WORKER_OPEN_FILES = 16;

export type StoreRequest =
  | { op: 'put'; kind: Kind; id: string; data: Uint8Array }
  /** `direct`: a FileRecord may be the answer (the worker then reads it itself). */
  | { op: 'get'; kind: Kind; id: string; direct?: boolean }
  | { op: 'has'; kind: Kind; id: string }
  | { op: 'hasMany'; kind: Kind; ids: string[] };

export type StoreReply = { rpc: number; ok: true; value: unknown } | { rpc: number; ok: false; code: ErrorCode; message: string };

export class StoreProxy implements ObjectAccess {
  readonly location = 'main thread store';
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly files = new OpenFiles(WORKER_OPEN_FILES);

  constructor(private readonly port: MessagePort) {}

  /** Called by the worker's message handler for every storeReply. */
  onReply(r: StoreReply): void {
    const w = this.waiting.get(r.rpc);
    if (!w) return;
    this.waiting.delete(r.rpc);
    if (r.ok) w.resolve(r.value);
    else w.reject(new ObnamError(r.code, r.message));
  }

  private call<T>(req: StoreRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    const rpc = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(rpc, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage({ type: 'store', rpc, req }, transfer);
    });
  }

  put(kind: Kind, id: string, data: Uint8Array): Promise<boolean> {
    // Transfer when the view owns its whole buffer; copy otherwise (the caller may reuse it).
    const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : new Uint8Array(data);
    return this.call<boolean>({ op: 'put', kind, id, data: own }, [own.buffer as ArrayBuffer]);
  }

  async get(kind: Kind, id: string): Promise<Uint8Array> {
    const got = await this.call<Uint8Array | { fileRecord: FileRecord }>({ op: 'get', kind, id, direct: true });
    if (got instanceof Uint8Array) return got;
    const data = await this.readRecord(kind, id, got.fileRecord).catch(() => undefined);
    return data ?? this.call<Uint8Array>({ op: 'get', kind, id });
  }

  /** Reads and checks a record in a pack file (as PackedStoreBase.readRecord does). */
  private async readRecord(kind: Kind, id: string, r: FileRecord): Promise<Uint8Array> {
    const h = await this.files.acquire(r.file);
    try {
      const buf = Buffer.allocUnsafeSlow(RECORD_HEADER_BYTES + r.length);
      const { bytesRead } = await h.fh.read(buf, 0, buf.length, r.offset);
      return checkRecord(buf.subarray(0, bytesRead), kind, id, r.length, true, `${kind} ${id}`, r.pack).data;
    } finally {
      this.files.release(h);
    }
  }

  has(kind: Kind, id: string): Promise<boolean> {
    return this.call<boolean>({ op: 'has', kind, id });
  }

  hasMany(kind: Kind, ids: readonly string[]): Promise<boolean[]> {
    return this.call<boolean[]>({ op: 'hasMany', kind, ids: [...ids] });
  }

}

/** Main-thread side: carries out one forwarded request on the real store. */
export async function serveStoreRequest(store: ObjectAccess, req: StoreRequest): Promise<[unknown, ArrayBuffer[]]> {
  switch (req.op) {
    case 'put':
      return [await store.put(req.kind, req.id, req.data), []];
    case 'get': {
      const record = req.direct && hasFileRecords(store) ? store.fileRecord(req.kind, req.id) : undefined;
      if (record) return [{ fileRecord: record }, []];
      const data = await store.get(req.kind, req.id);
      const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : new Uint8Array(data);
      return [own, [own.buffer as ArrayBuffer]];
    }
    case 'has':
      return [await store.has(req.kind, req.id), []];
    case 'hasMany':
      return [await store.hasMany(req.kind, req.ids), []];
  }
}
