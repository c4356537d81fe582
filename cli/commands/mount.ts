/**
 * obnam mount MOUNTPOINT: every snapshot as a read-only file system, in the
 * foreground until it is unmounted (fusermount -u MOUNTPOINT, obnam umount,
 * Ctrl-C or SIGTERM; all of them leave nothing mounted).
 *
 * With --daemon the command returns once the file system is mounted (exit
 * 0), or fails with the reason (exit 1), and a detached process serves the
 * mount until it is unmounted, then exits. The passphrase is read first, by
 * the command, and handed to that process over an IPC channel (never in its
 * arguments or environment); the process runs in a session of its own, with
 * stdin closed and its messages going to --log FILE (or nowhere).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isSharedVersion } from '../../lib/format/version.js';
import { describeError, ErrorCode, ObnamError } from '../../lib/errors.js';
import { poolReader } from '../../lib/fsview/objects.js';
import { DEFAULT_CACHE_BYTES, FsView } from '../../lib/fsview/view.js';
import type { Repository } from '../../lib/repo/repository.js';
import { startRepoPool } from '../../lib/engine-workers/start.js';
import type { Mounted } from '../../mount/mount.js';
import { Context, describeLocation, GlobalArgs, makeContext, openRepository, readPassphrase } from '../context.js';
import { EXIT_INTERRUPTED, EXIT_OK } from '../exit.js';
import { formatBytes } from '../progress.js';
import { cancelSignal } from '../signals.js';

export interface MountArgs extends GlobalArgs {
  mountpoint: string;
  'cache-size'?: string;
  debug?: boolean;
  daemon?: boolean;
  log?: string;
  /** Internal: this process is the daemon started by `mount --daemon`. */
  'daemon-child'?: boolean;
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** "512M", "2G", "1048576", "64MiB" to bytes. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(s);
  if (!m) throw new ObnamError('USAGE', `bad size ${JSON.stringify(s)}: expected a number with an optional K, M, G or T`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}

const cacheBytesOf = (args: MountArgs) => (args['cache-size'] === undefined ? DEFAULT_CACHE_BYTES : parseSize(args['cache-size']));

export async function mountCommand(args: MountArgs): Promise<number> {
  if (args['daemon-child']) return daemonChild();
  cacheBytesOf(args); // a bad size fails before anything else
  if (args.daemon) return startDaemon(args);
  if (args.log) throw new ObnamError('USAGE', '--log is for --daemon (in the foreground, messages go to stderr)');
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  return serve(ctx, repo, args, (line) => log(line));
}

const log = (line: string) => process.stderr.write(`obnam mount: ${line}\n`);

/** Mounts and serves until unmounted; `onMounted` hears once the file system is ready. */
async function serve(ctx: Context, repo: Repository, args: MountArgs, onMounted: (line: string, m: Mounted) => void): Promise<number> {
  const cacheBytes = cacheBytesOf(args);
  const signal = cancelSignal();
  const pool = startRepoPool(repo);
  let mounted: Mounted | undefined;
  try {
    const view = await FsView.open({ ...poolReader(pool, isSharedVersion(repo.formatVersion) ? repo : undefined), listSnapshotIds: () => repo.listSnapshotIds(), refresh: () => repo.refresh() }, { cacheBytes, onWarning: log });
    if (signal.aborted) return EXIT_OK;
    // Loaded here, not at startup: the other commands must work where libfuse is missing.
    const { mountView } = await import('../../mount/mount.js');
    mounted = await mountView({ view, mountpoint: args.mountpoint, log, debug: args.debug });
    const m = mounted;
    signal.addEventListener('abort', () => m.unmount().catch((e: unknown) => log((e as Error).message)), { once: true });
    if (signal.aborted) await m.unmount();
    onMounted(
      `${view.snapshots.length} snapshots of ${describeLocation(ctx.spec)} mounted read-only at ${m.mountpoint} ` +
        `(cache ${formatBytes(cacheBytes)}${m.nativePatched ? '' : '; unpatched fuse-native: times in milliseconds, UTF-8 names only'}); ` +
        `unmount with: fusermount -u ${m.mountpoint}`,
      m,
    );
    await m.closed;
    return EXIT_OK;
  } finally {
    await mounted?.unmount();
    await pool.close();
    await repo.close();
  }
}

// ---- --daemon ----

