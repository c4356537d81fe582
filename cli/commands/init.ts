/** obnam init: creates a repository (the default local one unless told otherwise). */
import { ObnamError } from '../../lib/errors.js';
import { CliHooks, describeLocation, initRepository, makeContext, GlobalArgs } from '../context.js';
import { EXIT_OK } from '../exit.js';

export interface InitArgs extends GlobalArgs {
  'compression-level'?: number;
}

export async function initCommand(args: InitArgs, hooks: CliHooks = {}): Promise<number> {
  const level = args['compression-level'];
  if (level !== undefined && (!Number.isInteger(level) || level < 0 || level > 19)) {
    throw new ObnamError('USAGE', '--compression-level must be a whole number from 0 (off) to 19');
  }
  const ctx = await makeContext(args);
  const repo = await initRepository(ctx, level, hooks);
  await repo.close();
  const where = describeLocation(ctx.spec);
  if (ctx.json) process.stdout.write(JSON.stringify({ repository: repo.config.repositoryId, location: where, key: repo.keyId }) + '\n');
  else process.stdout.write(`created repository ${repo.config.repositoryId.slice(0, 8)} at ${where}\n`);
  return EXIT_OK;
}
