/**
 * obnam upgrade: converts a format version 1 repository to version 2 in
 * place (lib/repo/upgrade.ts). Idempotent and safe to interrupt: run it again.
 */
import { upgradeRepository } from '../../lib/repo/upgrade.js';
import { openStore } from '../../lib/store/open.js';
import { describeLocation, GlobalArgs, makeContext, readPassphrase } from '../context.js';
import { EXIT_OK } from '../exit.js';

export async function upgradeCommand(args: GlobalArgs): Promise<number> {
  const ctx = await makeContext(args);
  const pass = await readPassphrase(ctx);
  const store = await openStore(ctx.spec);
  try {
    const r = await upgradeRepository(store, pass);
    if (ctx.json) {
      process.stdout.write(JSON.stringify(r) + '\n');
    } else if (r.already) {
      process.stdout.write(`${describeLocation(ctx.spec)} already has format version ${r.to}: nothing to do\n`);
    } else {
      process.stdout.write(
        `upgraded ${describeLocation(ctx.spec)} from format version ${r.from} to ${r.to} (gc grace period ${r.gcGrace} s)\n` +
          'obnam clients older than this one (format version 1 only) now refuse it; no such client may have been writing to it meanwhile.\n' +
          'obnam prune can now collect what forgotten snapshots left.\n',
      );
    }
    return EXIT_OK;
  } finally {
    await store.close();
  }
}
