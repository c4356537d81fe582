/**
 * npm run test:deb [-- --deb FILE]: proves the Debian package on this machine
 * (as root; it installs and purges packages, so CI runs it after npm test):
 * build, contents (no dev toolchain: every bundled npm package a production
 * dependency), lintian (no errors), install with apt-get, the installed obnam
 * (version, backup, restore, fsck, mount, man pages, completion), the
 * copyright file (DEP-5), obnam-backup.service's command as systemd runs it
 * (exit 0, 1, and 3 for a partial backup), the installed obnam-server run the
 * way its unit runs it (first-start initialisation, SIGTERM stop, a stop
 * during a backup and a package upgrade, then every acknowledged snapshot),
 * systemd-analyze verify of every unit, remove and purge (what stays is what
 * the docs say), and the signed APT repository of npm run apt-repo (apt-get
 * install from a file: source with signed-by=; --key; a wrong key is
 * refused). Cleans up after itself whatever fails, and ends with
 * "N passed, M failed" (exit 1 if any failed).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KEYRING, sourcesLine, stopAgent, throwawayKey } from './apt-repo.js';
import { buildDeb } from './build-deb.js';
import { notProductionIn } from './contents.js';
import { dep5Problems } from './copyright.js';
import { run } from './run.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const STATE = '/var/lib/obnam-server';
const CONF_DIR = '/etc/obnam-server';
/** obnam-backup.service's (system) configuration directory. */
const BACKUP_CONF_DIR = '/etc/obnam';
const SOURCES = '/etc/apt/sources.list.d/obnam-test-deb.list';
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const DEV_ONLY = /\/node_modules\/(typescript|@typescript|@types|s3rver|fast-check)\/|\/dist\/(test|bench|packaging)\/|\.ts$|\.map$/;

/** Runs a command as the obnam-server user, as systemd's User=/Group= do (setpriv execs it: signals reach it directly). */
const AS_SERVER_USER = ['--reuid=obnam-server', '--regid=obnam-server', '--init-groups', '--'];

let passed = 0;
let failed = 0;

/** Runs one check; a failure is counted and printed, and the rest still run. */
async function step(name: string, fn: () => void | Promise<void>): Promise<boolean> {
  const t = process.hrtime.bigint();
  try {
    await fn();
    passed++;
    process.stdout.write(`ok - ${name} (${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(1)} s)\n`);
    return true;
  } catch (e) {
    failed++;
    process.stdout.write(`FAIL - ${name}: ${(e instanceof Error ? e.message : String(e)).split('\n').join('\n    ')}\n`);
    return false;
  }
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

const apt = (args: string[]) => run('apt-get', ['-y', '-q', '-o', 'Dpkg::Use-Pty=0', ...args], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
const installed = () => {
  try {
    return /^Status: install ok installed/m.test(run('dpkg-query', ['-s', 'obnam']));
  } catch {
    return false;
  }
};
const userExists = () => {
  try {
    run('getent', ['passwd', 'obnam-server']);
    return true;
  } catch {
    return false;
  }
};

/** Files to back up: content of several sizes, a tree, a symlink, an empty dir, odd modes. */
function makeData(dir: string): void {
  fs.mkdirSync(path.join(dir, 'sub/deeper'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'empty'));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello, obnam\n');
  fs.writeFileSync(path.join(dir, 'sub/random.bin'), Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 2654435761) >>> 24)));
  fs.writeFileSync(path.join(dir, 'sub/deeper/script.sh'), '#!/bin/sh\necho hi\n', { mode: 0o750 });
  fs.symlinkSync('../hello.txt', path.join(dir, 'sub/link'));
}

/** diff -r of the data and its restored copy (content, file types, links), and the same modes. */
function sameTree(a: string, b: string): void {
  run('diff', ['-r', '--no-dereference', a, b]);
  const modes = (d: string) => run('find', [d, '-printf', '%P %m %y\n'], {}).split('\n').sort().join('\n');
  check(modes(a) === modes(b), `modes differ between ${a} and ${b}`);
}

