/** obnam ls SNAPSHOT [PATH]: everything in a snapshot below PATH (default: all of it). */
import { resolvePath, snapshotPathComponents, walkTree, WalkedEntry } from '../../lib/repo/treewalk.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { bufferedOutput, quietOnClosedStdout, stdoutOutput } from '../output.js';
import { entryJson, localTime, modeString } from '../format.js';
import { snapshotRoot } from '../../lib/repo/views.js';

export interface LsArgs extends GlobalArgs {
  snapshot: string;
  path?: string;
  long?: boolean;
}

export async function lsCommand(args: LsArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const snap = await repo.resolveSnapshot(args.snapshot);
    const load = (id: string, key?: Uint8Array) => repo.getTree(id, { key });
    const components = snapshotPathComponents(args.path ?? '/');
    const { tree, entry } = await resolvePath(load, snapshotRoot(snap), components);
    const base = Buffer.from(components.length ? '/' + components.map(String).join('/') : '');
    // Streamed, also as JSON: memory stays bounded at any number of entries.
    const out = bufferedOutput(stdoutOutput());
    return await quietOnClosedStdout(async () => {
      let first = true;
      const emit = (w: WalkedEntry) => {
        if (!ctx.json) return out.write(formatLine(w, !!args.long) + '\n');
        const item = (first ? '' : ',') + JSON.stringify(entryJson(w.path, w.entry));
        first = false;
        return out.write(item);
      };
      if (ctx.json) await out.write(`{"snapshot":${JSON.stringify(snap.id)},"path":${JSON.stringify(base.toString() || '/')},"entries":[`);
      if (entry) await emit({ path: base, entry });
      if (tree) for await (const w of walkTree(load, tree, base)) await emit(w);
      if (ctx.json) await out.write(']}\n');
      await out.flush();
      return EXIT_OK;
    });
  } finally {
    await repo.close();
  }
}

function formatLine({ path, entry: e }: WalkedEntry, long: boolean): string {
  const p = path.toString('utf8');
  if (!long) return p;
  const owner = `${e.user ?? e.uid}/${e.group ?? e.gid}`;
  const extra = e.type === 'symlink' ? ` -> ${e.target!.toString()}` : e.type === 'hardlink' ? ` => /${e.link!.toString()}` : '';
  return `${modeString(e)} ${owner.padEnd(17)} ${String(e.size).padStart(12)} ${localTime(e.mtime)} ${p}${extra}`;
}
