/**
 * obnam dump SNAPSHOT PATH: a file's content on stdout, as restic's dump (no
 * target directory needed); a directory as a tar archive (refused when stdout
 * is a terminal). A reader that stops early (`| head`) ends it quietly.
 */
import { dump, dumpKind, DumpInput } from '../../lib/dump/engine.js';
import { ObnamError } from '../../lib/errors.js';
import { snapshotPathComponents } from '../../lib/repo/treewalk.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { quietOnClosedStdout, stdoutOutput } from '../output.js';
import { cancelSignal } from '../signals.js';
import { snapshotRoot } from '../../lib/repo/views.js';

export interface DumpArgs extends GlobalArgs {
  snapshot: string;
  path: string;
}

export async function dumpCommand(args: DumpArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const snap = await repo.resolveSnapshot(args.snapshot);
    const input: DumpInput = {
      load: (id, key) => repo.getTree(id, { key }),
      getChunk: (id, key) => repo.getObject('chunk', id, { key }),
      root: snapshotRoot(snap),
      path: snapshotPathComponents(args.path),
      signal: cancelSignal(),
      onWarning: (path, message) => process.stderr.write(`obnam: warning: ${path}: ${message}\n`),
    };
    if (process.stdout.isTTY && (await dumpKind(input)).kind === 'tar') {
      throw new ObnamError('USAGE', `${args.path} is a directory: its tar archive would go to the terminal; redirect stdout to a file or a pipe`);
    }
    const out = stdoutOutput();
    return await quietOnClosedStdout(async () => {
      await dump(input, (data) => out.write(data));
      await out.flush();
      return EXIT_OK;
    });
  } finally {
    await repo.close();
  }
}
