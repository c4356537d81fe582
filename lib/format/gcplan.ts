/**
 * Garbage-collection plans (kind gcplan, format version 2; format-spec
 * section 14.3): the candidates of one mark, with the collector's clock
 * reading just before the plan was put. A plan has a random id and is sealed
 * like any object, so only key holders can write one.
 */
import { randomBytes } from 'node:crypto';
import { encodeCbor } from './cbor.js';
import { idFromBytes, idToBytes } from './ids.js';
import { asArray, asBytes, asMap, asText, asTimestamp, fail } from './schema.js';
import type { Timestamp } from './tree.js';

export interface GcPlan {
  created: Timestamp;
  hostname: string;
  /** Candidate tree and chunk ids, hex, each list sorted ascending without duplicates. */
  trees: string[];
  chunks: string[];
}

/** Plaintext limit of one plan, as for snapshots. */
export const MAX_PLAN_PLAINTEXT = 16 << 20;
/** Candidates per plan: 34 bytes of CBOR each keeps a plan well under MAX_PLAN_PLAINTEXT. */
export const MAX_PLAN_CANDIDATES = 400_000;

export function newPlanId(): string {
  return randomBytes(32).toString('hex');
}

export function encodeGcPlan(p: GcPlan): Uint8Array {
  return encodeCbor({
    created: [p.created.sec, p.created.nsec],
    hostname: p.hostname,
    candidates: { trees: p.trees.map((id) => idToBytes(id)), chunks: p.chunks.map((id) => idToBytes(id)) },
  });
}

/** Reader rules: CORRUPT unless every field has its type and each candidate list is strictly ascending. */
export function decodeGcPlan(v: unknown, what: string): GcPlan {
  const m = asMap(v, what);
  const c = asMap(m.candidates, `${what} candidates`);
  const ids = (x: unknown, field: string): string[] => {
    const out = asArray(x, `${what} ${field}`).map((b) => {
      const bytes = asBytes(b, `${what} ${field}`);
      if (bytes.length !== 32) fail(what, `${field}: an id is not 32 bytes`);
      return idFromBytes(bytes);
    });
    for (let i = 1; i < out.length; i++) if (!(out[i - 1]! < out[i]!)) fail(what, `${field} are not sorted ascending without duplicates`);
    return out;
  };
  return { created: asTimestamp(m.created, `${what} created`), hostname: asText(m.hostname, `${what} hostname`), trees: ids(c.trees, 'trees'), chunks: ids(c.chunks, 'chunks') };
}
