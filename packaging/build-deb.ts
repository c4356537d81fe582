/**
 * npm run deb [-- --out DIR]: builds obnam_VERSION_amd64.deb from this
 * checkout (after `npm ci`, which builds the native parts, and `tsc`).
 * VERSION is package.json's; packaging/deb/changelog must start with it.
 *
 * The package brings its own Node.js (the one running this script, which
 * built the native addons) under /usr/lib/obnam: Debian 12 ships Node 18 and
 * obnam needs 20, and the addons then always run on the runtime they were
 * built and tested with (see packaging/README.md). The man pages and bash
 * completion are made by running the staged programs (packaging/manpage.ts),
 * so they describe exactly the commands in the package.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT_STATUSES } from '../cli/exit.js';
import { defaultConfigText } from '../server/config.js';
import { dep5Problems, makeCopyright } from './copyright.js';
import { collectHelp, HelpRunner, ManSection, renderManPage, roffEscape } from './manpage.js';
import { run } from './run.js';
import { APP_DIR, findFiles, launcherScript, stageApp } from './stage.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PKG = path.join(ROOT, 'packaging');

/** The state and config locations of obnam-server.service (packaging/systemd). */
const SERVER_STATE = '/var/lib/obnam-server';
const SERVER_CONFIG = '/etc/obnam-server/obnam-server.yaml';

interface ChangelogTop {
  version: string;
  /** RFC 2822 date of the entry. */
  date: string;
}

function changelogTop(text: string): ChangelogTop {
  const v = /^obnam \(([^)]+)\)/.exec(text);
  const d = /^ -- .+? <[^>]+> {2}(.+)$/m.exec(text);
  if (!v || !d) throw new Error('packaging/deb/changelog: cannot read its first entry');
  return { version: v[1]!, date: d[1]! };
}

function write(file: string, text: string | Buffer, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode });
  fs.chmodSync(file, mode);
}

function gzip(file: string): void {
  run('gzip', ['-9n', file]);
}

export const OBNAM_EXTRA: ManSection[] = [
  { title: 'EXIT STATUS', body: EXIT_STATUSES.map((e) => `.TP\n${e.code}\n${roffEscape(e.meaning)}`).join('\n') },
  {
    title: 'FILES',
    body:
      '.TP\n\\fI~/.config/obnam/config.yaml\\fR\nthe configuration file (or \\fI$XDG_CONFIG_HOME/obnam/config.yaml\\fR, \\fB$OBNAM_CONFIG\\fR, \\fB\\-\\-config\\fR)\n' +
      '.TP\n\\fI~/.local/share/obnam/repo\\fR\nthe default repository\n' +
      '.TP\n\\fI/etc/obnam/config.yaml\\fR\nthe configuration of the system backup, obnam\\-backup.service\n' +
      '.TP\n\\fI/usr/lib/systemd/system/obnam\\-backup.timer\\fR, \\fI/usr/lib/systemd/user/obnam\\-backup.timer\\fR\ndaily backups: \\fBsystemctl enable \\-\\-now obnam\\-backup.timer\\fR (or \\fBsystemctl \\-\\-user ...\\fR)',
  },
  { title: 'SEE ALSO', body: '\\fBobnam\\-server\\fR(8), \\fI/usr/share/doc/obnam/README.md\\fR, \\fI/usr/share/doc/obnam/format\\-spec/\\fR' },
];

export const SERVER_EXTRA: ManSection[] = [
  { title: 'EXIT STATUS', body: '.TP\n0\nsuccess (serve: stopped by SIGTERM or SIGINT)\n.TP\n1\nan error (one line on stderr); scrub also exits 1 when an object is damaged, repack when a namespace could not be repacked' },
  {
    title: 'FILES',
    body:
      `.TP\n\\fI${SERVER_CONFIG.replace(/-/g, '\\-')}\\fR\nthe configuration of obnam\\-server.service\n` +
      `.TP\n\\fI${SERVER_STATE.replace(/-/g, '\\-')}\\fR\nits server directory: TLS key and certificate, clients, backup data (made on the first start; kept when the package is purged)\n` +
      '.TP\n\\fI/usr/lib/systemd/system/obnam\\-server.service\\fR\nthe service: \\fBsystemctl enable \\-\\-now obnam\\-server\\fR; add clients with \\fBrunuser \\-u obnam\\-server \\-\\- obnam\\-server client add\\fR \\fINAME\\fR \\fB\\-\\-dir /var/lib/obnam\\-server\\fR',
  },
  { title: 'SEE ALSO', body: '\\fBobnam\\fR(1), \\fI/usr/share/doc/obnam/format\\-spec/server\\-api.md\\fR' },
];

