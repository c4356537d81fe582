/**
 * The obnam-server command line (yargs): init, client add/list/remove,
 * namespace add/list/remove, grant, revoke, serve, scrub, repack, fingerprint.
 * Errors are reported here, in one place: one line on stderr and exit
 * status 1.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { describeError, ObnamError } from '../lib/errors.js';
import { clientAddCommand, clientListCommand, clientRemoveCommand } from './commands/client.js';
import { fingerprintCommand } from './commands/fingerprint.js';
import { initCommand } from './commands/init.js';
import { grantCommand, namespaceAddCommand, namespaceListCommand, namespaceRemoveCommand, revokeCommand } from './commands/namespace.js';
import { repackCommand } from './commands/repack.js';
import { scrubCommand } from './commands/scrub.js';
import { serveCommand } from './commands/serve.js';
import { VERSION } from '../lib/version.js';

// The AWS SDK (S3 storage) prints a multi-line notice on Node 20 that its releases after
// January 2027 need Node 22: not for the operator's terminal at every command (see README).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export { VERSION };

type Handler = (args: never) => Promise<number>;

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const run = (handler: Handler) => async (args: unknown) => {
    exitCode = await handler(args as never);
  };
  const parser = yargs(argv)
    .scriptName('obnam-server')
    .usage('$0 <command> [options]\n\nThe obnam backup server: stores encrypted objects for obnam clients over HTTPS.')
    .option('dir', { type: 'string', describe: 'server directory (env OBNAM_SERVER_DIR; default: the config file\'s directory or the current one)' })
    .option('config', { type: 'string', describe: 'config file (default DIR/obnam-server.yaml)' })
    .command(
      'init [dir]',
      'create a server directory: config, TLS certificate and key, storage',
      (y) =>
        y
          .positional('dir', { type: 'string', describe: 'the new server directory (default: the current directory)' })
          .option('cert', { type: 'string', describe: 'use this PEM certificate instead of making a self-signed one' })
          .option('key', { type: 'string', describe: 'the PEM private key of --cert' })
          .option('hostname', { type: 'string', array: true, describe: 'extra host name or IP address for the self-signed certificate' })
          .option('storage', { type: 'string', describe: 'where namespaces are kept: local (default, DIR/data) or s3://BUCKET/PREFIX' })
          .option('s3-endpoint', { type: 'string', describe: 'URL of the S3-compatible endpoint (path-style addressing), with --storage s3://...' })
          .option('s3-region', { type: 'string', describe: 'S3 region (default us-east-1)' }),
      run(initCommand),
    )
    .command('client', 'manage clients', (y) =>
      y
        .command(
          'add <name>',
          'add a client and print its access token (alone, on stdout)',
          (yy) =>
            yy
              .positional('name', { type: 'string', demandOption: true })
              .option('append-only', { type: 'boolean', describe: 'the client may add objects but not delete them' }),
          run(clientAddCommand),
        )
        .command('list', 'list clients', (yy) => yy.option('json', { type: 'boolean', describe: 'print JSON' }), run(clientListCommand))
        .command(
          'remove <name>',
          'revoke a client\'s access (its data stays on disk)',
          (yy) => yy.positional('name', { type: 'string', demandOption: true }),
          run(clientRemoveCommand),
        )
        .demandCommand(1, 'client needs a subcommand: add, list or remove'),
    )
    .command('namespace', 'manage namespaces that several clients share', (y) =>
      y
        .command('add <name>', 'add a namespace', (yy) => yy.positional('name', { type: 'string', demandOption: true }), run(namespaceAddCommand))
        .command('list', 'list namespaces and their grants', (yy) => yy.option('json', { type: 'boolean', describe: 'print JSON' }), run(namespaceListCommand))
        .command(
          'remove <name>',
          'remove a namespace and its grants (its data stays on disk)',
          (yy) => yy.positional('name', { type: 'string', demandOption: true }),
          run(namespaceRemoveCommand),
        )
        .demandCommand(1, 'namespace needs a subcommand: add, list or remove'),
    )
    .command(
      'grant <client> <namespace>',
      'give a client access to a namespace (replacing its grant there)',
      (y) =>
        y
          .positional('client', { type: 'string', demandOption: true })
          .positional('namespace', { type: 'string', demandOption: true })
          .option('access', { type: 'string', choices: ['read', 'append', 'full'], demandOption: true, describe: 'read; append: also add objects; full: also delete' }),
      run(grantCommand),
    )
    .command(
      'revoke <client> <namespace>',
      "remove a client's access to a namespace",
      (y) => y.positional('client', { type: 'string', demandOption: true }).positional('namespace', { type: 'string', demandOption: true }),
      run(revokeCommand),
    )
    .command(
      'serve',
      'serve clients over HTTPS until SIGTERM',
      (y) =>
        y
          .option('listen', { type: 'string', describe: 'HOST:PORT to listen on (default: listen in the config; port 0 picks a free port)' })
          .option('insecure-http', { type: 'boolean', describe: 'serve plain HTTP, only behind a TLS-terminating proxy' }),
      run(serveCommand),
    )
    .command(
      'scrub',
      'verify every stored object against its digest (no client keys needed); exit 1 if any is damaged',
      (y) => y.option('client', { type: 'string', describe: 'only this client' }).option('json', { type: 'boolean', describe: 'print JSON' }),
      run(scrubCommand),
    )
    .command(
      'repack [dir]',
      'give back the space of deleted objects: rewrite packs that are mostly unused (no client keys needed; safe while serve runs)',
      (y) =>
        y
          .positional('dir', { type: 'string', describe: 'the server directory (as --dir)' })
          .option('client', { type: 'string', describe: "only this client's own namespace" })
          .option('namespace', { type: 'string', describe: 'only this named namespace' })
          .option('all', { type: 'boolean', describe: 'every namespace (the default), those of removed clients included' })
          .option('max-unused', { type: 'string', describe: "rewrite packs when more than PERCENT of a namespace's stored bytes is unused (default: repack.max_unused_percent in the config, 10)" })
          .option('dry-run', { type: 'boolean', describe: 'report what would be rewritten; change nothing' })
          .option('json', { type: 'boolean', describe: 'print JSON' })
          .conflicts('all', ['client', 'namespace'])
          .conflicts('client', 'namespace'),
      run(repackCommand),
    )
    .command('fingerprint', "print the certificate's SHA-256 fingerprint", {}, run(fingerprintCommand))
    .demandCommand(1, 'give a command; see obnam-server --help')
    .completion('completion', false)
    .strict()
    .version(VERSION)
    .help()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new ObnamError('USAGE', msg);
    });
  try {
    await parser.parseAsync();
    return exitCode;
  } catch (e) {
    reportError(e);
    return 1;
  }
}

function reportError(e: unknown): void {
  const msg = e instanceof ObnamError ? e.message : `internal error: ${describeError(e)}`;
  process.stderr.write(`obnam-server: ${msg}\n`);
  if (e instanceof ObnamError && e.code === 'USAGE') process.stderr.write('(see obnam-server --help)\n');
  if (process.env.OBNAM_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
}

export function runServerCli(): void {
  main(hideBin(process.argv)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      reportError(e);
      process.exitCode = 1;
    },
  );
}
