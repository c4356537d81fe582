/**
 * The server's TLS credentials: a self-signed certificate made at init
 * (with openssl, which every system that runs a TLS server has), checks of
 * certificates given instead, and the SHA-256 fingerprint clients pin, in
 * the form `openssl x509 -fingerprint -sha256` prints.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import { ObnamError } from '../lib/errors.js';

const run = promisify(execFile);

/** Makes a self-signed ECDSA P-256 certificate valid for `names` (host names or IP addresses) for ten years. */
export async function generateSelfSigned(certFile: string, keyFile: string, names: string[]): Promise<void> {
  const all = [...new Set(['localhost', '127.0.0.1', '::1', os.hostname(), ...names].filter(Boolean))];
  const san = all.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  try {
    await run(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyFile, '-out', certFile, '-days', '3650', '-subj', '/CN=obnam-server',
        '-addext', `subjectAltName=${san}`,
      ],
      { timeout: 60_000 },
    );
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim().split('\n').pop() || (e as Error).message;
    throw new ObnamError('IO', `cannot make a TLS certificate with openssl (${msg}); install openssl or give --cert and --key`);
  }
  await fs.chmod(keyFile, 0o600);
}

/** Reads and checks a certificate and its key; returns the certificate. */
export async function loadCertificate(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer; x509: X509Certificate }> {
  let cert: Buffer;
  let key: Buffer;
  try {
    [cert, key] = await Promise.all([fs.readFile(certFile), fs.readFile(keyFile)]);
  } catch (e) {
    throw new ObnamError('USAGE', `cannot read the TLS certificate or key: ${(e as Error).message}`);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new ObnamError('USAGE', `${certFile} is not a PEM certificate: ${(e as Error).message}`);
  }
  let matches = false;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (e) {
    throw new ObnamError('USAGE', `${keyFile} is not a PEM private key: ${(e as Error).message}`);
  }
  if (!matches) throw new ObnamError('USAGE', `the key ${keyFile} does not belong to the certificate ${certFile}`);
  return { cert, key, x509 };
}

/** "AB:CD:...": the certificate's SHA-256 fingerprint, as openssl prints it. */
export function fingerprintOf(x509: X509Certificate): string {
  return x509.fingerprint256;
}
