/**
 * A reader that stops early (`obnam ls latest | head -1`) closes our stdout:
 * the next write fails with EPIPE. coreutils and restic die of SIGPIPE there,
 * silently, and a shell reports status 141; Node ignores SIGPIPE, so this
 * ends the process the same way by hand: no message, exit status 141.
 * Stopping mid-command is safe: every repository write is atomic, and a
 * snapshot is written only once everything it references is durable.
 */
import { describeError } from '../lib/errors.js';
import { EXIT_CLOSED_OUTPUT, EXIT_ERROR } from './exit.js';

let installed = false;

/**
 * Makes a closed stdout or stderr end the process quietly with status 141;
 * any other failure to write them (a full disk behind `> file`) ends it with
 * one line on stderr and status 1, never a stack trace.
 */
export function exitQuietlyOnClosedOutput(): void {
  if (installed) return;
  installed = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') process.exit(EXIT_CLOSED_OUTPUT);
      if (stream === process.stdout) {
        try {
          process.stderr.write(`obnam: cannot write to stdout: ${describeError(e)}\n`);
        } catch {
          // stderr is gone too: the exit status says it.
        }
      }
      process.exit(EXIT_ERROR);
    });
  }
}
