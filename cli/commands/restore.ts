/** obnam restore SNAPSHOT TARGET [--path SUBPATH] */
import { newRestoreProgress, restore } from '../../lib/restore/engine.js';
import { ObnamError } from '../../lib/errors.js';
import { startRepoPool } from '../../lib/engine-workers/start.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { formatBytes, ProgressLine, rate } from '../progress.js';
import { cancelSignal } from '../signals.js';

export interface RestoreArgs extends GlobalArgs {
  snapshot: string;
  target: string;
  path?: string;
}

export async function restoreCommand(args: RestoreArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  const pool = startRepoPool(repo);
  const progress = newRestoreProgress();
  const line = new ProgressLine(
    (s) => `${progress.files} files, ${progress.dirs} dirs, ${formatBytes(progress.bytes)} (${rate(progress.bytes, s)})`,
  ).start();
  const started = Date.now();
  try {
    const snap = await repo.resolveSnapshot(args.snapshot);
    const result = await restore(repo, snap, {
      target: args.target,
      subPath: args.path,
      pool,
      progress,
      signal: cancelSignal(),
      onWarning: (path, message) => {
        line.stop();
        process.stderr.write(`obnam: error: ${message.includes(path) ? message : `${path}: ${message}`}\n`);
      },
    });
    line.stop();
    const seconds = (Date.now() - started) / 1000;
    if (ctx.json) {
      process.stdout.write(JSON.stringify({ snapshot: snap.id, target: args.target, seconds, ...result }) + '\n');
    } else {
      process.stdout.write(
        `restored snapshot ${snap.id.slice(0, 8)} to ${args.target}: ${result.files} files, ${result.dirs} directories, ` +
          `${formatBytes(result.bytes)} in ${seconds.toFixed(1)} s\n`,
      );
    }
    if (result.errors) throw new ObnamError('IO', `${result.errors} files could not be restored completely`);
    return EXIT_OK;
  } finally {
    line.stop();
    await pool.close();
    await repo.close();
  }
}