/** The runtime dependencies of the ELF files, as dpkg-shlibdeps computes them. */
function shlibDepends(elves: string[]): string {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-shlibs-'));
  try {
    write(path.join(tmp, 'debian', 'control'), 'Source: obnam\n\nPackage: obnam\nArchitecture: amd64\n');
    const out = run('dpkg-shlibdeps', ['-O', '--ignore-missing-info', ...elves.map((e) => `-e${e}`)], { cwd: tmp });
    const m = /^shlibs:Depends=(.*)$/m.exec(out);
    if (!m) throw new Error(`dpkg-shlibdeps printed no dependencies: ${out}`);
    return m[1]!;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Sizes in KiB as dpkg counts them: each file rounded up, each directory and link one. */
function installedSize(tree: string): number {
  let kib = 0;
  for (const d of fs.readdirSync(tree, { withFileTypes: true, recursive: true })) {
    if (d.parentPath.startsWith(path.join(tree, 'DEBIAN'))) continue;
    kib += d.isFile() ? Math.ceil(fs.statSync(path.join(d.parentPath, d.name)).size / 1024) : 1;
  }
  return kib;
}

export function buildDeb(outDir: string): { deb: string; seconds: number } {
  const started = process.hrtime.bigint();
  const pkgJson = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const version = pkgJson.version;
  const changelog = fs.readFileSync(path.join(PKG, 'deb', 'changelog'), 'utf8');
  const top = changelogTop(changelog);
  if (top.version !== version) throw new Error(`packaging/deb/changelog starts with ${top.version}, package.json says ${version}: add an entry`);
  const epoch = Math.floor(Date.parse(top.date) / 1000);
  const day = new Date(epoch * 1000).toISOString().slice(0, 10);

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-deb-'));
  const tree = path.join(work, 'root');
  try {
    const app = path.join(tree, APP_DIR);
    const { packages } = stageApp(ROOT, app, version);
    fs.mkdirSync(path.join(tree, 'usr/bin'), { recursive: true });
    for (const prog of ['obnam', 'obnam-server']) write(path.join(tree, 'usr/bin', prog), launcherScript(prog), 0o755);
    write(path.join(app, 'obnam-server-prepare'), fs.readFileSync(path.join(PKG, 'deb', 'obnam-server-prepare')), 0o755);

    // Man pages and completion, from the staged programs themselves.
    const node = path.join(app, 'node');
    const runner =
      (prog: string): HelpRunner =>
      (args) =>
        run(node, [path.join(app, 'bin', `${prog}.js`), ...args], { env: { ...process.env, COLUMNS: '100' } });
    const man = [
      { prog: 'obnam', section: 1 as const, summary: 'deduplicating, compressing, encrypting backups', extra: OBNAM_EXTRA },
      { prog: 'obnam-server', section: 8 as const, summary: 'the obnam backup server', extra: SERVER_EXTRA },
    ];
    for (const m of man) {
      const page = renderManPage(collectHelp(runner(m.prog)), { program: m.prog, section: m.section, version, date: day, summary: m.summary, extra: m.extra });
      const file = path.join(tree, `usr/share/man/man${m.section}/${m.prog}.${m.section}`);
      write(file, page);
      gzip(file);
      write(path.join(tree, 'usr/share/bash-completion/completions', m.prog), runner(m.prog)(['completion']));
    }

    // systemd units.
    for (const unit of ['obnam-server.service', 'obnam-backup.service', 'obnam-backup.timer']) {
      write(path.join(tree, 'usr/lib/systemd/system', unit), fs.readFileSync(path.join(PKG, 'systemd', unit)));
    }
    for (const unit of ['obnam-backup.service', 'obnam-backup.timer']) {
      write(path.join(tree, 'usr/lib/systemd/user', unit), fs.readFileSync(path.join(PKG, 'systemd', 'user', unit)));
    }
    // The service's config: the server's own defaults, TLS files in its state directory.
    write(
      path.join(tree, SERVER_CONFIG),
      defaultConfigText(`${SERVER_STATE}/tls/cert.pem`, `${SERVER_STATE}/tls/key.pem`).replace(
        /^# obnam-server configuration.*\n/,
        `# obnam-server.service configuration (obnam-server(8)); read at start: systemctl restart obnam-server\n` +
          `# ${SERVER_STATE} is the server directory: made on the first start if empty.\n`,
      ),
    );

    // Documentation.
    const doc = path.join(tree, 'usr/share/doc/obnam');
    write(path.join(doc, 'README.md'), fs.readFileSync(path.join(ROOT, 'README.md')));
    for (const f of fs.readdirSync(path.join(ROOT, 'format-spec'), { recursive: true, withFileTypes: true })) {
      if (f.isFile()) write(path.join(doc, 'format-spec', path.relative(path.join(ROOT, 'format-spec'), path.join(f.parentPath, f.name))), fs.readFileSync(path.join(f.parentPath, f.name)));
    }
    write(path.join(doc, 'changelog'), changelog);
    gzip(path.join(doc, 'changelog'));
    const copyright = makeCopyright({ appDir: app, appRel: APP_DIR.slice(1), packages });
    const dep5 = dep5Problems(copyright);
    if (dep5.length) throw new Error(`/usr/share/doc/obnam/copyright is not in the machine-readable format:\n${dep5.join('\n')}`);
    write(path.join(doc, 'copyright'), copyright);
    write(path.join(tree, 'usr/share/lintian/overrides/obnam'), fs.readFileSync(path.join(PKG, 'deb', 'lintian-overrides')));

    // Control files.
    const elves = [node, ...findFiles(app, /\.node$/)];
    const control = fs
      .readFileSync(path.join(PKG, 'deb', 'control.in'), 'utf8')
      .replace('@VERSION@', version)
      .replace('@MAINTAINER@', /^ -- (.+? <[^>]+>)/m.exec(changelog)![1]!)
      .replace('@SHLIBS@', shlibDepends(elves))
      .replace('@INSTALLED_SIZE@', String(installedSize(tree)));
    const debian = path.join(tree, 'DEBIAN');
    write(path.join(debian, 'control'), control);
    write(path.join(debian, 'conffiles'), `${SERVER_CONFIG}\n`);
    for (const s of ['postinst', 'prerm', 'postrm']) write(path.join(debian, s), fs.readFileSync(path.join(PKG, 'deb', s)), 0o755);
    const sums: string[] = [];
    for (const d of fs.readdirSync(tree, { withFileTypes: true, recursive: true })) {
      const full = path.join(d.parentPath, d.name);
      const rel = path.relative(tree, full);
      if (!d.isFile() || rel.startsWith('DEBIAN/') || `/${rel}` === SERVER_CONFIG) continue;
      sums.push(`${run('md5sum', [full]).split(' ')[0]}  ${rel}`);
    }
    write(path.join(debian, 'md5sums'), sums.sort((a, b) => a.slice(34).localeCompare(b.slice(34))).join('\n') + '\n');

    // Normal permissions (no group or world write, executables 0755), then one timestamp for reproducible builds.
    for (const d of fs.readdirSync(tree, { withFileTypes: true, recursive: true })) {
      const full = path.join(d.parentPath, d.name);
      if (d.isSymbolicLink()) continue;
      if (d.isDirectory()) fs.chmodSync(full, 0o755);
      else fs.chmodSync(full, fs.statSync(full).mode & 0o111 ? 0o755 : 0o644);
    }
    fs.chmodSync(tree, 0o755);
    run('find', [tree, '-exec', 'touch', '--no-dereference', `--date=@${epoch}`, '{}', '+']);

    fs.mkdirSync(outDir, { recursive: true });
    const deb = path.join(outDir, `obnam_${version}_amd64.deb`);
    // xz -1: a fifth of the CPU time of the default -6 for 4 MB more (28 MB instead of 24).
    run('dpkg-deb', ['--root-owner-group', '-Zxz', '-z1', '--build', tree, deb], { env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
    return { deb, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--out');
  const out = i >= 0 && argv[i + 1] ? path.resolve(argv[i + 1]!) : process.cwd();
  try {
    const { deb, seconds } = buildDeb(out);
    process.stdout.write(`${deb} (${(fs.statSync(deb).size / 1e6).toFixed(1)} MB, built in ${seconds.toFixed(1)} s)\n`);
  } catch (e) {
    process.stderr.write(`npm run deb: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
