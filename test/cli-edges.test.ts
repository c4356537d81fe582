/**
 * The CLI at its edges, through the real bin/obnam: plain-HTTP server URLs are
 * refused unless --insecure-http is given (no byte is sent before that); a
 * stdout closed early by the reader ends a command quietly; a repository that
 * was never initialised is reported with how to create one; passphrase files
 * that others can read draw a warning and ones that others can write are
 * refused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseEnv, OBNAM, obnam, obnamOk } from './helpers/cli.js';
import { obnamServerOk, ServerProcess, spawnServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const PASS = 'edge passphrase';

let tmp: TempDir;

before(async () => {
  tmp = await tempDir('obnam-cli-edges-');
});

after(async () => {
  await tmp.remove();
});

describe('plain HTTP server URLs', () => {
  let serverDir: string;
  let srv: ServerProcess;
  let token: string;

  before(async () => {
    serverDir = path.join(tmp.path, 'server');
    await obnamServerOk(['init', serverDir]);
    srv = await spawnServer(serverDir, '127.0.0.1:0', ['--insecure-http']);
    token = (await obnamServerOk(['client', 'add', 'plain', '--dir', serverDir])).stdout.trim();
  });

  after(async () => {
    srv.child.kill('SIGTERM');
    await srv.exited;
  });

  it('are refused without --insecure-http, before any connection is made', async () => {
    // A listener that records whatever reaches it: the token must not.
    const received: Buffer[] = [];
    let connections = 0;
    const listener = net.createServer((sock) => {
      connections++;
      sock.on('data', (d) => received.push(d));
      sock.on('error', () => undefined);
      sock.end();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as net.AddressInfo).port;
    try {
      for (const cmd of [['init'], ['list'], ['backup', tmp.path]]) {
        const r = await obnam(cmd, { env: { OBNAM_REPO: `http://127.0.0.1:${port}`, OBNAM_TOKEN: 'secret-token', OBNAM_PASSPHRASE: PASS } });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^obnam: http:\/\/127\.0\.0\.1:\d+ is plain HTTP: .*--insecure-http/);
      }
      // The same with the real server: refused, and nothing created there.
      const r = await obnam(['init'], { env: { OBNAM_REPO: srv.url, OBNAM_TOKEN: token, OBNAM_PASSPHRASE: PASS } });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /--insecure-http/);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
    assert.equal(connections, 0);
    assert.equal(Buffer.concat(received).length, 0);
  });

  it('work with --insecure-http, with a warning on stderr', async () => {
    const env = { OBNAM_REPO: srv.url, OBNAM_TOKEN: token, OBNAM_PASSPHRASE: PASS };
    const init = await obnamOk(['--insecure-http', 'init'], { env });
    assert.match(init.stderr, /obnam: warning: .*plain HTTP.*token.*unencrypted/);
    const data = path.join(tmp.path, 'plain-data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'f.txt'), 'over plain http\n');
    await obnamOk(['backup', '--insecure-http', data], { env });
    const ls = await obnamOk(['ls', 'latest', '--insecure-http'], { env });
    assert.ok(ls.stdout.split('\n').includes(path.join(data, 'f.txt')), ls.stdout);
    assert.match(ls.stderr, /warning: .*plain HTTP/);
    // https:// is unaffected by the flag and needs no warning: the plain server does not speak TLS.
    const tls = await obnam(['list', '--insecure-http'], { env: { ...env, OBNAM_REPO: srv.url.replace('http:', 'https:') } });
    assert.equal(tls.code, 1);
    assert.doesNotMatch(tls.stderr, /warning/);
  });
});

describe('a stdout closed early', () => {
  let env: Record<string, string>;

  before(async () => {
    const repo = path.join(tmp.path, 'pipe-repo');
    const data = path.join(tmp.path, 'pipe-data');
    // Enough entries that `ls` writes far more than a pipe buffer (64 KiB).
    for (let d = 0; d < 20; d++) {
      const dir = path.join(data, `directory-with-a-long-name-${d}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 100; f++) fs.writeFileSync(path.join(dir, `file-with-a-rather-long-name-${f}.txt`), `${d}/${f}\n`);
    }
    env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS };
    await obnamOk(['init'], { env });
    await obnamOk(['backup', data], { env });
  });

  it('`obnam ls latest | head -1` prints one line and no error', async () => {
    const script = `set -o pipefail; "${process.execPath}" "${OBNAM}" ls latest | head -1; echo "status=\${PIPESTATUS[0]}" >&2`;
    const r = await runShell(script, env);
    assert.equal(r.stdout, `/${tmp.path.split('/')[1]}\n`);
    assert.equal(r.stderr, 'status=141\n', r.stderr);
  });

  it('a stdout that cannot be written (a full disk) is one line on stderr and exit 1', async () => {
    const r = await runShell(`"${process.execPath}" "${OBNAM}" ls latest > /dev/full`, env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^obnam: cannot write to stdout: .*ENOSPC.*\n$/);
  });

  for (const cmd of [['ls', 'latest'], ['ls', '--json', 'latest'], ['list', '--json'], ['list']]) {
    it(`obnam ${cmd.join(' ')} into a pipe closed before it writes: exit 141, nothing on stderr`, async () => {
      const r = await runClosedStdout(cmd, env);
      assert.equal(r.stderr, '');
      assert.equal(r.code, 141);
    });
  }
});

describe('a repository that was never initialised', () => {
  it('is named with how to create one', async () => {
    const missing = path.join(tmp.path, 'no-such-repo');
    const r = await obnam(['list'], { env: { OBNAM_REPO: missing, OBNAM_PASSPHRASE: PASS } });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `obnam: no obnam repository at ${missing}; create one with: obnam --repo ${missing} init\n`);
    const spaced = path.join(tmp.path, 'no such repo');
    const q = await obnam(['--repo', spaced, 'ls', 'latest'], { env: { OBNAM_PASSPHRASE: PASS } });
    assert.equal(q.stderr, `obnam: no obnam repository at ${spaced}; create one with: obnam --repo '${spaced}' init\n`);
  });

  it('on a server, too', async () => {
    const serverDir = path.join(tmp.path, 'server-uninit');
    const init = await obnamServerOk(['init', serverDir]);
    const fingerprint = /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!;
    const srv = await spawnServer(serverDir);
    try {
      const token = (await obnamServerOk(['client', 'add', 'fresh', '--dir', serverDir])).stdout.trim();
      const r = await obnam(['list'], {
        env: { OBNAM_REPO: srv.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: PASS },
      });
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `obnam: no obnam repository at ${srv.url}; create one with: obnam --repo ${srv.url} init\n`);
    } finally {
      srv.child.kill('SIGTERM');
      await srv.exited;
    }
  });
});

describe('passphrase file permissions', () => {
  let repo: string;

  before(async () => {
    repo = path.join(tmp.path, 'pass-repo');
    await obnamOk(['init'], { env: { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS } });
  });

  const passFile = (name: string, mode: number) => {
    const f = path.join(tmp.path, name);
    fs.writeFileSync(f, PASS + '\n');
    fs.chmodSync(f, mode);
    return f;
  };

  it('0600 and 0400 are used silently', async () => {
    for (const mode of [0o600, 0o400]) {
      const f = passFile(`pass-${mode.toString(8)}`, mode);
      const r = await obnamOk(['list', '--passphrase-file', f], { env: { OBNAM_REPO: repo } });
      assert.equal(r.stderr, '');
    }
  });

  it('readable by group or others: used, with a warning', async () => {
    for (const mode of [0o640, 0o604, 0o644]) {
      const f = passFile(`pass-${mode.toString(8)}`, mode);
      const r = await obnamOk(['list', '--passphrase-file', f], { env: { OBNAM_REPO: repo } });
      assert.equal(
        r.stderr,
        `obnam: warning: passphrase file ${f} can be read by others (mode 0${mode.toString(8)}); chmod 600 ${f}\n`,
      );
    }
    // Every source of a passphrase file is checked: the environment and the config file.
    const f = passFile('pass-env', 0o644);
    const env = await obnamOk(['list'], { env: { OBNAM_REPO: repo, OBNAM_PASSPHRASE_FILE: f } });
    assert.match(env.stderr, /warning: passphrase file .* can be read by others/);
    const cfg = path.join(tmp.path, 'pass-config.yaml');
    fs.writeFileSync(cfg, `repo: ${repo}\npassphrase_file: ${f}\n`);
    const c = await obnamOk(['list', '--config', cfg]);
    assert.match(c.stderr, /warning: passphrase file .* can be read by others/);
  });

  it('writable by group or others: refused with one line, exit 1', async () => {
    for (const mode of [0o620, 0o602, 0o666, 0o622]) {
      const f = passFile(`pass-${mode.toString(8)}`, mode);
      const r = await obnam(['list', '--passphrase-file', f], { env: { OBNAM_REPO: repo } });
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        `obnam: passphrase file ${f} can be changed by others (mode 0${mode.toString(8)}): not using it; chmod 600 ${f}\n`,
      );
      assert.equal(r.stdout, '');
    }
    const f = passFile('new-pass-writable', 0o666);
    const k = await obnam(['key', 'add', '--new-passphrase-file', f], { env: { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS } });
    assert.equal(k.code, 1);
    assert.match(k.stderr, /can be changed by others/);
  });

  it('a pipe (process substitution) is not a file and is used silently', async () => {
    const r = await runShell(`"${process.execPath}" "${OBNAM}" list --passphrase-file <(echo '${PASS}')`, { OBNAM_REPO: repo });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runShell(script: string, env: Record<string, string>): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs obnam with its stdout a pipe whose reading end is closed at once. */
function runClosedStdout(args: string[], env: Record<string, string>): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OBNAM, ...args], { env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: '', stderr }));
  });
}
