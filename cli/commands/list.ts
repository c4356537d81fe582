/**
 * obnam list: the snapshots, oldest first. A snapshot that cannot be read is
 * named on stderr and counted; `--json` lists it last, as
 * `{"id", "short_id", "damaged": true, "error"}` (readable ones have
 * `"damaged": false`).
 */
import { GlobalArgs, makeContext, openRepository } from '../context.js';
import { EXIT_OK } from '../exit.js';
import { localTime, snapshotJson } from '../format.js';
import { formatBytes } from '../progress.js';

export async function listCommand(args: GlobalArgs): Promise<number> {
  const ctx = await makeContext(args);
  const repo = await openRepository(ctx);
  try {
    const { snapshots: snaps, damaged } = await repo.scanSnapshots();
    if (ctx.json) {
      const out = [
        ...snaps.map((s) => ({ ...snapshotJson(s), damaged: false })),
        ...damaged.map((d) => ({ id: d.id, short_id: d.id.slice(0, 8), damaged: true, error: d.error.message })),
      ];
      process.stdout.write(JSON.stringify(out) + '\n');
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
    process.stdout.write(`${snaps.length} snapshot${snaps.length === 1 ? '' : 's'}${damaged.length ? `, ${damaged.length} damaged` : ''}\n`);
    return EXIT_OK;
  } finally {
    await repo.close();
  }
}
