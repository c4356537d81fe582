/** obnam key add|list|remove: passphrase slots of the repository. */
import { CliHooks, GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { isoSeconds } from '../format.js';
import { getNewPassphrase } from '../passphrase.js';

export interface KeyArgs extends GlobalArgs {
  id?: string;
  'new-passphrase-file'?: string;
}

export async function keyAddCommand(args: KeyArgs, hooks: CliHooks = {}): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const id = await repo.addKey(await getNewPassphrase(args['new-passphrase-file']), { kdf: hooks.newKeyKdf });
    if (ctx.json) process.stdout.write(JSON.stringify({ id }) + '\n');
    else process.stdout.write(`added key ${id.slice(0, 8)}\n`);
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}

export async function keyListCommand(args: KeyArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const keys = await repo.listKeys();
    if (ctx.json) {
      process.stdout.write(
        JSON.stringify(
          keys.map((k) => ({
            id: k.id,
            current: k.id === repo.keyId,
            created: isoSeconds(k.created),
            hostname: k.hostname,
            username: k.username,
            kdf: { algorithm: k.kdf.algorithm, log_n: k.kdf.logN, r: k.kdf.r, p: k.kdf.p },
          })),
        ) + '\n',
      );
    } else {
      for (const k of keys) {
        const when = isoSeconds(k.created).replace('T', ' ').replace(/\.\d+Z$/, 'Z');
        process.stdout.write(`${k.id === repo.keyId ? '*' : ' '} ${k.id.slice(0, 8)}  ${when}  ${k.username}@${k.hostname}\n`);
      }
    }
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}

export async function keyRemoveCommand(args: KeyArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const id = await repo.removeKey(args.id!);
    if (ctx.json) process.stdout.write(JSON.stringify({ removed: id }) + '\n');
    else process.stdout.write(`removed key ${id.slice(0, 8)}\n`);
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}
