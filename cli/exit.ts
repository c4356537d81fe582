/**
 * The CLI's one edge for errors: maps an error's code to an exit status and
 * prints one clear line (no stack trace unless OBNAM_DEBUG is set).
 */
import { describeError, ObnamError } from '../lib/errors.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
/** The backup finished, but some files could not be read. */
export const EXIT_PARTIAL = 3;
/** Interrupted by SIGINT/SIGTERM (128 + signal number, as shells report it). */
export const EXIT_INTERRUPTED = 130;
/** The reader of stdout went away (128 + SIGPIPE, as a shell reports coreutils in that case). */
export const EXIT_CLOSED_OUTPUT = 141;

export function exitCodeFor(e: unknown): number {
  if (e instanceof ObnamError && e.code === 'ABORTED') return EXIT_INTERRUPTED;
  return EXIT_ERROR;
}

export function reportError(e: unknown): void {
  const msg = e instanceof ObnamError ? e.message : `internal error: ${describeError(e)}`;
  process.stderr.write(`obnam: ${msg}\n`);
  if (process.env.OBNAM_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
}
