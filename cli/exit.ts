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

/** Every exit status above and what it means to a user: obnam(1)'s EXIT STATUS is made from this list (packaging/build-deb.ts). */
export const EXIT_STATUSES: readonly { code: number; meaning: string }[] = [
  { code: EXIT_OK, meaning: 'success' },
  { code: EXIT_ERROR, meaning: 'an error (one line on stderr); fsck also exits 1 when it finds damage' },
  { code: EXIT_PARTIAL, meaning: 'the backup finished, but some files could not be read (each is named on stderr)' },
  { code: EXIT_INTERRUPTED, meaning: 'interrupted by SIGINT or SIGTERM (an interrupted backup writes no snapshot)' },
  { code: EXIT_CLOSED_OUTPUT, meaning: 'the reader of standard output went away before the end (as in obnam ls latest | head)' },
];

export function exitCodeFor(e: unknown): number {
  if (e instanceof ObnamError && e.code === 'ABORTED') return EXIT_INTERRUPTED;
  return EXIT_ERROR;
}

export function reportError(e: unknown): void {
  const msg = e instanceof ObnamError ? e.message : `internal error: ${describeError(e)}`;
  process.stderr.write(`obnam: ${msg}\n`);
  if (process.env.OBNAM_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
}
