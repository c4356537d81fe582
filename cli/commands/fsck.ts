/**
 * obnam fsck [--quick] [--repair]: checks the repository; exits 1 if
 * anything is damaged. --repair then removes the damaged stored copies
 * (lib/fsck/repair.ts), so that the next backup --force stores them again.
 */
import { fsck } from '../../lib/fsck/engine.js';
import { checkCanRepair, repairDamaged, RepairReport } from '../../lib/fsck/repair.js';
import { ObnamError } from '../../lib/errors.js';
import { startRepoPool } from '../../lib/engine-workers/start.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_ERROR, EXIT_OK } from '../exit.js';
import { ProgressLine } from '../progress.js';
import { cancelSignal } from '../signals.js';

export interface FsckArgs extends GlobalArgs {
  quick?: boolean;
  repair?: boolean;
}

export async function fsckCommand(args: FsckArgs): Promise<number> {
  if (args.repair && args.quick) throw new ObnamError('USAGE', '--repair needs the full check: leave out --quick');
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  if (args.repair) {
    try {
      await checkCanRepair(repo);
    } catch (e) {
      await repo.close();
      throw e;
    }
  }
  const pool = startRepoPool(repo);
  const progress = { snapshots: 0, trees: 0, chunks: 0, problems: 0 };
  const line = new ProgressLine(
    () => `${progress.snapshots} snapshots, ${progress.trees} trees, ${progress.chunks} chunks checked, ${progress.problems} problems`,
  ).start();
  try {
    const report = await fsck(repo, { quick: args.quick, pool, progress, signal: cancelSignal() });
    line.stop();
    const ok = report.problems.length === 0;
    const repair = args.repair && !ok ? await repairDamaged(repo, report.problems, { signal: cancelSignal() }) : undefined;
    if (ctx.json) {
      process.stdout.write(JSON.stringify({ ok, ...report, ...(args.repair ? { repair: repair ?? { removed: [], kept: [] } } : {}) }) + '\n');
    } else {
      for (const p of report.problems) {
        process.stdout.write(`${p.status} ${p.kind} ${p.id}: ${p.message}\n`);
        if (p.snapshots.length) process.stdout.write(`  affects snapshots: ${p.snapshots.map((s) => s.slice(0, 8)).join(', ')}\n`);
        else if (p.kind !== 'snapshot') process.stdout.write('  not used by any snapshot (a later backup could reuse it)\n');
        for (const path of p.paths) process.stdout.write(`  affects: ${path}\n`);
        if (p.morePaths) process.stdout.write(`  and ${p.morePaths} more paths\n`);
      }
      process.stdout.write(
        `checked ${report.snapshots} snapshots, ${report.trees} trees, ${report.chunks} chunks` +
          (report.quick ? ' (quick: chunks checked for existence only)' : '') +
          (report.unreferenced ? `, ${report.unreferenced} unreferenced objects` : '') +
          `: ${ok ? 'no problems found' : `${report.problems.length} problems found`}\n`,
      );
      if (repair) printRepair(repair);
    }
    return ok ? EXIT_OK : EXIT_ERROR;
  } finally {
    line.stop();
    await pool.close();
    await repo.close();
  }
}

function printRepair(r: RepairReport): void {
  for (const o of r.removed) process.stdout.write(`repair: removed damaged ${o.kind} ${o.id}\n`);
  for (const o of r.kept) process.stdout.write(`repair: kept ${o.kind} ${o.id}: ${o.reason}\n`);
  if (r.removed.length) {
    process.stdout.write(
      `repair: removed ${r.removed.length} damaged objects; now run obnam backup --force of the same paths: content still in ` +
        'those files is stored again under the same ids, which makes the snapshots above whole again (then run obnam fsck)\n',
    );
  } else {
    process.stdout.write('repair: nothing removed (missing objects and damaged snapshots have no stored copy to remove; obnam forget removes a snapshot)\n');
  }
}
