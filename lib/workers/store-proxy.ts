/**
 * The store as seen from a worker thread: every call is forwarded to the
 * main thread, which owns the one real store (its pack buffer and index, or
 * its HTTP connections). Object bytes move as transferred ArrayBuffers, not
 * copies. Workers only read and write single objects (ObjectAccess): they
 * never list, delete or close a store.
 */
import type { MessagePort } from 'node:worker_threads';
import { ErrorCode, ObnamError } from '../errors.js';
import type { Kind } from '../format/version.js';
import type { ObjectAccess } from '../store/store.js';

export type StoreRequest =
  | { op: 'put'; kind: Kind; id: string; data: Uint8Array }
  | { op: 'get'; kind: Kind; id: string }
  | { op: 'has'; kind: Kind; id: string }
  | { op: 'hasMany'; kind: Kind; ids: string[] };

export type StoreReply = { rpc: number; ok: true; value: unknown } | { rpc: number; ok: false; code: ErrorCode; message: string };

export class StoreProxy implements ObjectAccess {
  readonly location = 'main thread store';
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

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

  get(kind: Kind, id: string): Promise<Uint8Array> {
    return this.call<Uint8Array>({ op: 'get', kind, id });
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
