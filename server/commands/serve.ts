/**
 * obnam-server serve [--listen HOST:PORT] [--insecure-http]: runs the server
 * until SIGTERM or SIGINT, then stops accepting connections, lets requests in
 * progress finish (acknowledged writes are already durable) and exits 0. A
 * second signal, or requests still running after 30 s, end it at once.
 */
import { resolveServerDir } from '../layout.js';
import { startServer } from '../start.js';

export interface ServeArgs {
  dir?: string;
  config?: string;
  listen?: string;
  'insecure-http'?: boolean;
}

const SHUTDOWN_GRACE_MS = 30_000;

export async function serveCommand(args: ServeArgs): Promise<number> {
  const d = resolveServerDir(args);
  const server = await startServer({
    dir: d.dir,
    configFile: d.configFile,
    listen: args.listen,
    insecureHttp: !!args['insecure-http'],
  });
  if (server.fingerprint) server.app.log.info({ fingerprint: server.fingerprint }, 'certificate SHA-256 fingerprint');
  process.stderr.write(
    `obnam-server: listening on ${server.url}` + (server.fingerprint ? ` (certificate SHA-256 fingerprint ${server.fingerprint})` : ' (plain HTTP)') + '\n',
  );
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`obnam-server: ${sig} again: exiting at once\n`);
        process.exit(1);
      }
      stopping = true;
      server.app.log.info({ signal: sig }, 'shutting down: finishing requests in progress');
      const force = setTimeout(() => {
        server.app.log.warn('requests still running after the grace period: closing their connections');
        server.app.server.closeAllConnections();
      }, SHUTDOWN_GRACE_MS);
      force.unref();
      server.close().then(
        () => {
          const peaks = server.peaks();
          server.app.log.info({ peakConcurrentRequests: peaks.requests, peakConcurrentClients: peaks.clients }, 'stopped');
          process.stderr.write('obnam-server: stopped\n');
          resolve(0);
        },
        (e: unknown) => {
          process.stderr.write(`obnam-server: error while stopping: ${(e as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