/** obnam-server serve as its unit runs it, on 127.0.0.1 and a free port; resolves once listening. */
function startServer(): Promise<{ child: ChildProcess; url: string; fingerprint: string; log: () => string }> {
  const unit = fs.readFileSync('/usr/lib/systemd/system/obnam-server.service', 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(/\s+/);
  const child = spawn('setpriv', [...AS_SERVER_USER, ...exec, '--listen', '127.0.0.1:0'], {
    env: { PATH: '/usr/bin:/bin', OBNAM_SERVER_DIR: STATE },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`obnam-server did not start: ${err}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (https:\/\/\S+) \(certificate SHA-256 fingerprint ([0-9A-F:]+)\)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, fingerprint: m[2]!, log: () => err });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`obnam-server exited ${code}: ${err}`));
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** SIGTERM, as systemctl stop sends it; resolves with the exit code. */
function stopServer(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

/** An installed unit's ExecStart= command and Environment= settings, as systemd runs them. */
function unitCommand(unit: string): { argv: string[]; env: Record<string, string> } {
  const text = fs.readFileSync(unit, 'utf8');
  const argv = /^ExecStart=(.*)$/m.exec(text)![1]!.trim().split(/\s+/);
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)) env[m[1]!] = m[2]!.trim();
  return { argv, env };
}

/** Runs a unit's command with exactly this environment (as `uid`, else root): its exit code and stderr. */
function runUnit(u: { argv: string[]; env: Record<string, string> }, env: Record<string, string>, uid?: number): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(u.argv[0]!, u.argv.slice(1), { env: { ...env, ...u.env }, encoding: 'utf8', ...(uid === undefined ? {} : { uid, gid: uid }) });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Bytes in the files below dir (files may be renamed away while it counts: 0 if the walk fails). */
function dirBytes(dir: string): number {
  let n = 0;
  const entries = safe(() => fs.readdirSync(dir, { withFileTypes: true, recursive: true })) || [];
  for (const d of entries) {
    if (!d.isFile()) continue;
    try {
      n += fs.statSync(path.join(d.parentPath, d.name)).size;
    } catch {
      // renamed or removed meanwhile
    }
  }
  return n;
}

/** Runs a program; resolves with its exit code and output. */
function spawnAsync(cmd: string, args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The uid and gid of nobody: the user of the user-instance backup. */
const NOBODY = 65534;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const debArg = argv.indexOf('--deb');
  const started = process.hrtime.bigint();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-test-deb-'));
  fs.chmodSync(work, 0o755); // apt's _apt user reads the file: repository
  let deb = debArg >= 0 ? path.resolve(argv[debArg + 1]!) : '';
  let server: ChildProcess | undefined;
  const hadState = fs.existsSync(STATE);
  const hadUser = userExists();
  const hadBackupConf = fs.existsSync(BACKUP_CONF_DIR);
  const gpgHomes: string[] = [];
  try {
    if (process.getuid?.() !== 0) throw new Error('npm run test:deb installs packages: run it as root');
    if (installed()) throw new Error('obnam is already installed here: this test would replace and purge it; remove it first');
    if (hadState) throw new Error(`${STATE} exists: this test would use it as the server state; move it away first`);
    if (hadBackupConf) throw new Error(`${BACKUP_CONF_DIR} exists: this test writes the system backup's config there; move it away first`);

    if (!deb) {
      await step('npm run deb builds the package', () => {
        const r = buildDeb(work);
        deb = r.deb;
        process.stdout.write(`    ${path.basename(deb)}: ${(fs.statSync(deb).size / 1e6).toFixed(1)} MB, built in ${r.seconds.toFixed(1)} s\n`);
      });
    }
    check(fs.existsSync(deb), `no package at ${deb}`);
    const contents = run('dpkg-deb', ['-c', deb]);

    await step('dpkg-deb -c: the files the docs name, nothing of the dev toolchain', () => {
      for (const f of [
        './usr/bin/obnam',
        './usr/bin/obnam-server',
        './usr/lib/obnam/node',
        './usr/lib/obnam/dist/cli/main.js',
        './usr/share/doc/obnam/copyright',
        './usr/share/doc/obnam/changelog.gz',
        './usr/share/doc/obnam/README.md',
        './usr/share/doc/obnam/format-spec/README.md',
        './usr/share/man/man1/obnam.1.gz',
        './usr/share/man/man8/obnam-server.8.gz',
        './usr/share/bash-completion/completions/obnam',
        './usr/lib/systemd/system/obnam-server.service',
        './usr/lib/systemd/user/obnam-backup.timer',
        './etc/obnam-server/obnam-server.yaml',
      ]) {
        check(contents.includes(` ${f}\n`) || contents.includes(` ${f} `), `${f} is missing`);
      }
      const dev = contents.split('\n').filter((l) => DEV_ONLY.test(l));
      check(dev.length === 0, `dev files in the package:\n${dev.slice(0, 10).join('\n')}`);
      const notProd = notProductionIn(ROOT, contents);
      check(notProd.length === 0, `npm packages that are not production dependencies in package-lock.json: ${notProd.join(' ')}`);
      const fields = run('dpkg-deb', ['-f', deb, 'Version', 'Depends']);
      check(fields.includes(`Version: ${VERSION}\n`), `package version is not ${VERSION}: ${fields}`);
      for (const d of ['libfuse2', 'fuse3', 'adduser']) check(fields.includes(d), `Depends lacks ${d}: ${fields}`);
      check(!/nodejs/.test(fields), 'the package brings its own Node.js: it must not depend on nodejs');
    });

    await step('lintian: no errors', () => {
      let out = '';
      try {
        out = run('lintian', ['--fail-on', 'error', deb]);
      } catch (e) {
        throw new Error((e as Error).message);
      }
      const warnings = out.split('\n').filter((l) => /^W: /.test(l));
      process.stdout.write(warnings.map((w) => `    lintian warning left: ${w}\n`).join(''));
    });

    const ok = await step('apt-get install ./obnam_*.deb', () => {
      apt(['install', '--no-install-recommends', deb]);
      check(installed(), 'dpkg does not list obnam as installed');
    });
    if (!ok) throw new Error('not installed: the remaining checks need the package');
    const files = run('dpkg', ['-L', 'obnam']).split('\n').filter((f) => f && f !== '/.');

    await step('/usr/bin/obnam --version and obnam-server --version print the package version', () => {
      check(run('/usr/bin/obnam', ['--version']).trim() === VERSION, 'obnam --version');
      check(run('/usr/bin/obnam-server', ['--version']).trim() === VERSION, 'obnam-server --version');
    });

    const data = path.join(work, 'data');
    makeData(data);
    const client = { PATH: '/usr/bin:/bin', HOME: work, OBNAM_PASSPHRASE: 'correct horse battery staple', OBNAM_NO_PROGRESS: '1' };
    await step('installed obnam: init, backup, restore (same bytes and modes), fsck', () => {
      const repo = path.join(work, 'repo');
      run('/usr/bin/obnam', ['--repo', repo, 'init'], { env: client });
      run('/usr/bin/obnam', ['--repo', repo, 'backup', data], { env: client });
      run('/usr/bin/obnam', ['--repo', repo, 'restore', 'latest', path.join(work, 'restored')], { env: client });
      sameTree(data, path.join(work, 'restored', data));
      run('/usr/bin/obnam', ['--repo', repo, 'fsck'], { env: client });
    });

    await step('installed obnam mount: the snapshot as a file system (patched fuse-native, nanosecond mtimes)', async () => {
      const mp = path.join(work, 'mnt');
      fs.mkdirSync(mp);
      const child = spawn('/usr/bin/obnam', ['--repo', path.join(work, 'repo'), 'mount', mp], { env: client, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const file = path.join(mp, 'latest', data, 'sub', 'random.bin');
        for (let i = 0; i < 600 && !fs.existsSync(file); i++) {
          if (child.exitCode !== null) throw new Error(`obnam mount exited ${child.exitCode}: ${err}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        check(fs.readFileSync(file).equals(fs.readFileSync(path.join(data, 'sub', 'random.bin'))), 'different bytes through the mount');
        const a = fs.statSync(path.join(data, 'hello.txt'), { bigint: true }).mtimeNs;
        const b = fs.statSync(path.join(mp, 'latest', data, 'hello.txt'), { bigint: true }).mtimeNs;
        check(a === b, `mtime ${b} through the mount, ${a} on disk (unpatched fuse-native rounds to ms)`);
      } finally {
        safe(() => run('fusermount', ['-u', '-z', mp]));
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      }
    });

    await step('man obnam / obnam-server: every command of --help, rendered without warnings', () => {
      for (const [prog, sect] of [
        ['obnam', '1'],
        ['obnam-server', '8'],
      ] as const) {
        const file = `/usr/share/man/man${sect}/${prog}.${sect}.gz`;
        const warnings = run('sh', ['-c', `zcat ${file} | groff -man -ww -z 2>&1`]);
        check(warnings.trim() === '', `groff warns on ${prog}(${sect}): ${warnings}`);
        const page = run('sh', ['-c', `zcat ${file} | groff -man -Tascii -P-cbou`]);
        const help = run(`/usr/bin/${prog}`, ['--help']);
        const commands = [...help.matchAll(new RegExp(`^  ${prog} (\\S+)`, 'gm'))].map((m) => m[1]!);
        check(commands.length >= 3, `no commands in ${prog} --help`);
        for (const c of commands) check(page.includes(`${prog} ${c}`), `${prog}(${sect}) lacks the command ${c}`);
      }
    });

    await step('bash completion completes commands and options', () => {
      const complete = (prog: string, words: string[]) =>
        run('bash', ['-c', `source /usr/share/bash-completion/completions/${prog}; COMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; _${prog}_yargs_completions; printf '%s\\n' "\${COMPREPLY[@]}"`], {
          env: { PATH: '/usr/bin:/bin' },
        }).split('\n');
      check(complete('obnam', ['obnam', 'ba']).includes('backup'), 'obnam ba<TAB> does not give backup');
      check(complete('obnam', ['obnam', 'backup', '--one']).includes('--one-file-system'), 'obnam backup --one<TAB>');
      check(complete('obnam-server', ['obnam-server', 'cl']).includes('client'), 'obnam-server cl<TAB>');
    });

    await step('/usr/share/doc/obnam/copyright: machine-readable (DEP-5), python3-debian parses it strictly, every Files pattern matches installed files', () => {
      const file = '/usr/share/doc/obnam/copyright';
      const text = fs.readFileSync(file, 'utf8');
      const problems = dep5Problems(text);
      check(problems.length === 0, problems.join('\n'));
      run('/usr/bin/python3', ['-c', `from debian import copyright; copyright.Copyright(open(${JSON.stringify(file)}), strict=True)`]);
      for (const m of text.matchAll(/^Files: (.+)$/gm)) {
        const pattern = m[1]!.trim();
        if (pattern === '*') continue;
        const prefix = `/${pattern.replace(/\/?\*$/, '')}`;
        check(files.some((f) => f === prefix || f.startsWith(`${prefix}/`)), `Files: ${pattern} matches nothing installed`);
      }
    });

    await step('obnam-backup.service as systemd runs it (root, no HOME): backs up what /etc/obnam/config.yaml names, exit 0; an error exits 1; the user instance (as nobody) exits 3 on a partial backup and names the file', () => {
      const sys = unitCommand('/usr/lib/systemd/system/obnam-backup.service');
      check(sys.env.OBNAM_CONFIG === `${BACKUP_CONF_DIR}/config.yaml`, `the system unit reads ${sys.env.OBNAM_CONFIG}`);
      const pass = path.join(work, 'unit-passphrase');
      fs.writeFileSync(pass, 'unit passphrase\n', { mode: 0o600 });
      const config = (repo: string, paths: string, passphrase: string) => `repo: ${repo}\npaths: [${paths}]\npassphrase_file: ${passphrase}\n`;
      fs.mkdirSync(BACKUP_CONF_DIR, { mode: 0o755 });
      fs.writeFileSync(sys.env.OBNAM_CONFIG, config(path.join(work, 'unit-repo'), data, pass), { mode: 0o600 });
      const root = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }; // a system service's environment
      // Without HOME, obnam keeps its cache in root's home from the password file: what the test adds there goes again.
      const rootCache = path.join(os.userInfo().homedir, '.cache', 'obnam');
      const cached = new Set(safe(() => fs.readdirSync(rootCache)) || []);
      try {
        run('/usr/bin/obnam', ['init'], { env: { ...root, ...sys.env } });
        const ok = runUnit(sys, root);
        check(ok.code === 0, `the system backup exited ${ok.code}: ${ok.stderr}`);
        run('/usr/bin/obnam', ['restore', 'latest', path.join(work, 'unit-restored')], { env: { ...root, ...sys.env } });
        sameTree(data, path.join(work, 'unit-restored', data));
        fs.writeFileSync(sys.env.OBNAM_CONFIG, config(path.join(work, 'no-such-repo'), data, pass), { mode: 0o600 });
        const bad = runUnit(sys, root);
        check(bad.code === 1 && bad.stderr.trim() !== '', `a backup to a missing repository exited ${bad.code} (${bad.stderr.trim()}), not 1 with a message`);
      } finally {
        for (const e of safe(() => fs.readdirSync(rootCache)) || []) if (!cached.has(e)) fs.rmSync(path.join(rootCache, e), { recursive: true, force: true });
        if (cached.size === 0) safe(() => fs.rmdirSync(rootCache));
      }

      const user = unitCommand('/usr/lib/systemd/user/obnam-backup.service');
      const home = path.join(work, 'home-nobody');
      const mine = path.join(work, 'nobody-data');
      fs.mkdirSync(path.join(home, '.config', 'obnam'), { recursive: true });
      fs.mkdirSync(mine);
      fs.writeFileSync(path.join(mine, 'readable.txt'), 'mine\n');
      fs.writeFileSync(path.join(mine, 'secret.txt'), 'not mine\n', { mode: 0o600 }); // root's: nobody cannot read it
      fs.writeFileSync(path.join(home, 'passphrase'), 'user passphrase\n', { mode: 0o600 });
      fs.writeFileSync(path.join(home, '.config', 'obnam', 'config.yaml'), config(path.join(home, 'repo'), mine, path.join(home, 'passphrase')));
      run('chown', ['-R', `${NOBODY}:${NOBODY}`, home]);
      run('chown', [`${NOBODY}:${NOBODY}`, mine, path.join(mine, 'readable.txt')]);
      // What systemd --user gives its services.
      const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, USER: 'nobody', LOGNAME: 'nobody' };
      const init = runUnit({ argv: ['/usr/bin/obnam', 'init'], env: {} }, env, NOBODY);
      check(init.code === 0, `obnam init as nobody exited ${init.code}: ${init.stderr}`);
      const partial = runUnit(user, env, NOBODY);
      check(partial.code === 3, `a partial backup exited ${partial.code}, not 3: ${partial.stderr}`);
      check(/warning: .*secret\.txt/.test(partial.stderr), `the unreadable file is not named: ${partial.stderr}`);
      const listed = runUnit({ argv: ['/usr/bin/obnam', '--json', 'list'], env: {} }, env, NOBODY);
      check(listed.code === 0 && (JSON.parse(listed.stdout) as unknown[]).length === 1, `obnam list as nobody: one snapshot expected: ${listed.stdout}${listed.stderr}`);
    });

    await step('systemd-analyze verify accepts every unit', () => {
      const units = files.filter((f) => /^\/usr\/lib\/systemd\/(system|user)\/obnam-/.test(f) && fs.statSync(f).isFile());
      check(units.length === 5, `expected 5 units, found ${units.join(' ')}`);
      for (const u of units) {
        const user = u.includes('/user/') ? ['--user'] : [];
        run('systemd-analyze', [...user, 'verify', u], { env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning', XDG_RUNTIME_DIR: work } });
        const text = fs.readFileSync(u, 'utf8');
        if (u.endsWith('obnam-backup.service')) {
          // exit 1 (error) and 3 (partial backup) must leave the unit failed, so no SuccessExitStatus=.
          check(/^Type=oneshot$/m.test(text) && !/^SuccessExitStatus=/m.test(text), `${u}: a failed or partial backup would not show as failed`);
        }
        if (u.endsWith('obnam-backup.timer')) check(/^OnCalendar=daily$/m.test(text) && /^RandomizedDelaySec=/m.test(text), `${u}: not daily with a random delay`);
      }
      const exposure = run('systemd-analyze', ['security', '--offline=yes', '/usr/lib/systemd/system/obnam-server.service'], { env: { ...process.env, SYSTEMD_LOG_LEVEL: 'err' } });
      const level = /Overall exposure level for \S+: ([\d.]+)/.exec(exposure);
      check(!!level && Number(level[1]) <= 2, `obnam-server.service exposure ${level?.[1]} (hardening lost?)`);
      process.stdout.write(`    systemd-analyze security obnam-server.service: ${level![1]}\n`);
    });

    await step('the obnam-server system user: made by postinst, no login', () => {
      const pw = run('getent', ['passwd', 'obnam-server']).trim().split(':');
      check(Number(pw[2]) < 1000, `uid ${pw[2]} is not a system uid`);
      check(/nologin|false/.test(pw[6]!), `shell ${pw[6]}`);
      check(pw[5] === STATE, `home ${pw[5]}`);
    });

    let fingerprint = '';
    let token = '';
    const remote = path.join(work, 'remote-restored');
    await step('obnam-server from the installed files: first start initialises the state, a client backs up and restores over HTTPS', async () => {
      // What systemd does for StateDirectory=, then the unit's ExecStartPre= and ExecStart=.
      fs.mkdirSync(STATE, { mode: 0o700 });
      run('chown', ['obnam-server:obnam-server', STATE]);
      const unit = fs.readFileSync('/usr/lib/systemd/system/obnam-server.service', 'utf8');
      const pre = /^ExecStartPre=(.*)$/m.exec(unit)![1]!.split(/\s+/);
      run('setpriv', [...AS_SERVER_USER, ...pre], { env: { PATH: '/usr/bin:/bin' } });
      check(fs.readlinkSync(path.join(STATE, 'obnam-server.yaml')) === `${CONF_DIR}/obnam-server.yaml`, 'the state config is not a link to /etc');
      run('setpriv', [...AS_SERVER_USER, ...pre], { env: { PATH: '/usr/bin:/bin' } }); // second start: nothing to do
      const s = await startServer();
      server = s.child;
      fingerprint = s.fingerprint;
      token = run('setpriv', [...AS_SERVER_USER, '/usr/bin/obnam-server', 'client', 'add', 'ci', '--dir', STATE], { env: { PATH: '/usr/bin:/bin' } }).trim();
      const c = { ...client, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint };
      run('/usr/bin/obnam', ['--repo', s.url, 'init'], { env: c });
      run('/usr/bin/obnam', ['--repo', s.url, 'backup', data], { env: c });
      run('/usr/bin/obnam', ['--repo', s.url, 'restore', 'latest', remote], { env: c });
      sameTree(data, path.join(remote, data));
      const code = await stopServer(s.child);
      server = undefined;
      check(code === 0, `obnam-server exited ${code} on SIGTERM: ${s.log()}`);
      check(/stopped/.test(s.log()), 'no clean stop in the log');
    });

    await step('upgrade to a newer version, the server stopped by SIGTERM during a backup (as prerm stops it): user, config and data stay; the restarted server has every acknowledged snapshot', async () => {
      // Backups to the running server; the server is stopped the way prerm stops it while one is uploading.
      const s0 = await startServer();
      server = s0.child;
      const c0 = { ...client, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint };
      const dirs = [0, 1, 2].map((i) => path.join(work, `upgrade-data-${i}`));
      dirs.forEach((d, i) => {
        fs.mkdirSync(d);
        fs.writeFileSync(path.join(d, 'small.txt'), `backup ${i}\n`);
        fs.writeFileSync(path.join(d, 'big.bin'), randomBytes(i === 2 ? 48 << 20 : 1 << 20));
      });
      const acked = new Map<string, string>(); // snapshot id -> the directory it holds
      for (const d of dirs.slice(0, 2)) {
        const out = JSON.parse(run('/usr/bin/obnam', ['--repo', s0.url, '--json', 'backup', d], { env: c0 })) as { snapshot: string };
        acked.set(out.snapshot, d);
      }
      const before = dirBytes(STATE);
      const inFlight = spawnAsync('/usr/bin/obnam', ['--repo', s0.url, '--json', 'backup', dirs[2]!], c0);
      for (let i = 0; i < 1200 && dirBytes(STATE) < before + (4 << 20) && inFlight.child.exitCode === null; i++) await sleep(50);
      const uploading = inFlight.child.exitCode === null;
      const stopped = await stopServer(s0.child);
      server = undefined;
      check(stopped === 0, `obnam-server exited ${stopped} on SIGTERM: ${s0.log()}`);
      const third = await inFlight.done;
      if (third.code === 0) acked.set((JSON.parse(third.stdout) as { snapshot: string }).snapshot, dirs[2]!);
      process.stdout.write(`    the server was stopped ${uploading ? 'while the third backup uploaded' : 'after the third backup'}; it exited ${third.code}\n`);
      check(third.code === 0 || third.code === 1, `the interrupted backup exited ${third.code}: ${third.stderr}`);

      // The same package as a newer version (repacked uncompressed: quick), installed over it.
      const raw = path.join(work, 'upgrade');
      run('dpkg-deb', ['-R', deb, raw]);
      const control = path.join(raw, 'DEBIAN', 'control');
      fs.writeFileSync(control, fs.readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${VERSION}+upgrade1`));
      const newer = path.join(work, `obnam_${VERSION}+upgrade1_amd64.deb`);
      run('dpkg-deb', ['--root-owner-group', '-Znone', '--build', raw, newer]);
      fs.rmSync(raw, { recursive: true, force: true });
      apt(['install', '--no-install-recommends', newer]);
      check(run('dpkg-query', ['-W', '-f=${Version}', 'obnam']) === `${VERSION}+upgrade1`, 'not upgraded');
      check(fs.existsSync(`${CONF_DIR}/obnam-server.yaml`), 'the config is gone');
      check(userExists(), 'the obnam-server user is gone');
      const s = await startServer();
      server = s.child;
      check(s.fingerprint === fingerprint, 'the certificate changed');
      const c = { ...client, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint };
      const list = JSON.parse(run('/usr/bin/obnam', ['--repo', s.url, '--json', 'list'], { env: c })) as { id: string; damaged?: boolean }[];
      check(list.length >= 1 + acked.size && list.every((l) => !l.damaged), `expected ${1 + acked.size} readable snapshots or more, found ${JSON.stringify(list)}`);
      for (const [id, d] of acked) {
        check(list.some((l) => l.id === id), `acknowledged snapshot ${id} is gone`);
        const target = path.join(work, `upgrade-restored-${id}`);
        run('/usr/bin/obnam', ['--repo', s.url, 'restore', id, target], { env: c });
        sameTree(d, path.join(target, d));
        fs.rmSync(target, { recursive: true, force: true });
      }
      run('/usr/bin/obnam', ['--repo', s.url, 'fsck'], { env: c });
      check((await stopServer(s.child)) === 0, 'unclean stop');
      server = undefined;
    });

    await step('apt-get remove keeps config and data; purge removes config, never data', () => {
      apt(['remove', 'obnam']);
      check(!fs.existsSync('/usr/bin/obnam') && !fs.existsSync('/usr/lib/obnam/node'), 'program files left after remove');
      check(fs.existsSync(`${CONF_DIR}/obnam-server.yaml`), 'remove deleted the config');
      apt(['purge', 'obnam']);
      check(!installed() && !/^Status:/m.test(safe(() => run('dpkg-query', ['-s', 'obnam']))), 'dpkg still knows obnam');
      const left = files.filter((f) => fs.existsSync(f) && !fs.statSync(f).isDirectory());
      check(left.length === 0, `package files left after purge: ${left.join(' ')}`);
      for (const d of ['/usr/lib/obnam', CONF_DIR]) check(!fs.existsSync(d), `${d} left after purge`);
      check(fs.existsSync(path.join(STATE, 'data')) && fs.existsSync(path.join(STATE, 'clients.json')), `purge removed backup data in ${STATE}`);
      check(userExists(), 'purge removed the obnam-server user (it owns the data that stays)');
      const helperState = safe(() => run('sh', ['-c', 'ls /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked 2>/dev/null | grep obnam || true']));
      check(helperState.trim() === '', `systemd helper state left: ${helperState}`);
    });

    /** apt-get with only the test's source entry. */
    const only = ['-o', `Dir::Etc::SourceList=${SOURCES}`, '-o', 'Dir::Etc::SourceParts=-', '-o', 'APT::Get::List-Cleanup=0'];
    /** `npm run apt-repo ARGS` in this checkout, as the README has it; the source line it prints. */
    const npmAptRepo = (args: string[], env: NodeJS.ProcessEnv = process.env) => {
      const out = run('npm', ['run', '--silent', 'apt-repo', args[0]!, '--', ...args.slice(1)], { cwd: ROOT, env });
      run('chmod', ['-R', 'a+rX', args[0]!]);
      return out.trim().split('\n').pop()!;
    };

    await step('npm run apt-repo DIR: a signed repository (throwaway key); apt-get install obnam from a file: source with signed-by=, then purge', () => {
      const repo = path.join(work, 'apt');
      const line = npmAptRepo([repo, '--deb', deb]);
      check(line === sourcesLine(repo), `source line: ${line}`);
      for (const f of ['dists/stable/InRelease', 'dists/stable/Release.gpg', KEYRING]) check(fs.existsSync(path.join(repo, f)), `${f} is missing`);
      fs.writeFileSync(SOURCES, `${line}\n`);
      apt([...only, 'update']);
      const policy = run('apt-cache', ['policy', 'obnam']);
      check(policy.includes(`file:${repo} stable/main amd64`), `apt does not see the repository: ${policy}`);
      apt([...only, 'install', '--no-install-recommends', 'obnam']);
      check(run('/usr/bin/obnam', ['--version']).trim() === VERSION, 'obnam --version after install from the repository');
      apt(['purge', 'obnam']);
      check(!installed(), 'purge');
    });

    await step('npm run apt-repo DIR -- --key ID signs with that key of the caller\'s keyring (apt-get accepts it); apt-get refuses a repository signed with another key', () => {
      const other = throwawayKey();
      gpgHomes.push(other.home);
      const own = path.join(work, 'apt-own-key');
      let line: string;
      try {
        line = npmAptRepo([own, '--deb', deb, '--key', other.key], { ...process.env, GNUPGHOME: other.home });
      } finally {
        stopAgent(other.home);
      }
      check(line === sourcesLine(own), `source line: ${line}`);
      const exported = run('gpg', ['--show-keys', '--with-colons', path.join(own, KEYRING)], { env: { ...process.env, GNUPGHOME: other.home } });
      check(exported.includes(`fpr:::::::::${other.key}:`), `${KEYRING} is not the key given with --key`);
      fs.writeFileSync(SOURCES, `${line}\n`);
      apt([...only, 'update']);
      check(run('apt-cache', ['policy', 'obnam']).includes(`file:${own} stable/main amd64`), 'apt does not see the repository signed with --key');
      stopAgent(other.home);

      // The first repository (its own throwaway key) with this key as signed-by=: refused.
      fs.writeFileSync(SOURCES, `deb [signed-by=${path.join(own, KEYRING)}] file:${path.join(work, 'apt')} stable main\n`);
      let refused = false;
      try {
        apt([...only, 'update', '-o', 'APT::Update::Error-Mode=any']);
      } catch (e) {
        refused = /NO_PUBKEY|not signed|signature/i.test((e as Error).message);
      }
      check(refused, 'apt-get update accepted a repository signed by a key not in signed-by=');
    });
  } catch (e) {
    failed++;
    process.stdout.write(`FAIL - ${(e as Error).message}\n`);
  } finally {
    if (server) await stopServer(server);
    // Leave the machine as it was: the package, its user and state, the source entry, apt's lists of it.
    if (installed()) safe(() => apt(['purge', 'obnam']));
    fs.rmSync(SOURCES, { force: true });
    for (const l of safe(() => fs.readdirSync('/var/lib/apt/lists')) || []) {
      if (l.includes(work.replace(/\//g, '_').slice(1))) fs.rmSync(path.join('/var/lib/apt/lists', l), { force: true });
    }
    if (!hadState) fs.rmSync(STATE, { recursive: true, force: true });
    if (!hadBackupConf) fs.rmSync(BACKUP_CONF_DIR, { recursive: true, force: true });
    if (!hadUser && userExists()) {
      safe(() => run('deluser', ['--system', '--quiet', 'obnam-server']));
      safe(() => run('delgroup', ['--system', '--quiet', '--only-if-empty', 'obnam-server']));
    }
    for (const h of gpgHomes) fs.rmSync(h, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`${passed} passed, ${failed} failed (${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(0)} s)\n`);
  process.exitCode = failed ? 1 : 0;
}

function safe<T>(fn: () => T): T | '' {
  try {
    return fn();
  } catch {
    return '';
  }
}

void main();
