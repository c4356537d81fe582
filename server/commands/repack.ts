/**
 * obnam-server repack [DIR] [--client NAME | --namespace NAME | --all]
 *   [--max-unused PERCENT] [--dry-run] [--json]:
 * gives back the space of deleted objects (server/repack.ts), without any
 * client key, also while serve runs. Prints, per namespace, the packs
 * rewritten and the bytes freed; exits 1 if any namespace failed (the others
 * are still repacked).
 */
import { ObnamError } from '../../lib/errors.js';
import type { RepackResult } from '../../lib/store/store.js';
import { loadServerConfig } from '../config.js';
import { checkServerDir, resolveServerDir } from '../layout.js';
import { NamespaceRepack, repackServer } from '../repack.js';

export interface RepackArgs {
  dir?: string;
  config?: string;
  client?: string;
  namespace?: string;
  all?: boolean;
  'max-unused'?: string | number;
  'dry-run'?: boolean;
  json?: boolean;
}

function parsePercent(v: string | number): number {
  const n = Number(String(v).replace(/%$/, ''));
  if (String(v).trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new ObnamError('USAGE', `--max-unused must be a percentage from 0 to 100, not ${JSON.stringify(String(v))}`);
  return n;
}

function mib(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

function unusedPercent(r: RepackResult): string {
  return r.bytesBefore ? `${((100 * r.unusedBytesBefore) / r.bytesBefore).toFixed(1)}%` : '0%';
}

export async function repackCommand(args: RepackArgs): Promise<number> {
  const d = resolveServerDir(args);
  await checkServerDir(d);
  const config = await loadServerConfig(d);
  const maxUnusedPercent = args['max-unused'] === undefined ? config.repack.maxUnusedPercent : parsePercent(args['max-unused']);
  const dryRun = !!args['dry-run'];
  const say = (s: string) => {
    if (!args.json) process.stderr.write(`obnam-server: ${s}\n`);
  };
  let lastProgress = 0;
  const results = await repackServer(d, {
    client: args.client,
    namespace: args.namespace,
    maxUnusedPercent,
    dryRun,
    onStart: (t) => say(`repacking ${t.label} (${t.where})`),
    onProgress: (t, done, total) => {
      const now = Date.now();
      if (done < total && now - lastProgress < 1000) return;
      lastProgress = now;
      say(`${t.label}: ${done}/${total} packs`);
    },
    onDone: (r) => {
      if (!args.json) printOne(r, dryRun);
    },
  });
  const failed = results.filter((r) => r.error);
  if (args.json) {
    const total = { packsRewritten: 0, packsRemoved: 0, objectsCopied: 0, bytesBefore: 0, bytesAfter: 0, bytesFreed: 0 };
    for (const r of results) for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += r.result?.[k] ?? 0;
    process.stdout.write(JSON.stringify({ ok: failed.length === 0, dryRun, maxUnusedPercent, namespaces: results, total }) + '\n');
  } else {
    const freed = results.reduce((n, r) => n + (r.result?.bytesFreed ?? 0), 0);
    const packs = results.reduce((n, r) => n + (r.result?.packsRewritten ?? 0), 0);
    process.stdout.write(
      `${dryRun ? 'dry run: would repack' : 'repacked'} ${results.length - failed.length} of ${results.length} namespaces: ` +
        `${packs} packs rewritten, ${mib(freed)} ${dryRun ? 'would be ' : ''}freed` +
        (failed.length ? `; ${failed.length} failed` : '') +
        '\n',
    );
  }
  return failed.length ? 1 : 0;
}

function printOne(r: NamespaceRepack, dryRun: boolean): void {
  if (r.error) {
    process.stdout.write(`${r.label}: failed: ${r.error}\n`);
    return;
  }
  const x = r.result!;
  const verb = dryRun ? 'would rewrite' : 'rewrote';
  process.stdout.write(
    `${r.label}: ${verb} ${x.packsRewritten} of ${x.packsBefore} packs` +
      (x.packsRemoved !== x.packsRewritten ? ` (${x.packsRemoved} removed)` : '') +
      `, ${mib(x.bytesFreed)} ${dryRun ? 'would be ' : ''}freed (${mib(x.bytesBefore)} before, ${unusedPercent(x)} unused; ${mib(x.bytesAfter)} after)\n`,
  );
}
