/**
 * The client's one edge between HTTP and ObnamError codes: what a response
 * status or a transport failure means, and whether trying again may help.
 * (server/errors.ts is the mirror image on the server.)
 */
import { errnoCode, ErrorCode, ObnamError } from '../errors.js';

/**
 * Statuses worth retrying: the server is overloaded, restarting or had a
 * passing failure, or cut off a request that reached it too slowly (408).
 */
export function isTransientStatus(status: number): boolean {
  // 507: the server's storage is full; retrying at once does not free space.
  return status === 408 || status === 429 || (status >= 500 && status !== 507);
}

const STATUS_CODES: Record<number, ErrorCode> = {
  401: 'UNAUTHORIZED',
  403: 'PERMISSION',
  404: 'NOT_FOUND',
  408: 'NETWORK',
  409: 'CONFLICT',
  413: 'TOO_LARGE',
  422: 'CORRUPT',
  429: 'NETWORK',
  502: 'NETWORK',
  503: 'NETWORK',
  504: 'NETWORK',
  507: 'NO_SPACE',
};

/** The error for a response that is not one of the statuses the caller expects. */
export function errorFromResponse(status: number, body: Buffer, location: string, what: string): ObnamError {
  let message = '';
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === 'string') message = parsed.error.message.slice(0, 500);
  } catch {
    message = '';
  }
  const code = STATUS_CODES[status] ?? 'INTERNAL';
  if (code === 'UNAUTHORIZED') {
    return new ObnamError(code, `${location} refused the access token (check --token, --token-file, OBNAM_TOKEN, OBNAM_TOKEN_FILE, or token or token_file in the config)`);
  }
  if (code === 'PERMISSION') return new ObnamError(code, `${location} does not allow this client to ${what}${message ? `: ${message}` : ''}`);
  if (code === 'NOT_FOUND' && message) return new ObnamError(code, message);
  if (code === 'NO_SPACE') return new ObnamError(code, `${location} has no storage space left (HTTP 507): cannot ${what}; free space on the server and run again`);
  return new ObnamError(code, `${location}: cannot ${what}: ${message || `HTTP status ${status}`}`);
}

/** Transport failures that a retry may cure. */
const TRANSIENT_ERRNOS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export interface TransportFailure {
  error: ObnamError;
  retry: boolean;
}

/** Classifies an error thrown while talking to the server. */
export function errorFromTransport(e: unknown, location: string): TransportFailure {
  if (e instanceof ObnamError) return { error: e, retry: e.code === 'NETWORK' };
  const code = errnoCode(e) ?? '';
  const msg = e instanceof Error ? e.message : String(e);
  if (code === 'ABORT_ERR' || (e instanceof Error && e.name === 'AbortError')) {
    return { error: new ObnamError('ABORTED', 'operation was cancelled'), retry: false };
  }
  const transient = TRANSIENT_ERRNOS.has(code) || msg === 'socket hang up';
  if (!transient && (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|^ERR_TLS_|^ERR_SSL_|HOSTNAME/.test(code) || (!code && /certificate/i.test(msg)))) {
    return {
      error: new ObnamError(
        'TLS',
        `cannot establish a trusted TLS connection to ${location}: ${msg} ` +
          "(give the server's certificate fingerprint with --server-fingerprint, or its CA with --ca-file)",
        { cause: e },
      ),
      retry: false,
    };
  }
  return {
    error: new ObnamError('NETWORK', `cannot reach ${location}: ${msg}${code && !msg.includes(code) ? ` (${code})` : ''}`, { cause: e }),
    retry: transient,
  };
}
