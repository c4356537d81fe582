/**
 * obnam mount --daemon and obnam umount with the real FUSE file system:
 * the command returns once the mount is ready, a detached process (its own
 * session, no terminal, stdio closed or to the log, no passphrase in its
 * arguments or environment, no zombie children) serves it, and unmounting
 * with fusermount -u or obnam umount ends that process. Failures to mount
 * exit 1 with the reason and leave nothing running. Every test leaves
 * nothing mounted and no process behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { obnam, obnamOk } from './helpers/cli.js';
import { exec, fuseAvailable, mountedAt, PASSPHRASE, repoEnv } from './helpers/mount.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A process's state letter (R, S, Z...), or undefined once it is gone. */
async function processState(pid: number): Promise<string | undefined> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
}

/** Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ... */
async function statFields(pid: number): Promise<string[]> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Children of a process, with their states. */
async function childrenOf(pid: number): Promise<{ pid: number; state: string }[]> {
  const out: { pid: number; state: string }[] = [];
  for (const d of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = await statFields(Number(d)).catch(() => undefined);
    if (f && Number(f[1]) === pid) out.push({ pid: Number(d), state: f[0]! });
  }
  return out;
}

/** Waits until the process has ended (gone, or a zombie waiting for init to reap it). */
async function waitForExit(pid: number, ms = 20_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await pause(100)) {
    const s = await processState(pid);
    if (s === undefined || s === 'Z' || s === 'X') return true;
  }
  return false;
}

/** Leaves nothing behind: unmounts lazily if still mounted, then ends the daemon. */
async function cleanup(mnt: string, pid: number | undefined): Promise<void> {
  if (await mountedAt(mnt)) await exec('fusermount', ['-u', '-z', mnt]);
  if (pid && !(await waitForExit(pid, 5000))) {
    process.kill(pid, 'SIGTERM');
    if (!(await waitForExit(pid, 10_000))) process.kill(pid, 'SIGKILL');
  }
}

