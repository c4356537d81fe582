/**
 * npm run apt-repo DIR [-- --deb FILE] [--key KEYID]: a signed APT repository
 * in DIR (made with apt-ftparchive) holding obnam_VERSION_amd64.deb (FILE,
 * else built now) and every .deb already in its pool:
 *
 *   DIR/pool/main/o/obnam/obnam_VERSION_amd64.deb
 *   DIR/dists/stable/{InRelease,Release,Release.gpg}
 *   DIR/dists/stable/main/binary-amd64/Packages{,.gz}
 *   DIR/obnam-archive-keyring.gpg   the public key, for signed-by=
 *
 * Signed with KEYID from the caller's gpg keyring (GNUPGHOME), or without
 * --key with a new throwaway key (gpg in batch mode, in a temporary home that
 * is deleted afterwards: such a repository cannot be signed again, which is
 * what tests want). apt-get accepts it as
 *
 *   deb [signed-by=DIR/obnam-archive-keyring.gpg] file:DIR stable main
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDeb } from './build-deb.js';
import { run } from './run.js';

export const SUITE = 'stable';
export const COMPONENT = 'main';
export const KEYRING = 'obnam-archive-keyring.gpg';

export interface AptRepoOptions {
  dir: string;
  /** The package to add; built if not given. */
  deb?: string;
  /** A key in the caller's gpg keyring; a throwaway key if not given. */
  key?: string;
}

/** The sources.list line for a repository in `dir`. */
export function sourcesLine(dir: string): string {
  return `deb [signed-by=${path.join(dir, KEYRING)}] file:${dir} ${SUITE} ${COMPONENT}`;
}

/** A new signing key in a new gpg home; returns the home and the key's fingerprint. */
export function throwawayKey(): { home: string; key: string } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-gpg-'));
  fs.chmodSync(home, 0o700);
  run('gpg', ['--homedir', home, '--batch', '--passphrase', '', '--quick-generate-key', 'obnam test archive key (throwaway) <obnam-test@invalid>', 'ed25519', 'sign', '1y']);
  const listing = run('gpg', ['--homedir', home, '--batch', '--with-colons', '--list-secret-keys']);
  const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(listing);
  if (!fpr) throw new Error('gpg made no key');
  return { home, key: fpr[1]! };
}

/** Stops the gpg-agent a gpg home started (so nothing is left running). */
export function stopAgent(home: string): void {
  try {
    run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
  } catch {
    // no agent was running
  }
}

export function buildAptRepo(o: AptRepoOptions): { dir: string; line: string } {
  const dir = path.resolve(o.dir);
  const pool = path.join(dir, 'pool', COMPONENT, 'o', 'obnam');
  fs.mkdirSync(pool, { recursive: true });
  if (o.deb) fs.copyFileSync(o.deb, path.join(pool, path.basename(o.deb)));
  else buildDeb(pool);

  const dist = path.join(dir, 'dists', SUITE);
  const bin = path.join(dist, COMPONENT, 'binary-amd64');
  fs.mkdirSync(bin, { recursive: true });
  const packages = run('apt-ftparchive', ['packages', 'pool'], { cwd: dir });
  fs.writeFileSync(path.join(bin, 'Packages'), packages);
  run('sh', ['-c', 'gzip -9nc Packages > Packages.gz'], { cwd: bin });
  for (const f of ['Release', 'InRelease', 'Release.gpg']) fs.rmSync(path.join(dist, f), { force: true });
  const conf = (k: string, v: string) => ['-o', `APT::FTPArchive::Release::${k}=${v}`];
  const release = run(
    'apt-ftparchive',
    [...conf('Origin', 'obnam'), ...conf('Label', 'obnam'), ...conf('Suite', SUITE), ...conf('Codename', SUITE), ...conf('Architectures', 'amd64'), ...conf('Components', COMPONENT), ...conf('Description', 'obnam backup'), 'release', '.'],
    { cwd: dist },
  );
  fs.writeFileSync(path.join(dist, 'Release'), release);

  const temp = o.key ? undefined : throwawayKey();
  const key = o.key ?? temp!.key;
  const gpg = (args: string[]) => run('gpg', [...(temp ? ['--homedir', temp.home] : []), '--batch', '--yes', ...args]);
  try {
    gpg(['--local-user', key, '--clearsign', '--output', path.join(dist, 'InRelease'), path.join(dist, 'Release')]);
    gpg(['--local-user', key, '--armor', '--detach-sign', '--output', path.join(dist, 'Release.gpg'), path.join(dist, 'Release')]);
    gpg(['--export', '--output', path.join(dir, KEYRING), key]);
  } finally {
    if (temp) {
      stopAgent(temp.home);
      fs.rmSync(temp.home, { recursive: true, force: true });
    }
  }
  if (!fs.statSync(path.join(dir, KEYRING)).size) throw new Error(`gpg exported no public key for ${key}`);
  return { dir, line: sourcesLine(dir) };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (!v) throw new Error(`${name} needs a value`);
    argv.splice(i, 2);
    return v;
  };
  try {
    const deb = opt('--deb');
    const key = opt('--key');
    if (argv.length !== 1 || argv[0]!.startsWith('-')) throw new Error('usage: npm run apt-repo DIR [-- --deb FILE] [--key KEYID]');
    const r = buildAptRepo({ dir: argv[0]!, ...(deb ? { deb: path.resolve(deb) } : {}), ...(key ? { key } : {}) });
    process.stdout.write(`APT repository in ${r.dir}${key ? '' : ' (signed with a throwaway key)'}; its source line:\n${r.line}\n`);
  } catch (e) {
    process.stderr.write(`npm run apt-repo: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
