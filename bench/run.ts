/**
 * npm run bench: backup, unchanged re-backup, restore and fsck of a real data
 * set into a local repository, with MB/s, CPU seconds and peak RSS per phase,
 * and the same phases with restic side by side when restic is installed.
 * Remote (HTTPS on loopback) and mount figures are added by bench/remote.ts
 * and bench/mount.ts when those parts are present; the prune row (a history
 * of 10 snapshots, forget 9, prune, beside restic) by bench/prune.ts.
 *
 * Settings (environment):
 *   BENCH_DATA     colon-separated directories to back up (default /usr/share:/usr/include)
 *   BENCH_BIG_MB   size of the extra large file, MiB (default 512; 0 for none)
 *   BENCH_DIR      work directory (default a new one under /tmp), removed at the end
 *   BENCH_PEERS    comma-separated peers to run (default restic)
 *   BENCH_PARTS    comma-separated parts (default local,remote,s3,mount,prune; s3: the server on S3 storage)
 *   BENCH_PRUNE_MB size of the prune row's tree, MiB (default: the data set's size; 0 for none;
 *                  more settings in bench/prune.ts)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchContext, duBytes, has, Measurement, Phase, run, table } from './measure.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OBNAM = path.join(ROOT, 'bin', 'obnam');

async function makeBigFile(file: string, mib: number): Promise<void> {
  if (mib <= 0) return;
  // Half random, half compressible text: neither tool gets an all-zero free ride.
  const fd = fs.openSync(file, 'w');
  const text = Buffer.from(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').repeat(200)).subarray(0, 1 << 20);
  const rnd = fs.openSync('/dev/urandom', 'r');
  const buf = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) {
    if (i % 2 === 0) fs.readSync(rnd, buf, 0, buf.length, null);
    fs.writeSync(fd, i % 2 === 0 ? buf : text);
  }
  fs.closeSync(rnd);
  fs.closeSync(fd);
}

async function main(): Promise<void> {
  const data = (process.env.BENCH_DATA ?? '/usr/share:/usr/include').split(':').filter(Boolean);
  const bigMb = Number(process.env.BENCH_BIG_MB ?? 512);
  const work = process.env.BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-bench-'));
  const peers = (process.env.BENCH_PEERS ?? 'restic').split(',').filter(Boolean);
  const parts = (process.env.BENCH_PARTS ?? 'local,remote,s3,mount,prune').split(',');
  fs.mkdirSync(work, { recursive: true });
  // A reused BENCH_DIR keeps its data, never its repositories.
  for (const old of ['obnam-repo', 'restic-repo', 'server', 'server-s3', 'obnam-restore', 'restic-restore', 'remote-restore', 'mnt', 'prune']) {
    fs.rmSync(path.join(work, old), { recursive: true, force: true });
  }
  const big = path.join(work, 'big-file');
  if (!fs.existsSync(big) || fs.statSync(big).size !== bigMb * 2 ** 20) await makeBigFile(big, bigMb);
  const sources = bigMb > 0 ? [...data, big] : data;
  const bytes = duBytes(...sources);
  const ctx: BenchContext = { work, sources, bytes, env: { OBNAM_PASSPHRASE: 'bench', RESTIC_PASSWORD: 'bench', OBNAM_NO_PROGRESS: '1' } };
  process.stdout.write(
    `obnam bench: ${(bytes / 1e6).toFixed(0)} MB in ${sources.join(' ')}\n` +
      `machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n\n`,
  );
  const results: Measurement[] = [];
  try {
    if (parts.includes('local')) {
      results.push(...(await localObnam(ctx)));
      for (const peer of peers) {
        if (peer === 'restic') {
          if (has('restic')) results.push(...(await localRestic(ctx)));
          else process.stdout.write('restic is not installed: skipping it (apt-get install restic)\n');
        } else process.stdout.write(`unknown peer ${peer}: skipped\n`);
      }
    }
    if (parts.includes('remote')) {
      const remote = await optionalModule('./remote.js');
      if (remote) results.push(...(await remote.benchRemote(ctx)));
      else process.stdout.write('remote bench not available (no server build): skipped\n');
    }
    if (parts.includes('s3')) {
      const remote = await optionalModule('./remote.js');
      if (remote?.benchRemoteS3) results.push(...(await remote.benchRemoteS3(ctx)));
      else process.stdout.write('server-on-S3 bench not available: skipped\n');
    }
    if (parts.includes('mount')) {
      const mount = await optionalModule('./mount.js');
      if (mount) results.push(...(await mount.benchMountPart(ctx)));
      else process.stdout.write('mount bench not available: skipped\n');
    }
    if (parts.includes('prune')) {
      const prune = await optionalModule('./prune.js');
      if (prune) results.push(...(await prune.benchPrune(ctx)));
      else process.stdout.write('prune bench not available: skipped\n');
    }
  } finally {
    if (!process.env.BENCH_DIR) fs.rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write('\n' + table(results, bytes) + '\n');
}

async function optionalModule(spec: string): Promise<Record<string, (ctx: BenchContext) => Promise<Measurement[]>> | undefined> {
  try {
    return await import(spec);
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw e;
  }
}

async function localObnam(ctx: BenchContext): Promise<Measurement[]> {
  const repo = path.join(ctx.work, 'obnam-repo');
  const out = path.join(ctx.work, 'obnam-restore');
  const ob = (args: string[]): Phase => ({ cmd: process.execPath, args: [OBNAM, '--repo', repo, ...args] });
  await run(ctx, 'obnam', 'init', ob(['init']));
  return [
    await run(ctx, 'obnam', 'backup', ob(['backup', ...ctx.sources]), { dropCaches: true }),
    await run(ctx, 'obnam', 're-backup', ob(['backup', ...ctx.sources]), { dropCaches: true }),
    await run(ctx, 'obnam', 'restore', ob(['restore', 'latest', out]), { dropCaches: true, after: () => fs.rmSync(out, { recursive: true, force: true }) }),
    await run(ctx, 'obnam', 'fsck', ob(['fsck']), { dropCaches: true }),
  ];
}

async function localRestic(ctx: BenchContext): Promise<Measurement[]> {
  const repo = path.join(ctx.work, 'restic-repo');
  const out = path.join(ctx.work, 'restic-restore');
  const rs = (args: string[]): Phase => ({ cmd: 'restic', args: ['-q', '-r', repo, ...args] });
  await run(ctx, 'restic', 'init', rs(['init']));
  return [
    await run(ctx, 'restic', 'backup', rs(['backup', ...ctx.sources]), { dropCaches: true }),
    await run(ctx, 'restic', 're-backup', rs(['backup', ...ctx.sources]), { dropCaches: true }),
    await run(ctx, 'restic', 'restore', rs(['restore', 'latest', '--target', out]), { dropCaches: true, after: () => fs.rmSync(out, { recursive: true, force: true }) }),
    await run(ctx, 'restic', 'fsck', rs(['check', '--read-data']), { dropCaches: true }),
  ];
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
