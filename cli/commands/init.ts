/** obnam init: creates a repository (the default local one unless told otherwise). */
import { describeLocation, initRepository, makeContext, GlobalArgs } from '../context.js';
import { EXIT_OK } from '../exit.js';

export async function initCommand(args: GlobalArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await initRepository(ctx);
  await repo.close();
  const where = describeLocation(ctx.spec);
  if (ctx.json) process.stdout.write(JSON.stringify({ repository: repo.config.repositoryId, location: where, key: repo.keyId }) + '\n');
  else process.stdout.write(`created repository ${repo.config.repositoryId.slice(0, 8)} at ${where}\n`);
  return EXIT_OK;
}
