/**
 * obnam prune [--dry-run] [--exclusive] [--max-unused PERCENT] [--json]:
 * one garbage-collection run (lib/gc/prune.ts): finishes the sweeps whose
 * grace period has passed, then marks. --exclusive sweeps at once.
 */
import { prune, PruneReport } from '../../lib/gc/prune.js';
import type { Repository } from '../../lib/repo/repository.js';
import { ObnamError } from '../../lib/errors.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { formatBytes } from '../progress.js';
import { cancelSignal } from '../signals.js';

export interface PruneArgs extends GlobalArgs {
  'dry-run'?: boolean;
  exclusive?: boolean;
  'max-unused'?: string | number;
}

function parsePercent(v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(String(v).replace(/%$/, ''));
  if (String(v).trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new ObnamError('USAGE', `--max-unused must be a percentage from 0 to 100, not ${JSON.stringify(String(v))}`);
  return n;
}

export async function pruneCommand(args: PruneArgs): Promise<number> {
  const maxUnusedPercent = parsePercent(args['max-unused']);
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const report = await runPrune(repo, { dryRun: args['dry-run'], exclusive: args.exclusive, maxUnusedPercent, json: ctx.json });
    if (ctx.json) process.stdout.write(JSON.stringify(report) + '\n');
    else printPruneReport(report);
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}

/** One collection run with its progress lines on stderr (none with json); shared by prune and forget --prune. */
export function runPrune(
  repo: Repository,
  opts: { dryRun?: boolean; exclusive?: boolean; maxUnusedPercent?: number; json: boolean },
): Promise<PruneReport> {
  const say = (s: string) => {
    if (!opts.json) process.stderr.write(`obnam: ${s}\n`);
  };
  return prune(repo, {
    dryRun: opts.dryRun,
    exclusive: opts.exclusive,
    maxUnusedPercent: opts.maxUnusedPercent,
    signal: cancelSignal(),
    // A local repository repacks here; an obnam-server repository asks the server to (POST /v1/repack).
    repack: repo.repacker(),
    repackNote: 'this repository cannot repack on request; its server gives the space back when it repacks its storage (obnam-server repack, or serve in the background)',
    onRepackProgress: (done, total) => {
      if (total) say(`repacking: ${done} of ${total} packs`);
    },
    onPhase: (p) =>
      say(
        p === 'mark'
          ? 'marking: finding what no snapshot reaches'
          : p === 'sweep'
            ? 'sweeping: deleting what a plan past its grace period holds'
            : p === 'repack'
              ? `repacking: ${opts.dryRun ? 'finding' : 'rewriting'} packs with unused space`
              : p,
      ),
    onWarning: (m) => process.stderr.write(`obnam: warning: ${m}\n`),
  });
}

export function printPruneReport(r: PruneReport): void {
  const out = (s: string) => process.stdout.write(s + '\n');
  for (const s of r.swept) out(`swept plan ${s.plan.slice(0, 8)}: deleted ${s.trees} trees and ${s.chunks} chunks (${formatBytes(s.bytes)})${s.kept ? `, kept ${s.kept} used again since the mark` : ''}`);
  if (r.marked) {
    const n = r.marked.trees + r.marked.chunks;
    if (r.dryRun) out(`would mark ${r.marked.trees} trees and ${r.marked.chunks} chunks that none of ${r.marked.snapshots} snapshots reaches`);
    else if (n === 0) out(`nothing to collect: ${r.marked.snapshots} snapshots reach every tree and chunk`);
    else if (!r.exclusive) out(`marked ${r.marked.trees} trees and ${r.marked.chunks} chunks that no snapshot reaches`);
  }
  for (const w of r.waiting) out(r.dryRun ? `plan ${w.plan.slice(0, 8)} would be swept (due ${w.due})` : `plan ${w.plan.slice(0, 8)} waits for its grace period: run obnam prune again after ${w.due}`);
  for (const d of r.damagedPlans) out(`plan ${d.slice(0, 8)} is damaged and was left alone`);
  out(`${r.dryRun ? 'dry run: nothing deleted' : `deleted ${r.deleted.trees} trees and ${r.deleted.chunks} chunks, ${formatBytes(r.deleted.bytes)}`}`);
  const rp = r.repack;
  if (!rp.done) out(`--max-unused ${rp.maxUnusedPercent}%: ${rp.note}`);
  else {
    const unused = rp.bytesBefore ? ((100 * rp.unusedBytesBefore!) / rp.bytesBefore).toFixed(1) : '0.0';
    const state = `${formatBytes(rp.unusedBytesBefore ?? 0)} of ${formatBytes(rp.bytesBefore ?? 0)} in ${rp.packsBefore} packs unused (${unused}%)`;
    if (!rp.packsRemoved) out(`${state}: within --max-unused ${rp.maxUnusedPercent}%, nothing repacked`);
    else if (r.dryRun) out(`${state}: would rewrite ${rp.packsRewritten} packs and remove ${rp.packsRemoved}, copying ${rp.objectsCopied} objects, freeing ${formatBytes(rp.bytesFreed ?? 0)}`);
    else out(`${state}: rewrote ${rp.packsRewritten} packs and removed ${rp.packsRemoved}, copying ${rp.objectsCopied} objects; ${formatBytes(rp.bytesFreed ?? 0)} freed`);
  }
}
