/**
 * Real obnam-servers for tests: in-process (startServer, for API and store
 * tests) or as a child process running bin/obnam-server (for CLI, signal and
 * crash tests). Both listen on 127.0.0.1 port 0 over HTTPS.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as https from 'node:https';
import * as path from 'node:path';
import { addClient } from '../../server/admin.js';
import type { Limits } from '../../server/config.js';
import type { Kind } from '../../lib/format/version.js';
import { initServerDir } from '../../server/init.js';
import { LocalStore } from '../../lib/store/local.js';
import { serverDir } from '../../server/layout.js';
import { RunningServer, StartOptions, startServer } from '../../server/start.js';
import { baseEnv, obnamOk, ROOT, runCommand, RunOptions, RunResult } from './cli.js';
import { TempDir, tempDir } from './tmp.js';
import { assertSameTree } from './trees.js';

export const OBNAM_SERVER = path.join(ROOT, 'bin', 'obnam-server');

export interface TestServer {
  dir: string;
  tmp: TempDir;
  server: RunningServer;
  url: string;
  fingerprint: string;
  /** Log lines (JSON) when started with a log level. */
  logs: string[];
  addClient(name: string, appendOnly?: boolean): Promise<string>;
  /** Directory of a client's namespace. */
  namespaceDir(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** A fresh server directory with a running in-process server. */
export async function startTestServer(
  opts: { limits?: Partial<Limits>; logLevel?: string; clock?: () => number; backgroundRepack?: StartOptions['backgroundRepack'] } = {},
): Promise<TestServer> {
  const tmp = await tempDir('obnam-server-');
  const dir = path.join(tmp.path, 'server');
  await initServerDir(dir);
  const logs: string[] = [];
  const server = await startServer({
    dir,
    listen: '127.0.0.1:0',
    limits: opts.limits,
    clock: opts.clock,
    backgroundRepack: opts.backgroundRepack,
    logLevel: opts.logLevel ?? 'silent',
    logStream: { write: (l: string) => void logs.push(l) },
  });
  return {
    dir,
    tmp,
    server,
    url: server.url,
    fingerprint: server.fingerprint!,
    logs,
    addClient: async (name, appendOnly = false) => (await addClient(serverDir(dir), name, appendOnly)).token,
    namespaceDir: (name) => namespaceDirOf(dir, name),
    stop: async () => {
      await server.close();
      await tmp.remove();
    },
  };
}

export async function namespaceDirOf(dir: string, name: string): Promise<string> {
  const file = JSON.parse(await fs.readFile(path.join(dir, 'clients.json'), 'utf8')) as { clients: { name: string; namespace: string }[] };
  const c = file.clients.find((x) => x.name === name);
  if (!c) throw new Error(`no client ${name}`);
  return path.join(dir, 'data', c.namespace);
}

/** Runs `obnam-server ARGS`. */
export function obnamServer(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runCommand(process.execPath, [OBNAM_SERVER, ...args], opts);
}

export async function obnamServerOk(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await obnamServer(args, opts);
  if (r.code !== 0) throw new Error(`obnam-server ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  port: number;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  exited: Promise<number | string>;
}

/** Starts `obnam-server serve --dir DIR --listen LISTEN` and waits until it listens. */
export async function spawnServer(dir: string, listen = '127.0.0.1:0', extra: string[] = [], env: Record<string, string | undefined> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [OBNAM_SERVER, 'serve', '--dir', dir, '--listen', listen, ...extra], {
    env: baseEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (https?:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`obnam-server exited (${code}) before listening:\n${err}`)));
  });
  return { child, url, port: Number(new URL(url).port), stdout: () => out, stderr: () => err, exited };
}

/** Flips one bit in the middle of a stored object, on disk; returns the file it changed. */
export async function flipByte(namespace: string, kind: Kind, id: string): Promise<string> {
  const store = await LocalStore.open(namespace);
  const loc = store.locate(kind, id);
  await store.close();
  if (!loc) throw new Error(`${kind} ${id} is not stored in ${namespace}`);
  const fh = await fs.open(loc.file, 'r+');
  try {
    const size = loc.length >= 0 ? loc.length : (await fh.stat()).size - loc.offset;
    const at = loc.offset + Math.floor(size / 2);
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0]! ^= 0x10;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
  return loc.file;
}

/** Bytes in the regular files under `dir` (a local namespace's size on disk). */
export async function bytesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await fs.stat(path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))).size;
  }
  return n;
}

/** Peak resident memory (VmHWM) of a process, in bytes (Linux). */
export async function peakRss(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Every file under `dir` with a digest of its content: to show that nothing changed. */
export async function treeDigest(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out.set(path.relative(dir, p) + '/', 'dir');
        await walk(p);
      } else {
        out.set(path.relative(dir, p), createHash('sha256').update(await fs.readFile(p)).digest('hex'));
      }
    }
  };
  await walk(dir);
  return out;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTPS request with no client logic in between (no retries, no checks but TLS pinning off). */
export function rawRequest(
  url: string,
  opts: { method?: string; path: string; token?: string; headers?: Record<string, string | number>; body?: Buffer; timeoutMs?: number; localAddress?: string },
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        hostname: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path,
        rejectUnauthorized: false,
        agent: false,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        ...(opts.timeoutMs ? { signal: AbortSignal.timeout(opts.timeoutMs) } : {}),
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body ? { 'content-length': opts.body.length } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A client of a server directory and one of its snapshots, with a copy of what that snapshot holds. */
export interface KeptSnapshot {
  token: string;
  fingerprint: string;
  passphrase: string;
  kept: string;
  /** The backed-up directory (its absolute path inside a restore) and the copy of it. */
  src: string;
  want: string;
}

/**
 * Starts obnam-server on `dir` (with `env`, e.g. S3 credentials), runs a
 * full fsck as the client and restores the kept snapshot, comparing it with
 * its copy; stops the server.
 */
export async function assertKeptSnapshotServed(dir: string, k: KeptSnapshot, home: string, label: string, env: Record<string, string> = {}): Promise<void> {
  const srv = await spawnServer(dir, '127.0.0.1:0', [], env);
  try {
    const opts = { env: { OBNAM_REPO: srv.url, OBNAM_TOKEN: k.token, OBNAM_SERVER_FINGERPRINT: k.fingerprint, OBNAM_PASSPHRASE: k.passphrase, HOME: home } };
    await obnamOk(['fsck'], opts);
    const out = path.join(home, `restored-${label}`);
    await obnamOk(['restore', k.kept, out], opts);
    await assertSameTree(k.want, path.join(out, k.src));
    await fs.rm(out, { recursive: true });
  } finally {
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
}
