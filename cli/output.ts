/**
 * Streaming a command's output to stdout: writes wait while the pipe is
 * full, so memory stays bounded however much is written. A reader that went
 * away (EPIPE, e.g. `| head`) ends the process quietly with status 141
 * (cli/closed-output.ts); where that handler is not installed, write()
 * throws StdoutClosed, which quietOnClosedStdout() turns into the same status.
 */
import { once } from 'node:events';
import { ObnamError } from '../lib/errors.js';
import { EXIT_CLOSED_OUTPUT } from './exit.js';

export class StdoutClosed extends Error {
  constructor() {
    super('stdout was closed');
    this.name = 'StdoutClosed';
  }
}

export interface Output {
  /** Resolves once the data is accepted; StdoutClosed if nobody reads stdout any more. */
  write(data: string | Uint8Array): Promise<void>;
  /** Resolves once everything written has been handed to the operating system. */
  flush(): Promise<void>;
}

let closed = false;
let failure: Error | undefined;
let listening = false;

/** The process's stdout as an Output. */
export function stdoutOutput(stream: NodeJS.WriteStream = process.stdout): Output {
  if (!listening) {
    listening = true;
    // Kept for the life of the process: a late EPIPE must not crash it either.
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') closed = true;
      else failure ??= e;
    });
  }
  const waitDrain = async () => {
    const ac = new AbortController();
    try {
      await Promise.race([once(stream, 'drain', { signal: ac.signal }), once(stream, 'close', { signal: ac.signal })]);
    } finally {
      ac.abort();
    }
  };
  const check = () => {
    if (closed || stream.destroyed) throw new StdoutClosed();
    if (failure) throw new ObnamError('IO', `cannot write to stdout: ${failure.message}`);
  };
  return {
    async write(data) {
      check();
      if (!stream.write(data)) await waitDrain().catch(() => undefined);
      check();
    },
    async flush() {
      if (closed || stream.destroyed) return;
      await new Promise<void>((resolve) => stream.write('', () => resolve()));
    },
  };
}

/** Bytes a buffered output gathers before it writes them: one write (a system call on a pipe) per this many, not per line. */
export const OUTPUT_BUFFER_BYTES = 64 * 1024;

/**
 * An Output that gathers small writes (lines) and hands them to `inner` in
 * pieces of about OUTPUT_BUFFER_BYTES; flush() writes the rest. Everything a
 * command writes must then go through it, or the order mixes.
 */
export function bufferedOutput(inner: Output, limit = OUTPUT_BUFFER_BYTES): Output {
  let parts: (string | Uint8Array)[] = [];
  let bytes = 0;
  const drain = async () => {
    const batch = parts;
    parts = [];
    bytes = 0;
    if (batch.length) await inner.write(batch.every((p) => typeof p === 'string') ? batch.join('') : Buffer.concat(batch.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
  };
  return {
    async write(data) {
      parts.push(data);
      bytes += data.length; // characters for strings: a close enough measure for when to write
      if (bytes >= limit) await drain();
    },
    async flush() {
      await drain();
      await inner.flush();
    },
  };
}

/** Runs a command body that writes to stdout; a closed stdout ends it with status 141 and no message. */
export async function quietOnClosedStdout(body: () => Promise<number>, code = EXIT_CLOSED_OUTPUT): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof StdoutClosed) return code;
    throw e;
  }
}
