/** obnam fsck [--quick]: checks the repository; exits 1 if anything is damaged. */
import { fsck } from '../../lib/fsck/engine.js';
import { startRepoPool } from '../../lib/engine-workers/start.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_ERROR, EXIT_OK } from '../exit.js';
import { ProgressLine } from '../progress.js';
import { cancelSignal } from '../signals.js';

export interface FsckArgs extends GlobalArgs {
  quick?: boolean;
}

export async function fsckCommand(args: FsckArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  const pool = startRepoPool(repo);
  const progress = { snapshots: 0, trees: 0, chunks: 0, problems: 0 };
  const line = new ProgressLine(
    () => `${progress.snapshots} snapshots, ${progress.trees} trees, ${progress.chunks} chunks checked, ${progress.problems} problems`,
  ).start();
  try {
    const report = await fsck(repo, { quick: args.quick, pool, progress, signal: cancelSignal() });
    line.stop();
    const ok = report.problems.length === 0;
    if (ctx.json) {
      process.stdout.write(JSON.stringify({ ok, ...report }) + '\n');
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
    }
    return ok ? EXIT_OK : EXIT_ERROR;
  } finally {
    line.stop();
    await pool.close();
    await repo.close();
  }
}
