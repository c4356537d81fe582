/**
 * obnam diff SNAPSHOT1 SNAPSHOT2 [PATH]: what changed from the first
 * snapshot to the second, one line per path ("+" added, "-" removed, "M"
 * content, "U" metadata only, "T" type; directories end with "/"), then a
 * summary. --json streams one document:
 * { "snapshot1", "snapshot2", "path", "changes": [{ "modifier", "path",
 *   "type", "fields"?, "previous_type"?, "path_base64"? }...], "summary" }.
 */
import { DiffChange, diffSnapshots, visibleType } from '../../lib/diff/engine.js';
import { snapshotPathComponents } from '../../lib/repo/treewalk.js';
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { quietOnClosedStdout, stdoutOutput } from '../output.js';
import { cancelSignal } from '../signals.js';
import { snapshotRoot } from '../../lib/repo/views.js';

export interface DiffArgs extends GlobalArgs {
  snapshot1: string;
  snapshot2: string;
  path?: string;
}

interface Counts {
  files: number;
  dirs: number;
  others: number;
}

export interface DiffSummary {
  added: Counts;
  removed: Counts;
  /** M, U and T lines. */
  modified: number;
  metadata: number;
  type: number;
}

const counts = (): Counts => ({ files: 0, dirs: 0, others: 0 });

function tally(s: DiffSummary, c: DiffChange): void {
  if (c.marker === 'M') s.modified++;
  else if (c.marker === 'U') s.metadata++;
  else if (c.marker === 'T') s.type++;
  else {
    const side = c.marker === '+' ? s.added : s.removed;
    const t = visibleType((c.after ?? c.before)!);
    if (t === 'file') side.files++;
    else if (t === 'dir') side.dirs++;
    else side.others++;
  }
}

const isUtf8 = (b: Buffer) => Buffer.from(b.toString('utf8'), 'utf8').equals(b);

function changeJson(c: DiffChange): Record<string, unknown> {
  const e = (c.after ?? c.before)!;
  const out: Record<string, unknown> = { modifier: c.marker, path: c.path.toString('utf8'), type: visibleType(e) };
  if (!isUtf8(c.path)) out.path_base64 = c.path.toString('base64');
  if (c.marker === 'T') out.previous_type = visibleType(c.before!);
  if (c.fields && c.marker !== 'T') out.fields = c.fields;
  return out;
}

function changeLine(c: DiffChange): Buffer {
  const dir = visibleType((c.after ?? c.before)!) === 'dir';
  return Buffer.concat([Buffer.from(c.marker.padEnd(5)), c.path, Buffer.from(dir ? '/\n' : '\n')]);
}

const plural = (n: number, one: string, many = one + 's') => `${n} ${n === 1 ? one : many}`;
const describeCounts = (c: Counts) => `${plural(c.files, 'file')}, ${plural(c.dirs, 'directory', 'directories')}, ${plural(c.others, 'other')}`;

export async function diffCommand(args: DiffArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const [s1, s2] = [await repo.resolveSnapshot(args.snapshot1), await repo.resolveSnapshot(args.snapshot2)];
    const components = snapshotPathComponents(args.path ?? '/');
    const base = components.length ? '/' + components.map(String).join('/') : '/';
    const changes = diffSnapshots({
      load: (id, key) => repo.getTree(id, { key }),
      rootBefore: snapshotRoot(s1),
      rootAfter: snapshotRoot(s2),
      path: components,
      signal: cancelSignal(),
    });
    const summary: DiffSummary = { added: counts(), removed: counts(), modified: 0, metadata: 0, type: 0 };
    const out = stdoutOutput();
    return await quietOnClosedStdout(async () => {
      if (ctx.json) {
        await out.write(`{"snapshot1":${JSON.stringify(s1.id)},"snapshot2":${JSON.stringify(s2.id)},"path":${JSON.stringify(base)},"changes":[`);
        let first = true;
        for await (const c of changes) {
          tally(summary, c);
          await out.write((first ? '' : ',') + JSON.stringify(changeJson(c)));
          first = false;
        }
        await out.write(`],"summary":${JSON.stringify(summary)}}\n`);
      } else {
        await out.write(`comparing snapshot ${s1.id.slice(0, 8)} to ${s2.id.slice(0, 8)}${components.length ? ` below ${base}` : ''}:\n\n`);
        for await (const c of changes) {
          tally(summary, c);
          await out.write(changeLine(c));
        }
        await out.write(
          `\nadded:    ${describeCounts(summary.added)}\nremoved:  ${describeCounts(summary.removed)}\n` +
            `changed:  ${summary.modified} content (M), ${summary.metadata} metadata only (U), ${summary.type} type (T)\n`,
        );
      }
      await out.flush();
      return EXIT_OK;
    });
  } finally {
    await repo.close();
  }
}
