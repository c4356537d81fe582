/**
 * Minimum body rate: a request body that, once the server reads it, brings
 * fewer than `minBytesPerSecond` bytes on average over the last
 * `windowSeconds` (checked once a second, from the end of the first window
 * on) is cut off. The stream returned by watchBodyRate() passes the body
 * through and fails with an error carrying status 408; the request's slot is
 * then freed and the connection closed (app.ts). Time a request waits for a
 * slot, with its body unread, does not count.
 */
import { Readable, Transform } from 'node:stream';

export interface BodyRate {
  minBytesPerSecond: number;
  windowSeconds: number;
}

export interface WatchedBody {
  stream: Transform;
  /** Stops watching (the request is over, whatever became of its body). */
  stop: () => void;
}

/** The error a too-slow body fails with (Fastify answers with its statusCode). */
export class SlowBodyError extends Error {
  readonly statusCode = 408;
}

export function watchBodyRate(source: Readable, rate: BodyRate): WatchedBody {
  const window = Math.max(1, Math.round(rate.windowSeconds));
  const needed = rate.minBytesPerSecond * window;
  // marks[k % (window + 1)]: bytes received by the k-th second.
  const marks = new Array<number>(window + 1).fill(0);
  let got = 0;
  let second = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      got += chunk.length;
      cb(null, chunk);
    },
  });
  // Errors reach the body parser through its own listener; this one keeps a
  // late failure (after the parser has let go) from being unhandled.
  stream.on('error', () => undefined);
  const timer = setInterval(() => {
    second++;
    marks[second % (window + 1)] = got;
    if (second < window) return;
    const inWindow = got - marks[(second - window) % (window + 1)]!;
    if (inWindow >= needed) return;
    stop();
    source.unpipe(stream);
    source.pause();
    stream.destroy(
      new SlowBodyError(
        `the request body arrived at ${(inWindow / window).toFixed(1)} bytes/s over the last ${window} s, ` +
          `below the server's minimum of ${rate.minBytesPerSecond} bytes/s: cut off`,
      ),
    );
  }, 1000).unref();
  const stop = () => clearInterval(timer);
  stream.once('end', stop);
  stream.once('close', stop);
  source.pipe(stream);
  return { stream, stop };
}
