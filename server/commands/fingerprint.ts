/** obnam-server fingerprint: prints the certificate's SHA-256 fingerprint alone (AB:CD:...). */
import { loadServerConfig } from '../config.js';
import { checkServerDir, resolveServerDir } from '../layout.js';
import { fingerprintOf, loadCertificate } from '../tls.js';

export async function fingerprintCommand(args: { dir?: string; config?: string }): Promise<number> {
  const d = resolveServerDir(args);
  await checkServerDir(d);
  const config = await loadServerConfig(d);
  const { x509 } = await loadCertificate(config.tls.cert, config.tls.key);
  process.stdout.write(`${fingerprintOf(x509)}\n`);
  return 0;
}