describe('obnam mount --daemon and obnam umount', { skip: !fuseAvailable && 'no /dev/fuse' }, () => {
  let tmp: TempDir;
  let data: string;
  let repo: string;
  let mnt: string;
  let snapshot: string;

  before(async () => {
    tmp = await tempDir();
    data = path.join(tmp.path, 'data');
    repo = path.join(tmp.path, 'repo');
    mnt = path.join(tmp.path, 'mnt');
    await fs.mkdir(path.join(data, 'sub'), { recursive: true });
    await fs.mkdir(mnt);
    await fs.writeFile(path.join(data, 'sub', 'file.txt'), 'in a daemon mount\n');
    await obnamOk(['init'], { env: repoEnv(repo) });
    snapshot = JSON.parse((await obnamOk(['backup', '--json', data], { env: repoEnv(repo) })).stdout).snapshot;
  });
  after(async () => {
    await tmp?.remove();
  });

  it('returns once mounted; a detached process serves until fusermount -u, then exits', async () => {
    const passFile = path.join(tmp.path, 'passphrase');
    await fs.writeFile(passFile, PASSPHRASE + '\n', { mode: 0o600 });
    const log = path.join(tmp.path, 'daemon.log');
    let pid: number | undefined;
    try {
      const r = await obnamOk(['mount', '--daemon', '--json', '--log', log, '--passphrase-file', passFile, mnt], {
        env: { OBNAM_REPO: repo },
      });
      const out = JSON.parse(r.stdout) as { mountpoint: string; pid: number };
      pid = out.pid;
      assert.equal(out.mountpoint, mnt);
      assert.match(r.stderr, new RegExp(`mounted read-only at ${mnt}.*daemon pid ${pid}`));
      // Ready when the command returned: no waiting.
      assert.ok(await mountedAt(mnt), 'mounted when the command returns');
      const file = path.join(mnt, 'ids', snapshot, data.slice(1), 'sub', 'file.txt');
      assert.equal(await fs.readFile(file, 'utf8'), 'in a daemon mount\n');

      // Detached: a session of its own, stdin from /dev/null, output to the log.
      const [state, , pgrp, session, tty] = await statFields(pid);
      assert.notEqual(state, 'Z');
      assert.equal(Number(session), pid, 'session leader');
      assert.equal(Number(pgrp), pid);
      assert.equal(Number(tty), 0, 'no controlling terminal');
      assert.equal(await fs.readlink(`/proc/${pid}/fd/0`), '/dev/null');
      assert.equal(await fs.readlink(`/proc/${pid}/fd/2`), log);
      assert.equal(await fs.readlink(`/proc/${pid}/cwd`), '/', 'keeps no directory busy');
      // The passphrase reached it over the IPC channel only.
      const environ = await fs.readFile(`/proc/${pid}/environ`, 'latin1');
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'latin1');
      assert.ok(!environ.includes(PASSPHRASE) && !cmdline.includes(PASSPHRASE), 'no passphrase in its environment or arguments');
      await fs.rm(passFile); // not needed any more: it was read before detaching
      assert.deepEqual((await childrenOf(pid)).filter((c) => c.state === 'Z'), [], 'no zombie children');
      assert.match(await fs.readFile(log, 'utf8'), /mounted read-only at/);

      const u = await exec('fusermount', ['-u', mnt]);
      assert.equal(u.code, 0, u.stderr);
      assert.ok(await waitForExit(pid), 'the daemon exits once unmounted');
      assert.equal(await mountedAt(mnt), undefined);
    } finally {
      await cleanup(mnt, pid);
    }
  });

  it('obnam umount unmounts it (a busy mount: the reason); the daemon exits', async () => {
    let pid: number | undefined;
    try {
      const r = await obnamOk(['mount', '--daemon', '--json', mnt], { env: repoEnv(repo) });
      pid = (JSON.parse(r.stdout) as { pid: number }).pid;
      assert.ok(await mountedAt(mnt));
      // Another mount on the same directory fails with the reason; the first one is untouched.
      const again = await obnam(['mount', '--daemon', mnt], { env: repoEnv(repo) });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already mounted/);
      // Busy: the reason, and still mounted.
      const user = spawn('sleep', ['60'], { cwd: path.join(mnt, 'latest'), stdio: 'ignore' });
      try {
        const busy = await obnam(['umount', mnt]);
        assert.equal(busy.code, 1);
        assert.match(busy.stderr, /cannot unmount .*busy/);
        assert.ok(await mountedAt(mnt));
      } finally {
        user.kill('SIGKILL');
        await new Promise((r) => user.once('close', r));
      }
      await obnamOk(['umount', mnt]);
      assert.equal(await mountedAt(mnt), undefined);
      assert.ok(await waitForExit(pid), 'the daemon exits once unmounted');
    } finally {
      await cleanup(mnt, pid);
    }
  });

  it('obnam umount refuses what is not an obnam mount', async () => {
    const notMounted = await obnam(['umount', mnt]);
    assert.equal(notMounted.code, 1);
    assert.match(notMounted.stderr, /is not a mount point/);
    const missing = await obnam(['umount', path.join(tmp.path, 'no-such-dir')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does not exist/);
    const proc = await obnam(['umount', '/proc']);
    assert.equal(proc.code, 1);
    assert.match(proc.stderr, /\/proc is not an obnam mount \(it is a proc file system\)/);
  });

  it('a mount that fails exits 1 with the reason and leaves nothing running', async () => {
    const full = path.join(tmp.path, 'full');
    await fs.mkdir(full);
    await fs.writeFile(path.join(full, 'something'), 'x');
    const before = await daemonPids(tmp.path);
    const r = await obnam(['mount', '--daemon', full], { env: repoEnv(repo) });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not empty; mount on an empty directory/);
    const wrong = await obnam(['mount', '--daemon', mnt], { env: { OBNAM_REPO: repo, OBNAM_PASSPHRASE: 'wrong' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong passphrase/);
    const noRepo = await obnam(['mount', '--daemon', mnt], { env: repoEnv(path.join(tmp.path, 'none')) });
    assert.equal(noRepo.code, 1);
    assert.match(noRepo.stderr, /no obnam repository/);
    await pause(200);
    assert.deepEqual(await daemonPids(tmp.path), before, 'no daemon left running');
    assert.equal(await mountedAt(mnt), undefined);
  });
});

/** Running `obnam mount --daemon-child` processes for mount points below a directory. */
async function daemonPids(below: string): Promise<number[]> {
  const out: number[] = [];
  for (const d of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const cmd = await fs.readFile(`/proc/${d}/cmdline`, 'latin1').catch(() => '');
    const state = await processState(Number(d));
    if (cmd.includes('--daemon-child') && cmd.includes(below) && state !== 'Z') out.push(Number(d));
  }
  return out.sort();
}
