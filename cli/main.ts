/**
 * The obnam command line (yargs). Each command's handler returns an exit
 * status; errors are reported in exactly one place (cli/exit.ts).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ObnamError } from '../lib/errors.js';
import { DEFAULT_CHUNKER } from '../lib/chunking/fastcdc.js';
import { DEFAULT_INLINE_MAX, largestInlineMax } from '../lib/format/config.js';
import { exitQuietlyOnClosedOutput } from './closed-output.js';
import type { CliHooks } from './context.js';
import { EXIT_ERROR, exitCodeFor, reportError } from './exit.js';
import { VERSION } from '../lib/version.js';

export { VERSION };

type Handler = (args: never, hooks: CliHooks) => Promise<number>;
type Loader = () => Promise<Handler>;

// Command modules load only when their command runs: start-up stays short.
const initCommand: Loader = async () => (await import('./commands/init.js')).initCommand;
const backupCommand: Loader = async () => (await import('./commands/backup.js')).backupCommand;
const listCommand: Loader = async () => (await import('./commands/list.js')).listCommand;
const lsCommand: Loader = async () => (await import('./commands/ls.js')).lsCommand;
const restoreCommand: Loader = async () => (await import('./commands/restore.js')).restoreCommand;
const mountCommand: Loader = async () => (await import('./commands/mount.js')).mountCommand;
const pruneCommand: Loader = async () => (await import('./commands/prune.js')).pruneCommand;
const upgradeCommand: Loader = async () => (await import('./commands/upgrade.js')).upgradeCommand;
const forgetCommand: Loader = async () => (await import('./commands/forget.js')).forgetCommand;
const fsckCommand: Loader = async () => (await import('./commands/fsck.js')).fsckCommand;
const configCommand: Loader = async () => (await import('./commands/config.js')).configCommand;
const diffCommand: Loader = async () => (await import('./commands/diff.js')).diffCommand;
const dumpCommand: Loader = async () => (await import('./commands/dump.js')).dumpCommand;
const umountCommand: Loader = async () => (await import('./commands/umount.js')).umountCommand;
const keyAddCommand: Loader = async () => (await import('./commands/key.js')).keyAddCommand;
const keyListCommand: Loader = async () => (await import('./commands/key.js')).keyListCommand;
const keyRemoveCommand: Loader = async () => (await import('./commands/key.js')).keyRemoveCommand;
const identityNewCommand: Loader = async () => (await import('./commands/identity.js')).identityNewCommand;
const identityShowCommand: Loader = async () => (await import('./commands/identity.js')).identityShowCommand;
const memberAddCommand: Loader = async () => (await import('./commands/member.js')).memberAddCommand;
const memberListCommand: Loader = async () => (await import('./commands/member.js')).memberListCommand;
const memberRemoveCommand: Loader = async () => (await import('./commands/member.js')).memberRemoveCommand;
const shareCommand: Loader = async () => (await import('./commands/share.js')).shareCommand;
const unshareCommand: Loader = async () => (await import('./commands/share.js')).unshareCommand;

export async function main(argv: string[], hooks: CliHooks = {}): Promise<number> {
  let exitCode = 0;
  const run = (load: Loader) => async (args: unknown) => {
    exitCode = await (await load())(args as never, hooks);
  };
  const parser = yargs(joinStdinValues(argv))
    .scriptName('obnam')
    .usage('$0 <command> [options]\n\nDeduplicating, compressing, encrypting backups.')
    .option('repo', { alias: 'r', type: 'string', describe: 'repository: a directory or https://HOST:PORT (env OBNAM_REPO)' })
    .option('config', { type: 'string', describe: 'config file (env OBNAM_CONFIG; default ~/.config/obnam/config.yaml)' })
    .option('passphrase-file', { type: 'string', describe: 'read the passphrase from this file (env OBNAM_PASSPHRASE, OBNAM_PASSPHRASE_FILE)' })
    .option('identity-file', { type: 'string', describe: 'your identity, for shared repositories (default ~/.config/obnam/identity)' })
    .option('token', { type: 'string', describe: 'access token for a remote repository (env OBNAM_TOKEN)' })
    .option('token-file', { type: 'string', describe: 'read the access token from this file (env OBNAM_TOKEN_FILE)' })
    .option('request-timeout', {
      type: 'number',
      describe: 'seconds one request to the server may take, retries included (env OBNAM_REQUEST_TIMEOUT; default 300)',
    })
    .option('server-fingerprint', { type: 'string', describe: "SHA-256 fingerprint of the server's certificate (env OBNAM_SERVER_FINGERPRINT)" })
    .option('ca-file', { type: 'string', describe: 'CA certificate to trust for the server (env OBNAM_CA_FILE)' })
    .option('insecure-http', { type: 'boolean', describe: 'allow an http:// server URL (token and data unencrypted: only through a TLS tunnel or proxy)' })
    .option('json', { type: 'boolean', describe: 'print one JSON document on stdout' })
    .command(
      'init',
      'create a repository',
      (y) =>
        y
          .option('compression-level', { type: 'number', describe: 'zstd level for this repository: 0 (off) to 19 (default 1)' })
          .option('inline-max', {
            type: 'number',
            describe: `largest file, in bytes, not cut into chunks but gathered with other small files into bundles (in a shared repository: kept inside its directory's tree) (0 to ${largestInlineMax(DEFAULT_CHUNKER)}; default ${DEFAULT_INLINE_MAX})`,
          })
          .option('shared', { type: 'boolean', describe: 'a repository shared by members, each with their own identity (format version 3); you become its first member' })
          .option('name', { type: 'string', describe: 'with --shared: your member name (default: your user name)' }),
      run(initCommand),
    )
    .command(
      'backup [paths..]',
      'back up paths (default: the paths in the config file)',
      (y) =>
        y
          .positional('paths', { type: 'string', array: true, describe: 'files and directories to back up' })
          .option('tag', { type: 'string', array: true, nargs: 1, describe: 'tag the snapshot (repeatable)' })
          .option('exclude', { alias: 'e', type: 'string', array: true, nargs: 1, describe: 'skip paths matching a glob (repeatable)' })
          .option('exclude-file', { type: 'string', array: true, nargs: 1, describe: 'read exclude globs from a file, one a line (repeatable)' })
          .option('exclude-if-present', {
            type: 'string',
            array: true,
            nargs: 1,
            describe: 'NAME[:HEADER]: back up a directory holding a file NAME (beginning with HEADER) as that file alone (repeatable)',
          })
          .option('exclude-caches', { type: 'boolean', describe: 'skip the contents of CACHEDIR.TAG directories (default; --no-exclude-caches to keep them)' })
          .option('files-from', { type: 'string', array: true, nargs: 1, describe: 'back up the paths listed in a file, one a line; - is stdin (repeatable)' })
          .option('parent', { type: 'string', describe: 'compare against this snapshot instead of the latest of this host and paths' })
          .option('force', { type: 'boolean', describe: 'read every file again (use no parent snapshot)' })
          .option('one-file-system', { alias: 'x', type: 'boolean', describe: 'do not cross file system boundaries' })
          .option('verbose', { alias: 'v', type: 'boolean', describe: 'name each new or changed file on stderr' }),
      run(backupCommand),
    )
    .command('list', 'list snapshots', {}, run(listCommand))
    .command(
      'ls <snapshot> [path]',
      'list the files in a snapshot (SNAPSHOT: id, id prefix or latest)',
      (y) =>
        y
          .positional('snapshot', { type: 'string', demandOption: true })
          .positional('path', { type: 'string', describe: 'only below this path' })
          .option('long', { alias: 'l', type: 'boolean', describe: 'show mode, owner, size and time' }),
      run(lsCommand),
    )
    .command(
      'restore <snapshot> <target>',
      'restore a snapshot, or a path in it, into a directory',
      (y) =>
        y
          .positional('snapshot', { type: 'string', demandOption: true })
          .positional('target', { type: 'string', demandOption: true })
          .option('path', { type: 'string', describe: 'restore only this path of the snapshot' }),
      run(restoreCommand),
    )
    .command(
      'mount <mountpoint>',
      'mount every snapshot read-only at MOUNTPOINT (foreground unless --daemon; unmount with obnam umount, fusermount -u or Ctrl-C)',
      (y) =>
        y
          .positional('mountpoint', { type: 'string', demandOption: true })
          .option('cache-size', { type: 'string', describe: 'memory for decrypted chunks and trees, e.g. 512M (default 256M)' })
          .option('daemon', { type: 'boolean', describe: 'return once mounted; a detached process serves the mount until it is unmounted' })
          .option('log', { type: 'string', describe: "with --daemon: append the daemon's messages to this file (default: discard them)" })
          .option('daemon-child', { type: 'boolean', hidden: true })
          .option('debug', { type: 'boolean', describe: 'print every FUSE request (libfuse debug output)' }),
      run(mountCommand),
    )
    .command(
      'forget [snapshots..]',
      'remove the named snapshots, or those a policy does not keep (SNAPSHOT: id, id prefix or latest)',
      (y) =>
        y
          .positional('snapshots', { type: 'string', array: true, describe: 'snapshots to remove (instead of a policy)' })
          .option('keep-last', { type: 'string', describe: 'keep the N newest snapshots (N or "unlimited")' })
          .option('keep-hourly', { type: 'string', describe: 'keep the newest snapshot of each of the last N hours that have one' })
          .option('keep-daily', { type: 'string', describe: 'keep the newest snapshot of each of the last N days that have one' })
          .option('keep-weekly', { type: 'string', describe: 'keep the newest snapshot of each of the last N weeks (Monday to Sunday) that have one' })
          .option('keep-monthly', { type: 'string', describe: 'keep the newest snapshot of each of the last N months that have one' })
          .option('keep-yearly', { type: 'string', describe: 'keep the newest snapshot of each of the last N years that have one' })
          .option('keep-within', { type: 'string', describe: 'keep snapshots newer than DURATION (e.g. 1y2m3d4h) before the newest' })
          .option('keep-tag', { type: 'string', array: true, nargs: 1, describe: 'keep snapshots with all of these tags (TAG[,TAG...]; repeatable)' })
          .option('host', { type: 'string', array: true, nargs: 1, describe: 'only consider snapshots of this host (repeatable)' })
          .option('tag', { type: 'string', array: true, nargs: 1, describe: 'only consider snapshots with all of these tags (TAG[,TAG...]; repeatable: any)' })
          .option('path', { type: 'string', array: true, nargs: 1, describe: 'only consider snapshots of this path (repeatable: all)' })
          .option('group-by', { type: 'string', describe: 'apply the policy per group: host,paths (default), host, paths, tags, or none' })
          .option('dry-run', { alias: 'n', type: 'boolean', describe: 'show what would be removed; change nothing' })
          .option('prune', { type: 'boolean', describe: 'run prune afterwards (a collection run, as obnam prune)' }),
      run(forgetCommand),
    )
    .command(
      'fsck',
      'check the repository for missing or damaged objects',
      (y) =>
        y
          .option('quick', { type: 'boolean', describe: 'check chunks for existence only' })
          .option('repair', {
            type: 'boolean',
            describe: 'remove the damaged stored copies found, so that the next obnam backup --force stores their content again',
          }),
      run(fsckCommand),
    )
    .command(
      'prune',
      'collect what no snapshot reaches: sweep plans past their grace period (config gc_grace), then mark',
      (y) =>
        y
          .option('dry-run', { type: 'boolean', describe: 'change nothing; report what would be marked and swept' })
          .option('exclusive', { type: 'boolean', describe: 'mark and sweep at once: only when nothing else writes to the repository' })
          .option('max-unused', { type: 'string', describe: 'repack when more than PERCENT of stored bytes is unused (default 10)' }),
      run(pruneCommand),
    )
    .command(
      'upgrade',
      'convert a format version 1 repository to version 2 in place (no version 1 client may write to it meanwhile); --shared: to a shared repository (version 3)',
      (y) =>
        y
          .option('shared', { type: 'boolean', describe: 'make it a shared repository (format version 3) owned by your identity; the passphrase then opens nothing' })
          .option('name', { type: 'string', describe: 'with --shared: your member name (default: your user name)' })
          .option('dry-run', { alias: 'n', type: 'boolean', describe: 'with --shared: print the snapshots and bytes to rewrite; change nothing' })
          .option('identity-passphrase-file', { type: 'string', describe: "with --shared: read the identity's passphrase from this file (default: the repository's)" }),
      run(upgradeCommand),
    )
    .command('config', 'print the effective configuration (options, environment, config file, defaults), secrets masked', {}, run(configCommand))
    .command(
      'diff <snapshot1> <snapshot2> [path]',
      'what changed from SNAPSHOT1 to SNAPSHOT2: + added, - removed, M content, U metadata only, T type',
      (y) =>
        y
          .positional('snapshot1', { type: 'string', demandOption: true })
          .positional('snapshot2', { type: 'string', demandOption: true })
          .positional('path', { type: 'string', describe: 'only below this path' }),
      run(diffCommand),
    )
    .command(
      'dump <snapshot> <path>',
      "write a file's content to stdout (a directory: as a tar archive)",
      (y) => y.positional('snapshot', { type: 'string', demandOption: true }).positional('path', { type: 'string', demandOption: true }),
      run(dumpCommand),
    )
    .command(
      'umount <dir>',
      'unmount an obnam mount (as fusermount -u DIR)',
      (y) => y.positional('dir', { type: 'string', demandOption: true }),
      run(umountCommand),
    )
    .command('key', 'manage passphrases (key slots)', (y) =>
      y
        .command(
          'add',
          'add a passphrase',
          (yy) => yy.option('new-passphrase-file', { type: 'string', describe: 'read the new passphrase from this file (env OBNAM_NEW_PASSPHRASE)' }),
          run(keyAddCommand),
        )
        .command('list', 'list key slots', {}, run(keyListCommand))
        .command('remove <id>', 'remove a key slot', (yy) => yy.positional('id', { type: 'string', demandOption: true }), run(keyRemoveCommand))
        .demandCommand(1, 'key needs a subcommand: add, list or remove'),
    )
    .command('identity', 'manage your identity (the key pair of a member of shared repositories)', (y) =>
      y
        .command(
          'new',
          'create an identity and print its public key',
          (yy) => yy.option('force', { type: 'boolean', describe: 'replace an existing identity (the old one is kept beside it)' }),
          run(identityNewCommand),
        )
        .command('show', 'print the public key of your identity', {}, run(identityShowCommand))
        .demandCommand(1, 'identity needs a subcommand: new or show'),
    )
    .command('member', 'manage the members of a shared repository', (y) =>
      y
        .command(
          'add <pubkey>',
          'add a member: their public key (obnam identity show prints it), a name',
          (yy) =>
            yy
              .positional('pubkey', { type: 'string', demandOption: true })
              .option('name', { type: 'string', demandOption: true, describe: 'the member name: 1-64 of a-z 0-9 . _ -' })
              .option('can-delete', { type: 'boolean', describe: "may forget other members' snapshots, collect garbage, add and remove members" }),
          run(memberAddCommand),
        )
        .command('list', 'list the members', {}, run(memberListCommand))
        .command('remove <name>', 'remove a member (keys are not rotated: revoke their server grant too)', (yy) => yy.positional('name', { type: 'string', demandOption: true }), run(memberRemoveCommand))
        .demandCommand(1, 'member needs a subcommand: add, list or remove'),
    )
    .command(
      'share [snapshots..]',
      'let a member read snapshots of yours (SNAPSHOT: id, id prefix or latest), or with --host every snapshot of a host, future ones included',
      (y) =>
        y
          .positional('snapshots', { type: 'string', array: true, describe: 'snapshots to share' })
          .option('with', { type: 'string', demandOption: true, describe: 'the member to share with' })
          .option('host', { type: 'string', describe: 'a standing grant: every snapshot of this host, now and later' }),
      run(shareCommand),
    )
    .command(
      'unshare [snapshots..]',
      'withdraw a standing grant (--host) or delete shares of snapshots; what the member already read stays theirs',
      (y) =>
        y
          .positional('snapshots', { type: 'string', array: true, describe: 'snapshots whose shares to delete' })
          .option('with', { type: 'string', demandOption: true, describe: 'the member' })
          .option('host', { type: 'string', describe: 'withdraw the standing grant for this host' }),
      run(unshareCommand),
    )
    .demandCommand(1, 'give a command; see obnam --help')
    .completion('completion', false)
    .strict()
    .version(VERSION)
    .help()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((msg, err) => {
      // yargs' own parse errors (YError) are usage errors too; anything else is a command's failure.
      if (err && err.name !== 'YError') throw err;
      throw new ObnamError('USAGE', msg ?? err?.message ?? 'bad command line');
    });
  try {
    await parser.parseAsync();
    return exitCode;
  } catch (e) {
    reportError(e);
    if (e instanceof ObnamError && e.code === 'USAGE' && !process.env.OBNAM_DEBUG) {
      process.stderr.write('(see obnam --help)\n');
    }
    return e instanceof ObnamError ? exitCodeFor(e) : EXIT_ERROR;
  }
}

/** Options whose value may be "-" (stdin). */
const STDIN_VALUED = new Set(['--files-from']);

/**
 * "--files-from -" as "--files-from=-": yargs does not take a lone "-" as the
 * value of an option with one argument.
 */
function joinStdinValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') return [...out, ...argv.slice(i)];
    if (STDIN_VALUED.has(argv[i]!) && argv[i + 1] === '-') out.push(`${argv[i++]}=-`);
    else out.push(argv[i]!);
  }
  return out;
}

/** Runs the command line of this process (bin/obnam passes no hooks). */
export function runCli(hooks: CliHooks = {}): void {
  exitQuietlyOnClosedOutput();
  main(hideBin(process.argv), hooks).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      reportError(e);
      process.exitCode = EXIT_ERROR;
    },
  );
}
