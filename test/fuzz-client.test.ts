/**
 * Fuzz test of the client's side of the wire (fast-check): HttpStore talking
 * to a hostile HTTPS server that answers every request with a random status
 * and a random or mangled body (list pages, lookup and batch answers, fetch
 * records, error bodies). Every store operation must resolve or fail with a
 * typed ObnamError, never another exception or a hang (the store is not
 * trusted, format-spec 16.1).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as https from 'node:https';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { sha256 } from '../lib/crypto/hash.js';
import { ObnamError } from '../lib/errors.js';
import { KINDS } from '../lib/format/version.js';
import { HttpStore } from '../lib/store/http.js';
import { encodeFetch, FETCH_DAMAGED, FETCH_LATER, FETCH_MISSING } from '../lib/store/http-wire.js';
import { fingerprintOf, generateSelfSigned, loadCertificate } from '../server/tls.js';
import { assertBothAsync, mutatedBytes } from './helpers/fuzz.js';
import { tempDir, TempDir } from './helpers/tmp.js';

interface Answer {
  status: number;
  body: Buffer;
  contentType?: string;
}

const id = (seed: string) => createHash('sha256').update(seed).digest('hex');
const IDS = [0, 1, 2].map((i) => id(`object ${i}`));
const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));

describe('the client given random answers by a hostile server fails only with typed errors', () => {
  let tmp: TempDir;
  let server: https.Server;
  let url: string;
  let fingerprint: string;
  /** What the server answers to the requests of the current case, in turn (the last one repeats). */
  let answers: Answer[] = [];
  let served = 0;

  before(async () => {
    tmp = await tempDir('obnam-fuzz-client-');
    const certFile = path.join(tmp.path, 'cert.pem');
    const keyFile = path.join(tmp.path, 'key.pem');
    await generateSelfSigned(certFile, keyFile, []);
    const { cert, key, x509 } = await loadCertificate(certFile, keyFile);
    fingerprint = fingerprintOf(x509);
    server = https.createServer({ cert, key }, (req, res) => {
      req.resume();
      req.on('end', () => {
        const a = answers[Math.min(served++, answers.length - 1)]!;
        res.writeHead(a.status, { 'content-type': a.contentType ?? 'application/json', 'content-length': a.body.length });
        res.end(a.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await tmp.remove();
  });

  it('every store operation against random answers', async () => {
    const data = randomBytes(300);
    const fetchRecords = Buffer.concat(
      encodeFetch([
        { id: IDS[0]!, digest: sha256(data), data },
        { id: IDS[1]!, status: FETCH_MISSING },
        { id: IDS[2]!, status: FETCH_DAMAGED },
      ]),
    );
    const later = Buffer.concat(encodeFetch(IDS.map((i) => ({ id: i, status: FETCH_LATER }))));
    const json = (v: unknown) => Buffer.from(JSON.stringify(v));
    const idList = fc.array(fc.oneof(hex64, fc.constantFrom(...IDS), fc.jsonValue()), { maxLength: 5 });
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      fc.record({ ids: idList, next: fc.oneof(fc.constant(null), hex64, fc.jsonValue()) }).map(json),
      fc.record({ exists: fc.array(fc.oneof(fc.boolean(), fc.jsonValue()), { maxLength: 5 }) }).map(json),
      fc.record({ created: fc.array(fc.oneof(fc.boolean(), fc.jsonValue()), { maxLength: 5 }) }).map(json),
      fc.record({ error: fc.oneof(fc.record({ code: fc.string(), message: fc.oneof(fc.string(), fc.jsonValue()) }), fc.jsonValue()) }).map(json),
      mutatedBytes([fetchRecords, later]),
      fc.constantFrom(fetchRecords, later, data, Buffer.from('null'), Buffer.alloc(0)),
    );
    const answer = fc.record({
      status: fc.constantFrom(200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409, 413, 422, 500, 503),
      body,
      contentType: fc.constantFrom(undefined, 'application/octet-stream', 'application/vnd.obnam.batch', 'text/html'),
    });
    const operation = fc.record({
      kind: fc.constantFrom(...KINDS),
      op: fc.constantFrom('get', 'get3', 'has', 'hasMany', 'list', 'put', 'putLarge', 'delete'),
    });
    await assertBothAsync(
      fc.asyncProperty(operation, fc.array(answer, { minLength: 1, maxLength: 4 }), async ({ kind, op }, as) => {
        answers = as;
        served = 0;
        const store = await HttpStore.open({ url, token: 't', fingerprint }, { retries: 0, timeoutMs: 5000, concurrency: 1 });
        try {
          switch (op) {
            case 'get':
              return await typed(store.get(kind, IDS[0]!));
            case 'get3':
              return await typed(Promise.all(IDS.map((i) => store.get(kind, i))));
            case 'has':
              return await typed(store.has(kind, IDS[0]!));
            case 'hasMany':
              return await typed(store.hasMany(kind, IDS));
            case 'list':
              return await typed(
                (async () => {
                  let n = 0;
                  for await (const _ of store.list(kind)) if (++n > 1000) break;
                })(),
              );
            case 'put':
              return await typed(store.put(kind, IDS[0]!, data));
            case 'putLarge':
              return await typed(store.put(kind, IDS[1]!, Buffer.alloc(200_000, 1)));
            case 'delete':
              return await typed(store.delete(kind, IDS[2]!));
          }
          return true;
        } finally {
          await store.close().catch((e: unknown) => assert.ok(e instanceof ObnamError, String(e)));
        }
      }),
      { fixed: 80, random: 30 },
    );
  });

  it('a listing whose cursor does not advance fails instead of going on forever', { timeout: 10_000 }, async () => {
    // Found by the random runs above: an answer repeated for every request kept list() requesting pages.
    const next = id('stuck cursor');
    for (const page of [{ ids: [], next }, { ids: [next], next }]) {
      answers = [{ status: 200, body: Buffer.from(JSON.stringify(page)) }];
      served = 0;
      const store = await HttpStore.open({ url, token: 't', fingerprint }, { retries: 0, timeoutMs: 5000, concurrency: 1 });
      try {
        const listed: string[] = [];
        await assert.rejects(
          (async () => {
            for await (const i of store.list('chunk')) listed.push(i);
          })(),
          (e: unknown) => e instanceof ObnamError && /cursor does not advance/.test(e.message),
        );
        assert.ok(served <= 3, `${served} requests`);
      } finally {
        await store.close().catch(() => undefined);
      }
    }
  });
});

/** True once `p` settles with a value or an ObnamError; anything else fails the property. */
async function typed(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof ObnamError)) throw e;
  }
  return true;
}
