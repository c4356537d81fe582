/**
 * The server directory: where obnam-server keeps its configuration, TLS
 * credentials, client list and object storage.
 *
 *   DIR/obnam-server.yaml   configuration (server/config.ts)
 *   DIR/tls/cert.pem        certificate and key made by init (unless given)
 *   DIR/tls/key.pem
 *   DIR/clients.json        clients and the SHA-256 of their tokens (server/clients.ts)
 *   DIR/data/NAMESPACE/     one LocalStore per client (a random name, so a
 *                           client added later under a removed client's name
 *                           never sees the old data)
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ObnamError } from '../lib/errors.js';

export const CONFIG_FILE = 'obnam-server.yaml';

export interface ServerDir {
  dir: string;
  configFile: string;
  clientsFile: string;
  dataDir: string;
  tlsDir: string;
}

export function serverDir(dir: string, configFile?: string): ServerDir {
  const abs = path.resolve(dir);
  return {
    dir: abs,
    configFile: configFile ? path.resolve(configFile) : path.join(abs, CONFIG_FILE),
    clientsFile: path.join(abs, 'clients.json'),
    dataDir: path.join(abs, 'data'),
    tlsDir: path.join(abs, 'tls'),
  };
}

/** The directory of a client's namespace. */
export function namespaceDir(d: ServerDir, c: { namespace: string }): string {
  return path.join(d.dataDir, c.namespace);
}

/**
 * The server directory for a command: --dir, else the directory of --config,
 * else $OBNAM_SERVER_DIR, else the current directory.
 */
export function resolveServerDir(opts: { dir?: string; config?: string }): ServerDir {
  const dir = opts.dir ?? (opts.config ? path.dirname(opts.config) : undefined) ?? process.env.OBNAM_SERVER_DIR ?? process.cwd();
  return serverDir(dir, opts.config);
}

/** USAGE unless `d` has been set up by obnam-server init. */
export async function checkServerDir(d: ServerDir): Promise<void> {
  try {
    await fs.access(d.configFile);
  } catch {
    throw new ObnamError(
      'NO_REPOSITORY',
      `${d.dir} is not an obnam-server directory (no ${path.basename(d.configFile)}); run obnam-server init ${d.dir} or give --dir`,
    );
  }
}
