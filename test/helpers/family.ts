/**
 * Members of a shared repository (format-spec/sharing.md) for the sharing
 * tests: each member is a person of their own, with a home directory, an
 * identity made by `obnam identity new` at the default place
 * ($XDG_CONFIG_HOME/obnam/identity, with the suite's cheap KDF cost), an
 * identity passphrase nobody else knows, their own obnam cache, and, on a
 * server, their own client token. `run` runs the real CLI as that member.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { obnam, obnamOk, RunOptions, RunResult } from './cli.js';

export interface Member {
  name: string;
  home: string;
  /** The identity's public key text (obnam-pk1...). */
  publicKey: string;
  /** The environment every command of this member runs with. */
  env: Record<string, string>;
  /** obnam ARGS as this member; resolves whatever the exit code. */
  run(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** obnam ARGS as this member; fails unless the exit code is `expect` (default 0). */
  ok(args: string[], opts?: RunOptions, expect?: number): Promise<RunResult>;
  /** obnam --json ARGS as this member, parsed. */
  json<T = unknown>(args: string[]): Promise<T>;
}

export interface MemberOptions {
  /** The repository (directory or URL) the member uses. */
  repo: string;
  /** Extra environment: a server's OBNAM_TOKEN and OBNAM_SERVER_FINGERPRINT. */
  env?: Record<string, string>;
}

/** Makes a member under `root`/NAME with a fresh identity. */
export async function makeMember(root: string, name: string, opts: MemberOptions): Promise<Member> {
  const home = path.join(root, name);
  await fs.mkdir(path.join(home, 'config'), { recursive: true });
  await fs.mkdir(path.join(home, 'cache'), { recursive: true });
  const env: Record<string, string> = {
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, 'config'),
    XDG_CACHE_HOME: path.join(home, 'cache'),
    OBNAM_PASSPHRASE: `${name}'s own identity passphrase`,
    OBNAM_REPO: opts.repo,
    ...opts.env,
  };
  const made = await obnamOk(['identity', 'new'], { env });
  const publicKey = made.stdout.trim();
  const member: Member = {
    name,
    home,
    publicKey,
    env,
    run: (args, o = {}) => obnam(args, { ...o, env: { ...env, ...o.env } }),
    ok: (args, o = {}, expect = 0) => obnamOk(args, { ...o, env: { ...env, ...o.env } }, expect),
    json: async <T>(args: string[]) => JSON.parse((await obnamOk(['--json', ...args], { env })).stdout) as T,
  };
  return member;
}

/** The snapshot id a `backup --json` printed. */
export async function backupAs(m: Member, paths: string[], extra: string[] = []): Promise<string> {
  const r = await m.ok(['backup', '--json', ...extra, ...paths]);
  return (JSON.parse(r.stdout) as { snapshot: string }).snapshot;
}

/** One row of `obnam list --json` in a shared repository. */
export interface ListedSnapshot {
  id: string;
  hostname?: string;
  owner?: string;
  shared_with?: string[];
  readable?: boolean;
  damaged?: boolean;
}

/** The ids `obnam list --json` shows a member as readable (not damaged, not marked unreadable). */
export async function readableIds(m: Member): Promise<string[]> {
  const rows = await m.json<ListedSnapshot[]>(['list']);
  return rows.filter((r) => r.readable !== false && !r.damaged).map((r) => r.id).sort();
}
