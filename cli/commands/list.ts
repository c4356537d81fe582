/** obnam list: the snapshots, oldest first. */
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { localTime, snapshotJson } from '../format.js';
import { formatBytes } from '../progress.js';

export async function listCommand(args: GlobalArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const snaps = await repo.listSnapshots();
    if (ctx.json) {
      process.stdout.write(JSON.stringify(snaps.map(snapshotJson)) + '\n');
      return EXIT_OK;
    }
    const rows = snaps.map((s) => [
      s.id.slice(0, 8),
      localTime(s.time),
      s.hostname,
      formatBytes(s.summary.bytes),
      String(s.summary.files),
      s.tags.join(','),
      s.paths.join(' '),
    ]);
    const head = ['ID', 'Time', 'Host', 'Size', 'Files', 'Tags', 'Paths'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
    process.stdout.write([fmt(head), ...rows.map(fmt)].join('\n') + '\n');
    process.stdout.write(`${snaps.length} snapshot${snaps.length === 1 ? '' : 's'}\n`);
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}
