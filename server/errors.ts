/**
 * The server's one edge between ObnamError codes and HTTP: every error reply
 * goes through httpError(), which picks the status from the code and the
 * body {"error": {"code", "message"}}. Server-side failures (5xx) get a
 * generic message; the details go to the log, not to the client.
 * (lib/store/http-errors.ts maps statuses back to codes on the client.)
 */
import { ErrorCode, ObnamError } from '../lib/errors.js';
import type { ErrorBody } from '../lib/store/http-wire.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  USAGE: 400,
  UNAUTHORIZED: 401,
  PERMISSION: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_LARGE: 413,
  CORRUPT: 422,
  RATE_LIMITED: 429,
  // The storage is full: nothing of the request was stored; the client stops instead of retrying.
  NO_SPACE: 507,
  // The server is at its request limit or shutting down: try again later.
  NETWORK: 503,
};

/** Status codes Fastify and Node produce themselves, mapped to our codes. */
function codeForStatus(status: number): ErrorCode {
  if (status === 413) return 'TOO_LARGE';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 503) return 'NETWORK';
  if (status >= 400 && status < 500) return 'USAGE';
  return 'INTERNAL';
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  /** For the log: the full message (also for 5xx). */
  detail: string;
}

export function httpError(e: unknown): HttpError {
  let code: ErrorCode;
  let message: string;
  let status: number;
  if (e instanceof ObnamError) {
    code = e.code;
    message = e.message;
    status = STATUS[code] ?? 500;
  } else {
    // Fastify's own errors (body too large, wrong content type, bad JSON) carry their status.
    const given = (e as { statusCode?: unknown })?.statusCode;
    status = typeof given === 'number' && given >= 400 && given < 600 ? given : 500;
    code = codeForStatus(status);
    message = e instanceof Error ? e.message : String(e);
  }
  const plain = code === 'NETWORK' || code === 'NO_SPACE';
  const shown = status >= 500 && !plain ? 'internal server error (see the server log)' : plain && status === 507 ? 'the server has no storage space left' : message;
  return { status, body: { error: { code: status >= 500 && !plain ? 'INTERNAL' : code, message: shown } }, detail: message };
}
