/**
 * Creates a server directory (see layout.ts): TLS credentials (a new
 * self-signed certificate, or the files given), the config file, the storage
 * directory. Refuses a directory that is not empty.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errnoCode, ObnamError } from '../lib/errors.js';
import { defaultConfigText } from './config.js';
import { ServerDir, serverDir } from './layout.js';
import { fingerprintOf, generateSelfSigned, loadCertificate } from './tls.js';
import { StorageConfig, storageConfigText } from './storage-config.js';

export interface InitOptions {
  /** Use this certificate and key instead of making a self-signed pair. */
  cert?: string;
  key?: string;
  /** Extra host names or IP addresses for the self-signed certificate. */
  hostnames?: string[];
  /** Where namespaces are kept (default: local, DIR/data). */
  storage?: StorageConfig;
}

/** Initialises DIR; returns its layout and the certificate's SHA-256 fingerprint (AB:CD:...). */
export async function initServerDir(dir: string, opts: InitOptions = {}): Promise<{ dir: ServerDir; fingerprint: string }> {
  const d = serverDir(dir);
  if (!!opts.cert !== !!opts.key) throw new ObnamError('USAGE', '--cert and --key go together');
  await fs.mkdir(d.dir, { recursive: true, mode: 0o700 });
  const existing = await fs.readdir(d.dir);
  if (existing.includes(path.basename(d.configFile))) throw new ObnamError('REPOSITORY_EXISTS', `${d.dir} is already an obnam-server directory`);
  if (existing.length) throw new ObnamError('USAGE', `${d.dir} is not empty; choose a new or empty directory`);

  let cert: string;
  let key: string;
  if (opts.cert && opts.key) {
    cert = path.resolve(opts.cert);
    key = path.resolve(opts.key);
  } else {
    await fs.mkdir(d.tlsDir, { mode: 0o700 });
    cert = path.join(d.tlsDir, 'cert.pem');
    key = path.join(d.tlsDir, 'key.pem');
    await generateSelfSigned(cert, key, opts.hostnames ?? []);
  }
  const { x509 } = await loadCertificate(cert, key);
  await fs.mkdir(d.dataDir, { mode: 0o700 });
  const rel = (p: string) => (p.startsWith(d.dir + path.sep) ? path.relative(d.dir, p) : p);
  try {
    await fs.writeFile(d.configFile, defaultConfigText(rel(cert), rel(key)) + storageConfigText(opts.storage ?? { type: 'local' }), { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') throw new ObnamError('REPOSITORY_EXISTS', `${d.dir} is already an obnam-server directory`);
    throw e;
  }
  return { dir: d, fingerprint: fingerprintOf(x509) };
}
