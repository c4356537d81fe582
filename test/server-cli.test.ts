/**
 * obnam against a real obnam-server process over HTTPS, both through their
 * command lines: server init and client management, then init, backup, list,
 * ls, restore, fsck and key commands remotely; deduplication; append-only
 * refusal; wrong token; wrong fingerprint; clean shutdown on SIGTERM.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../lib/store/open.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { obnamServer, obnamServerOk, ServerProcess, spawnServer } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree, makeTree } from './helpers/trees.js';

let tmp: TempDir;
let dir: string;
let fingerprint: string;
let srv: ServerProcess;

before(async () => {
  tmp = await tempDir('obnam-server-cli-');
  dir = path.join(tmp.path, 'server');
  const init = await obnamServerOk(['init', dir]);
  fingerprint = /fingerprint: ([0-9A-F:]{95})/.exec(init.stdout)![1]!;
  srv = await spawnServer(dir);
});

after(async () => {
  if (srv.child.exitCode === null) srv.child.kill('SIGKILL');
  await srv.exited;
  await tmp.remove();
});

async function addClient(name: string, ...flags: string[]): Promise<string> {
  const r = await obnamServerOk(['client', 'add', name, '--dir', dir, ...flags]);
  assert.match(r.stdout, /^[A-Za-z0-9_-]{43}\n$/, 'the token alone on stdout');
  return r.stdout.trim();
}

function env(token: string, extra: Record<string, string> = {}): { env: Record<string, string> } {
  return {
    env: {
      OBNAM_REPO: srv.url,
      OBNAM_TOKEN: token,
      OBNAM_SERVER_FINGERPRINT: fingerprint,
      OBNAM_PASSPHRASE: 'correct horse',
      ...extra,
    },
  };
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line of error, got:\n${stderr}`);
  return lines[0]!;
}

describe('obnam-server command line', () => {
  it('init refuses a directory that is not empty, or already initialised', async () => {
    const r = await obnamServer(['init', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already an obnam-server directory/);
  });

  it('client add, list and remove; a removed client is refused at once', async () => {
    const token = await addClient('temporary');
    assert.equal((await obnam(['init'], env(token))).code, 0);
    const list = await obnamServerOk(['client', 'list', '--dir', dir, '--json']);
    assert.ok((JSON.parse(list.stdout) as { name: string }[]).some((c) => c.name === 'temporary'));
    const dup = await obnamServer(['client', 'add', 'temporary', '--dir', dir]);
    assert.equal(dup.code, 1);
    assert.equal(dup.stdout, '');
    await obnamServerOk(['client', 'remove', 'temporary', '--dir', dir]);
    const after = await obnam(['list'], env(token));
    assert.equal(after.code, 1);
    assert.match(oneLine(after.stderr), /refused the access token/);
    const gone = await obnamServerOk(['client', 'list', '--dir', dir]);
    assert.doesNotMatch(gone.stdout, /temporary/);
  });

  it('commands find the server directory from --dir, the config file or the current directory', async () => {
    const a = await obnamServerOk(['fingerprint', '--dir', dir]);
    const b = await obnamServerOk(['fingerprint', '--config', path.join(dir, 'obnam-server.yaml')]);
    const c = await obnamServerOk(['fingerprint'], { cwd: dir });
    assert.equal(a.stdout.trim(), fingerprint);
    assert.equal(b.stdout, a.stdout);
    assert.equal(c.stdout, a.stdout);
  });
});

describe('obnam against a server', () => {
  it('round trip: init, backup, list, ls, restore, fsck, and dedup on the second backup', async () => {
    const e = env(await addClient('laptop'));
    const src = path.join(tmp.path, 'src');
    await makeTree(src, 'laptop', { bigBytes: 3_000_000 });
    await obnamOk(['init'], e);
    const first = JSON.parse((await obnamOk(['backup', src, '--json'], e)).stdout) as { snapshot: string; summary: { newChunks: number } };
    assert.ok(first.summary.newChunks >= 3);

    const list = JSON.parse((await obnamOk(['list', '--json'], e)).stdout) as unknown[];
    assert.equal(list.length, 1);
    const ls = await obnamOk(['ls', 'latest'], e);
    for (const name of ['hello.txt', 'random.bin', 'f4', 'link']) assert.match(ls.stdout, new RegExp(name));

    const target = path.join(tmp.path, 'restored');
    await obnamOk(['restore', 'latest', target], e);
    await assertSameTree(src, path.join(target, src));

    await fs.appendFile(path.join(src, 'hello.txt'), 'a change\n');
    await fs.writeFile(path.join(src, 'new.txt'), 'a new small file\n');
    const second = JSON.parse((await obnamOk(['backup', src, '--json'], e)).stdout) as { snapshot: string; summary: { newChunks: number; filesRead: number } };
    assert.equal(second.summary.newChunks, 0, 'unchanged large files are not stored again');
    assert.ok(second.summary.filesRead <= 2, `only changed files are read (${second.summary.filesRead})`);

    const target2 = path.join(tmp.path, 'restored2');
    await obnamOk(['restore', second.snapshot.slice(0, 8), target2], e);
    await assertSameTree(src, path.join(target2, src));

    const fsck = await obnamOk(['fsck'], e);
    assert.match(fsck.stdout, /checked 2 snapshots.*no problems found/);
  });

  it('key add, list and remove work remotely', async () => {
    const e = env(await addClient('keys'));
    await obnamOk(['init'], e);
    await obnamOk(['key', 'add'], { env: { ...e.env, OBNAM_NEW_PASSPHRASE: 'second' } });
    const keys = JSON.parse((await obnamOk(['key', 'list', '--json'], e)).stdout) as { id: string; current: boolean }[];
    assert.equal(keys.length, 2);
    const other = keys.find((k) => !k.current)!;
    await obnamOk(['key', 'remove', other.id.slice(0, 8)], e);
    assert.equal((JSON.parse((await obnamOk(['key', 'list', '--json'], e)).stdout) as unknown[]).length, 1);
  });

  it('an append-only client backs up and restores, but cannot delete: key remove fails cleanly', async () => {
    const e = env(await addClient('appender', '--append-only'));
    const src = path.join(tmp.path, 'src-ao');
    await makeTree(src, 'appender');
    await obnamOk(['init'], e);
    await obnamOk(['backup', src], e);
    await obnamOk(['key', 'add'], { env: { ...e.env, OBNAM_NEW_PASSPHRASE: 'second' } });
    const keys = JSON.parse((await obnamOk(['key', 'list', '--json'], e)).stdout) as { id: string; current: boolean }[];
    const other = keys.find((k) => !k.current)!;
    const r = await obnam(['key', 'remove', other.id], e);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /append-only/);
    assert.equal((JSON.parse((await obnamOk(['key', 'list', '--json'], e)).stdout) as unknown[]).length, 2, 'the key is still there');
    const target = path.join(tmp.path, 'restored-ao');
    await obnamOk(['restore', 'latest', target], e);
    await assertSameTree(src, path.join(target, src));
  });

  it('prune over the server: a full client collects a forgotten snapshot; an append-only client may back up but not prune (exit 1)', async () => {
    const token = await addClient('collector');
    const e = env(token);
    const src = path.join(tmp.path, 'src-gc');
    await makeTree(src, 'collector one');
    await obnamOk(['init'], e);
    await obnamOk(['backup', src], e);
    await fs.rm(src, { recursive: true });
    await makeTree(src, 'collector two');
    await obnamOk(['backup', src], e);
    const snaps = JSON.parse((await obnamOk(['list', '--json'], e)).stdout) as { id: string }[];
    const store = await openStore({ type: 'http', url: srv.url, token, fingerprint });
    await store.delete('snapshot', snaps[0]!.id); // forget the first (what obnam forget does)
    await store.close();
    const marked = JSON.parse((await obnamOk(['prune', '--json'], e)).stdout);
    assert.equal(marked.marked.plans.length, 1, 'the server lists trees and chunks still in its open pack, and keeps gcplan objects');
    const swept = JSON.parse((await obnamOk(['prune', '--exclusive', '--json'], e)).stdout);
    assert.equal(swept.swept[0].plan, marked.marked.plans[0]);
    assert.ok(swept.deleted.chunks > 0);
    // The client does not repack a server's storage: the report says the server does (or, once HttpStore can ask it to, it did).
    assert.ok(swept.repack.done || /the server gives the space back/.test(swept.repack.note), JSON.stringify(swept.repack));
    await obnamOk(['fsck'], e);
    const target = path.join(tmp.path, 'restored-gc');
    await obnamOk(['restore', 'latest', target], e);
    await assertSameTree(src, path.join(target, src));

    const ao = env(await addClient('gc-appender', '--append-only'));
    await obnamOk(['init'], ao);
    await obnamOk(['backup', src], ao);
    const r = await obnam(['prune'], ao);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /prune needs a client allowed to delete: .*append-only/);
    const repair = await obnam(['fsck', '--repair'], ao);
    assert.equal(repair.code, 1);
    assert.match(oneLine(repair.stderr), /fsck --repair needs a client allowed to delete: .*append-only/);
    assert.equal(repair.stdout, '', 'refused before the check');
    await obnamOk(['backup', src], ao);
  });

  it('a wrong token gives one clear line and exit 1', async () => {
    const r = await obnam(['list'], env('a'.repeat(43)));
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /^obnam: .*refused the access token/);
  });

  it('a wrong fingerprint gives one clear line and exit 1', async () => {
    const e = env(await addClient('pinned'));
    const wrong = fingerprint.replace(/^../, fingerprint.startsWith('00') ? '11' : '00');
    const r = await obnam(['list'], { env: { ...e.env, OBNAM_SERVER_FINGERPRINT: wrong } });
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /^obnam: the server's certificate does not match the expected fingerprint/);
    // Any of the accepted spellings of the right fingerprint works.
    await obnamOk(['init'], { env: { ...e.env, OBNAM_SERVER_FINGERPRINT: fingerprint.replaceAll(':', '').toLowerCase() } });
    await obnamOk(['list', '--server-fingerprint', `sha256 Fingerprint=${fingerprint}`], e);
  });

  it('an obnam config file can hold the server, token and fingerprint', async () => {
    const token = await addClient('configured');
    const cfg = path.join(tmp.path, 'client.yaml');
    await fs.writeFile(cfg, `repo: ${srv.url}\ntoken: ${token}\nserver_fingerprint: "${fingerprint}"\n`);
    await obnamOk(['init', '--config', cfg], { env: { OBNAM_PASSPHRASE: 'p' } });
    await obnamOk(['list', '--config', cfg], { env: { OBNAM_PASSPHRASE: 'p' } });
  });

  it('the token can come from a file: --token-file, OBNAM_TOKEN_FILE or token_file in the config', async () => {
    const token = await addClient('token-file');
    const file = path.join(tmp.path, 'token-file.token');
    await fs.writeFile(file, `  ${token}\n\n`, { mode: 0o600 });
    const base = { OBNAM_REPO: srv.url, OBNAM_SERVER_FINGERPRINT: fingerprint, OBNAM_PASSPHRASE: 'p' };
    await obnamOk(['init', '--token-file', file], { env: base });
    await obnamOk(['list'], { env: { ...base, OBNAM_TOKEN_FILE: file } });
    const cfg = path.join(tmp.path, 'token-file.yaml');
    await fs.writeFile(cfg, `token_file: ${path.basename(file)}\n`);
    await obnamOk(['list', '--config', cfg], { env: base });

    // Precedence: --token, --token-file, OBNAM_TOKEN, OBNAM_TOKEN_FILE, token, token_file (as for the passphrase).
    const wrong = 'b'.repeat(43);
    await obnamOk(['list', '--token-file', file], { env: { ...base, OBNAM_TOKEN: wrong } });
    await fs.writeFile(cfg, `token: ${wrong}\n`);
    await obnamOk(['list', '--config', cfg], { env: { ...base, OBNAM_TOKEN_FILE: file } });
    const refused = await obnam(['list', '--token', wrong, '--token-file', file], { env: base });
    assert.equal(refused.code, 1);
    assert.match(oneLine(refused.stderr), /refused the access token \(check --token, --token-file, /);

    // A token file that cannot be read, or holds no token, is one clear line.
    const missing = await obnam(['list', '--token-file', path.join(tmp.path, 'nope')], { env: base });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr.split('\n')[0]!, /^obnam: cannot read token file .*nope: ENOENT/);
    const empty = path.join(tmp.path, 'empty.token');
    await fs.writeFile(empty, '\n', { mode: 0o600 });
    const r = await obnam(['list'], { env: { ...base, OBNAM_TOKEN_FILE: empty } });
    assert.equal(r.code, 1);
    assert.match(r.stderr.split('\n')[0]!, /^obnam: token file .*empty\.token is empty/);

    // Like a passphrase file: readable by others draws a warning, writable by others is refused.
    await fs.chmod(file, 0o644);
    const readable = await obnamOk(['list', '--token-file', file], { env: base });
    assert.match(readable.stderr, /warning: token file .* can be read by others \(mode 0644\); chmod 600/);
    await fs.chmod(file, 0o666);
    const writable = await obnam(['list', '--token-file', file], { env: base });
    assert.equal(writable.code, 1);
    assert.match(oneLine(writable.stderr), /^obnam: token file .* can be changed by others \(mode 0666\): not using it/);
  });
});

describe('obnam-server serve', () => {
  it('serves plain HTTP only with --insecure-http', async () => {
    const plain = await spawnServer(dir, '127.0.0.1:0', ['--insecure-http']);
    try {
      assert.match(plain.url, /^http:\/\//);
      const e = env(await addClient('behind-proxy'));
      const pinned = await obnam(['--insecure-http', 'init'], { env: { ...e.env, OBNAM_REPO: plain.url } });
      assert.equal(pinned.code, 1);
      assert.match(pinned.stderr, /plain HTTP: a server fingerprint or CA file needs an https:\/\/ URL/);
      await obnamOk(['--insecure-http', 'init'], { env: { ...e.env, OBNAM_REPO: plain.url, OBNAM_SERVER_FINGERPRINT: undefined } });
    } finally {
      plain.child.kill('SIGTERM');
      assert.equal(await plain.exited, 0);
    }
  });

  it('stops cleanly on SIGTERM', async () => {
    srv.child.kill('SIGTERM');
    assert.equal(await srv.exited, 0);
    assert.match(srv.stderr(), /obnam-server: stopped/);
    assert.match(srv.stdout(), /shutting down/);
  });
});
