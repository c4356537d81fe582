/**
 * The remote part of `npm run bench`: the same backup and restore as the
 * local part, but into an obnam-server over HTTPS on loopback (the server in
 * this process, the client as the real CLI), measured like every other phase.
 * benchRemoteS3 does the same with the server's namespaces in an S3 bucket
 * (s3rver on loopback, the S3-compatible server the tests use).
 * bench/server-remote.ts is the standalone variant with its own data set.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addClient } from '../server/admin.js';
import { initServerDir } from '../server/init.js';
import { serverDir } from '../server/layout.js';
import { startServer } from '../server/start.js';
import type { StorageConfig } from '../server/storage-config.js';
import { S3_KEY, startS3 } from '../test/helpers/s3.js';
import { BenchContext, Measurement, Phase, run } from './measure.js';

const OBNAM = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..'), 'bin', 'obnam');

export function benchRemote(ctx: BenchContext): Promise<Measurement[]> {
  return benchServer(ctx, 'obnam https', 'server');
}

/** The server with S3 storage: s3rver (test/helpers/s3.ts) on 127.0.0.1, in this process too. */
export async function benchRemoteS3(ctx: BenchContext): Promise<Measurement[]> {
  const s3 = await startS3();
  try {
    return await benchServer(ctx, 'obnam https+s3', 'server-s3', {
      storage: { type: 's3', url: `s3://${s3.bucket}/bench`, endpoint: s3.endpoint },
      env: { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_KEY },
    });
  } finally {
    await s3.stop();
  }
}

async function benchServer(
  ctx: BenchContext,
  tool: string,
  name: string,
  s3?: { storage: StorageConfig; env: Record<string, string> },
): Promise<Measurement[]> {
  const dir = path.join(ctx.work, name);
  const out = path.join(ctx.work, `${name}-restore`);
  fs.rmSync(dir, { recursive: true, force: true });
  const { fingerprint } = await initServerDir(dir, { storage: s3?.storage });
  // admin.addClient reads S3 credentials from the process environment.
  Object.assign(process.env, s3?.env ?? {});
  const { token } = await addClient(serverDir(dir), 'bench', false);
  const server = await startServer({ dir, listen: '127.0.0.1:0', logLevel: 'warn', env: { ...process.env, ...s3?.env } });
  const env = { OBNAM_REPO: server.url, OBNAM_TOKEN: token, OBNAM_SERVER_FINGERPRINT: fingerprint };
  const ob = (args: string[]): Phase => ({ cmd: process.execPath, args: [OBNAM, ...args], env });
  // The server shares this process: sample its memory and CPU around each phase.
  const measured = async (phase: string, p: Phase, opts: Parameters<typeof run>[4] = {}): Promise<Measurement> => {
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const cpu = process.cpuUsage();
    try {
      const m = await run(ctx, tool, phase, p, opts);
      const used = process.cpuUsage(cpu);
      m.note = `server: ${((used.user + used.system) / 1e6).toFixed(1)} CPU s, peak RSS ${(peak / 2 ** 20).toFixed(0)} MB`;
      return m;
    } finally {
      clearInterval(timer);
    }
  };
  try {
    await run(ctx, tool, 'init', ob(['init']));
    return [
      await measured('backup', ob(['backup', ...ctx.sources]), { dropCaches: true }),
      await measured('re-backup', ob(['backup', ...ctx.sources]), { dropCaches: true }),
      await measured('restore', ob(['restore', 'latest', out]), {
        dropCaches: true,
        after: () => fs.rmSync(out, { recursive: true, force: true }),
      }),
    ];
  } finally {
    await server.close();
  }
}