/** Parent to daemon: what to mount, and the passphrase. */
interface StartMessage {
  type: 'start';
  args: MountArgs;
  passphrase: string;
}
/** Daemon to parent: mounted, or why not. */
type DaemonMessage = { type: 'ready'; mountpoint: string; line: string } | { type: 'error'; code: ErrorCode; message: string };

const OBNAM_BIN = fileURLToPath(new URL('../../../bin/obnam', import.meta.url));

async function startDaemon(args: MountArgs): Promise<number> {
  const ctx = await makeContext(args);
  const passphrase = await readPassphrase(ctx);
  let logFd: number | 'ignore' = 'ignore';
  if (args.log) {
    try {
      logFd = fs.openSync(args.log, 'a', 0o600);
    } catch (e) {
      throw new ObnamError('USAGE', `cannot open log file ${args.log}: ${describeError(e)}`);
    }
  }
  const { daemon: _d, log: _l, _: _u, $0: _s, ...rest } = args as MountArgs & { _?: unknown; $0?: unknown };
  const child = spawn(process.execPath, [OBNAM_BIN, 'mount', '--daemon-child', args.mountpoint], {
    detached: true, // a session of its own: no terminal, no signals from it
    stdio: ['ignore', logFd, logFd, 'ipc'],
    cwd: process.cwd(),
    env: daemonEnv(),
  });
  if (typeof logFd === 'number') fs.closeSync(logFd);
  const start: StartMessage = { type: 'start', args: rest as MountArgs, passphrase };
  const reply = await daemonReply(child, start);
  if (reply.type === 'error') throw new ObnamError(reply.code, reply.message);
  child.disconnect();
  child.unref();
  if (ctx.json) process.stdout.write(JSON.stringify({ mountpoint: reply.mountpoint, pid: child.pid }) + '\n');
  log(`${reply.line} (daemon pid ${child.pid}${args.log ? `, log ${args.log}` : ''})`);
  return EXIT_OK;
}

/** The daemon's environment: ours, without passphrases (it gets its passphrase over the IPC channel). */
function daemonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OBNAM_PASSPHRASE;
  delete env.OBNAM_NEW_PASSPHRASE;
  return env;
}

/** Sends the start message and waits for the daemon's answer (or its end, or our interruption). */
function daemonReply(child: ChildProcess, start: StartMessage): Promise<DaemonMessage> {
  const signal = cancelSignal();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      child.kill('SIGTERM');
      reject(new ObnamError('ABORTED', 'interrupted before the file system was mounted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => signal.removeEventListener('abort', onAbort);
    child.once('message', (m: DaemonMessage) => {
      done();
      resolve(m);
    });
    child.once('error', (e) => {
      done();
      reject(new ObnamError('INTERNAL', `cannot start the mount process: ${describeError(e)}`));
    });
    child.once('exit', (code, sig) => {
      done();
      reject(new ObnamError('IO', `the mount process ended before mounting (${sig ?? `exit ${code}`}); its messages go to --log FILE`));
    });
    child.send(start);
  });
}

/** The detached process: waits for its orders, mounts, reports, and serves until unmounted. */
async function daemonChild(): Promise<number> {
  if (!process.send) throw new ObnamError('USAGE', '--daemon-child is internal to mount --daemon');
  const send = (m: DaemonMessage) => new Promise<void>((resolve) => process.send!(m, undefined, {}, () => resolve()));
  const start = await new Promise<StartMessage>((resolve, reject) => {
    process.once('message', (m: StartMessage) => resolve(m));
    process.once('disconnect', () => reject(new ObnamError('ABORTED', 'mount --daemon went away before sending its orders')));
  });
  let ready = false;
  try {
    const ctx = await makeContext(start.args);
    const repo = await openRepository(ctx, start.passphrase);
    return await serve(ctx, repo, start.args, (line, m) => {
      ready = true;
      log(line);
      process.chdir('/'); // keep no directory busy
      void send({ type: 'ready', mountpoint: m.mountpoint, line }).then(() => {
        if (process.connected) process.disconnect();
      });
    });
  } catch (e) {
    if (!ready && process.connected) {
      const code: ErrorCode = e instanceof ObnamError ? e.code : 'INTERNAL';
      await send({ type: 'error', code, message: e instanceof ObnamError ? e.message : `internal error: ${describeError(e)}` });
      if (process.connected) process.disconnect();
    }
    if (e instanceof ObnamError && e.code === 'ABORTED') return EXIT_INTERRUPTED;
    throw e;
  }
}
