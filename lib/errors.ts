/**
 * Typed errors with a stable `code`.
 *
 * Every failure that can reach a user is an ObnamError. Edges (CLI exit codes,
 * HTTP status codes, FUSE errnos) convert them in exactly one place each, by
 * looking at `code`, never at the message text.
 */

export type ErrorCode =
  | 'USAGE' // bad command line or configuration
  | 'NO_REPOSITORY' // nothing initialised at the given location
  | 'REPOSITORY_EXISTS' // init on an existing repository
  | 'BAD_PASSPHRASE' // no key slot (or identity file) opens with this passphrase
  | 'NO_IDENTITY' // no identity file where one is looked for
  | 'IDENTITY_EXISTS' // identity new where an identity already exists
  | 'NOT_A_MEMBER' // the identity has no member object in this shared repository
  | 'NOT_SHARED' // a snapshot of a shared repository that no stanza or share opens for this identity
  | 'UNSUPPORTED_VERSION' // format version this code does not read
  | 'NOT_FOUND' // an object or snapshot that is not there
  | 'AMBIGUOUS' // a snapshot id prefix that matches several snapshots
  | 'CORRUPT' // an object that fails authentication, its id or its structure
  | 'IO' // a local file system failure
  | 'NO_SPACE' // the storage is full (server: 507 Insufficient Storage)
  | 'PERMISSION' // refused by the server or the file system
  | 'UNAUTHORIZED' // bad or missing credentials
  | 'CONFLICT' // an object that may not be overwritten
  | 'TOO_LARGE' // a request or object above a configured limit
  | 'RATE_LIMITED' // too many attempts in too short a time (HTTP 429)
  | 'NETWORK' // a transport failure talking to a server
  | 'TLS' // a server certificate that does not match
  | 'ABORTED' // cancelled through an AbortSignal
  | 'HOSTILE_PATH' // a path in a tree that would escape the restore target
  | 'REFUSED' // a destructive request refused for safety (e.g. a forget policy that keeps nothing)
  | 'NOT_IMPLEMENTED' // a documented feature that does not exist yet
  | 'KDF_LIMIT' // a key slot asks for more scrypt memory or work than readers allow
  | 'GC_CONFLICT' // a backup that overlapped a garbage collection and must not write its snapshot (format-spec 14.6)
  | 'GC_DAMAGED' // a collection stopped: a snapshot or tree it must read is missing or damaged (14.4 M2)
  | 'INTERNAL';

export class ObnamError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ObnamError';
    this.code = code;
  }
}

/** Narrows an unknown thrown value to a Node system error with an errno code. */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

/** A short, single-line description of any thrown value, for logs and reports. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? String(e);
  return String(e);
}

/** Throws ABORTED if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ObnamError('ABORTED', 'operation was cancelled');
}
