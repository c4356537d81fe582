/**
 * obnam backup [PATH...]: one new snapshot of the given paths (and those of
 * --files-from), or of the configured ones. What is left out: --exclude and
 * --exclude-file patterns, directories with an --exclude-if-present tag file,
 * and cache directories (CACHEDIR.TAG) unless --no-exclude-caches; each
 * added to its config file equivalent.
 */
import { backup, newProgress } from '../../lib/backup/engine.js';
import type { Repository } from '../../lib/repo/repository.js';
import { CACHEDIR_TAG, cacheDirRule, parseTagRule, TagRule } from '../../lib/backup/tags.js';
import { ObnamError } from '../../lib/errors.js';
import { startRepoPool } from '../../lib/engine-workers/start.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK, EXIT_PARTIAL } from '../exit.js';
import { readExcludeFile, readFilesFrom } from '../line-files.js';
import { formatBytes, ProgressLine, rate } from '../progress.js';
import { recordSeen } from '../seen-snapshots.js';
import { cancelSignal } from '../signals.js';
import { grantRecipients, memberDirectory, ownGrants } from '../sharing.js';

export interface BackupArgs extends GlobalArgs {
  paths?: string[];
  tag?: string[];
  exclude?: string[];
  'exclude-file'?: string[];
  'exclude-if-present'?: string[];
  'exclude-caches'?: boolean;
  'files-from'?: string[];
  parent?: string;
  force?: boolean;
  'one-file-system'?: boolean;
  verbose?: boolean;
}

export async function backupCommand(args: BackupArgs): Promise<number> {
  const ctx = await makeContext(args);
  const paths = await pathsToBackUp(args, ctx.config.paths);
  const excludes = [...(ctx.config.exclude ?? []), ...(args.exclude ?? [])];
  for (const file of [...(ctx.config.exclude_files ?? []), ...(args['exclude-file'] ?? [])]) excludes.push(...(await readExcludeFile(file)));
  const tagRules: TagRule[] = [...(ctx.config.exclude_if_present ?? []), ...(args['exclude-if-present'] ?? [])].map(parseTagRule);
  if (args['exclude-caches'] ?? ctx.config.exclude_caches ?? true) tagRules.push(cacheDirRule());
  const repo = await openRepository(ctx);
  if (repo.formatVersion === 3) applyStandingGrants(repo);
  const pool = startRepoPool(repo);
  const progress = newProgress();
  const warnings: { path: string; message: string }[] = [];
  const newlyExcluded: { path: string; tag: string }[] = [];
  const line = new ProgressLine(
    (s) =>
      `${progress.files} files, ${progress.dirs} dirs, ${formatBytes(progress.bytes)} seen; ` +
      `read ${progress.filesRead} files, ${formatBytes(progress.bytesRead)} (${rate(progress.bytesRead, s)})` +
      (progress.errors ? `, ${progress.errors} errors` : ''),
  ).start();
  const started = Date.now();
  try {
    const result = await backup(repo, {
      paths,
      tags: [...(ctx.config.tags ?? []), ...(args.tag ?? [])],
      excludes,
      excludeIfPresent: tagRules,
      parent: args.force ? null : args.parent,
      oneFileSystem: args['one-file-system'] ?? ctx.config.one_file_system ?? false,
      skipDirs: ctx.spec.type === 'local' ? [ctx.spec.dir] : [],
      pool,
      signal: cancelSignal(),
      progress,
      onFileRead: args.verbose
        ? (path, reason) => {
            line.stop();
            process.stderr.write(`${reason === 'new' ? 'new' : 'changed'} ${path}\n`);
          }
        : undefined,
      onTaggedSinceParent: (path, tag) => {
        newlyExcluded.push({ path, tag });
        if (!ctx.json) {
          line.stop();
          const what = tag === CACHEDIR_TAG ? 'a cache directory (CACHEDIR.TAG)' : `tagged with ${tag}`;
          process.stderr.write(`obnam: ${path} is now ${what}: its contents, in the parent snapshot, are no longer backed up\n`);
        }
      },
      onGcWait: (message) => {
        if (!ctx.json) {
          line.stop();
          process.stderr.write(`obnam: ${message}\n`);
        }
      },
      onWarning: (path, message) => {
        warnings.push({ path, message });
        if (!ctx.json) {
          line.stop();
          process.stderr.write(`obnam: warning: ${message.includes(path) ? message : `${path}: ${message}`}\n`);
        }
      },
    });
    line.stop();
    await recordSeen(repo.config.repositoryId, [result.id]);
    const seconds = (Date.now() - started) / 1000;
    const s = result.snapshot.summary;
    if (ctx.json) {
      process.stdout.write(
        JSON.stringify({ snapshot: result.id, parent: result.snapshot.parent ?? null, seconds, summary: s, warnings, newlyExcluded }) + '\n',
      );
    } else {
      process.stdout.write(
        `snapshot ${result.id.slice(0, 8)} saved\n` +
          `  ${s.files} files, ${s.dirs} directories, ${formatBytes(s.bytes)}\n` +
          `  ${s.filesRead} files read, ${s.newChunks} new chunks, ${s.newTrees} new trees, ` +
          `${formatBytes(s.newBytes)} new data, ${formatBytes(s.storedBytes)} stored\n` +
          `  ${seconds.toFixed(1)} s` +
          (warnings.length ? `, ${warnings.length} files or directories could not be read\n` : '\n'),
      );
    }
    return warnings.length ? EXIT_PARTIAL : EXIT_OK;
  } finally {
    line.stop();
    await pool.close();
    await repo.close();
  }
}

/** The command line's paths and --files-from lists; the config's paths only when neither gives any. */
async function pathsToBackUp(args: BackupArgs, configured: string[] | undefined): Promise<string[]> {
  const paths = [...(args.paths ?? [])];
  for (const file of args['files-from'] ?? []) {
    const skipped = (pattern: string) => process.stderr.write(`obnam: warning: ${pattern} (in ${file}) matches no file: skipped\n`);
    paths.push(...(await readFilesFrom(file, skipped)));
  }
  if (paths.length) return paths;
  if (args['files-from']?.length) throw new ObnamError('USAGE', `nothing to back up: ${args['files-from'].join(', ')} lists no paths that exist`);
  if (configured?.length) return configured;
  throw new ObnamError('USAGE', 'nothing to back up: give paths, or set paths in the config file');
}

/**
 * Standing grants (format-spec/sharing.md 9.3): when the snapshot is about
 * to be written, its key is wrapped also for every member whose latest grant
 * from this member for the snapshot's host is "granted".
 */
function applyStandingGrants(repo: Repository): void {
  repo.snapshotRecipients = async (s) => grantRecipients(await ownGrants(repo), s.hostname, await memberDirectory(repo), repo.self);
}
