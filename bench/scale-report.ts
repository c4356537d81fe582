/**
 * The scale benchmark's outputs: a Markdown table per file count (obnam beside
 * restic, step by step), a growth table (how each step's time and memory grow
 * with the file count, against linear), and an SVG chart drawn here: time and
 * peak RSS against file count on log axes, one panel per step, obnam beside
 * restic, with a dotted line of linear growth from obnam's first point.
 */

export interface ScaleRow {
  files: number;
  /** Where the data came from: disk or fuse. */
  source: string;
  tool: string;
  step: string;
  /** NaN when the step was skipped or failed (then note says why). */
  seconds: number;
  cpuSeconds?: number;
  peakRssMb?: number;
  /** Repository size after the step (backups). */
  repoMb?: number;
  note?: string;
}

export const STEPS = ['backup', 're-backup', 'mutated backup', 'ls', 'fsck', 'restore', 'walk', 'prune'] as const;

const f1 = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
const ratio = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '';
const count = (n: number) => n.toLocaleString('en-US');

function find(rows: ScaleRow[], files: number, tool: string, step: string): ScaleRow | undefined {
  return rows.find((r) => r.files === files && r.tool === tool && r.step === step);
}

/** Markdown: one table per file count, then the growth table. */
export function markdown(rows: ScaleRow[], header: string): string {
  const counts = [...new Set(rows.map((r) => r.files))].sort((a, b) => a - b);
  const peers = [...new Set(rows.map((r) => r.tool))].filter((t) => t !== 'obnam');
  const out = [header, ''];
  for (const n of counts) {
    const src = rows.find((r) => r.files === n)?.source ?? '?';
    out.push(`### ${count(n)} files (source: ${src})`, '');
    const head = ['step', 'obnam s', 'obnam CPU s', 'obnam RSS MiB', 'obnam repo MB'];
    for (const p of peers) head.push(`${p} s`, `${p} CPU s`, `${p} RSS MiB`, `${p} repo MB`, 'time vs ' + p, 'RSS vs ' + p);
    head.push('notes');
    out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const step of STEPS) {
      const o = find(rows, n, 'obnam', step);
      if (!o && !peers.some((p) => find(rows, n, p, step))) continue;
      const cells = [step, f1(o?.seconds, 2), f1(o?.cpuSeconds), f1(o?.peakRssMb, 0), f1(o?.repoMb)];
      const notes = o?.note ? [`obnam: ${o.note}`] : [];
      for (const p of peers) {
        const r = find(rows, n, p, step);
        cells.push(f1(r?.seconds, 2), f1(r?.cpuSeconds), f1(r?.peakRssMb, 0), f1(r?.repoMb), ratio(o?.seconds, r?.seconds), ratio(o?.peakRssMb, r?.peakRssMb));
        if (r?.note) notes.push(`${p}: ${r.note}`);
      }
      cells.push(notes.join('; '));
      out.push(`| ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  if (counts.length > 1) {
    out.push('### Growth with the file count', '');
    out.push('Time and RSS at each file count divided by the same at the smallest; "linear" is the ratio of the file counts.', '');
    const head = ['tool', 'step', ...counts.slice(1).map((n) => `time x (${count(n)}, linear ${(n / counts[0]!).toFixed(0)}x)`), ...counts.slice(1).map((n) => `RSS x (${count(n)})`)];
    out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const tool of ['obnam', ...peers]) {
      for (const step of STEPS) {
        const base = find(rows, counts[0]!, tool, step);
        if (!base || !Number.isFinite(base.seconds)) continue;
        const cells = [tool, step];
        for (const n of counts.slice(1)) cells.push(ratio(find(rows, n, tool, step)?.seconds, base.seconds));
        for (const n of counts.slice(1)) cells.push(ratio(find(rows, n, tool, step)?.peakRssMb, base.peakRssMb));
        out.push(`| ${cells.join(' | ')} |`);
      }
    }
    out.push('');
  }
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS: Record<string, string> = { obnam: '#1f77b4', restic: '#d62728' };
const colorOf = (tool: string) => COLORS[tool] ?? '#2ca02c';

/** Tick values on a log axis: 1, 2 and 5 times the powers of ten (only powers of ten over many decades). */
function ticks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const steps = Math.log10(hi / lo) > 3 ? [1] : [1, 2, 5];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) for (const m of steps) out.push(m * 10 ** e);
  return out;
}

const label = (v: number) => (v >= 1e6 ? `${+(v / 1e6).toPrecision(3)}M` : v >= 1e3 ? `${+(v / 1e3).toPrecision(3)}k` : String(+v.toPrecision(3)));

/** One log-log panel: `metric` of `step` against the file count, a line per tool. */
function panel(rows: ScaleRow[], step: string, metric: 'seconds' | 'peakRssMb', x0: number, y0: number, w: number, h: number): string {
  const pts = rows.filter((r) => r.step === step && Number.isFinite(r[metric] ?? NaN) && (r[metric] ?? 0) > 0);
  const parts: string[] = [];
  const title = `${step}: ${metric === 'seconds' ? 'time (s)' : 'peak RSS (MiB)'}`;
  parts.push(`<text x="${x0 + w / 2}" y="${y0 - 6}" text-anchor="middle" font-size="12">${esc(title)}</text>`);
  parts.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  const counts = [...new Set(rows.map((r) => r.files))].sort((a, b) => a - b);
  const skipped = [...new Set(rows.filter((r) => r.step === step && r.note?.startsWith('skipped')).map((r) => r.tool))];
  if (skipped.length) {
    parts.push(`<text x="${x0 + 6}" y="${y0 + 14}" font-size="10" fill="#777">${esc(skipped.join(', '))}: not implemented</text>`);
  }
  if (!pts.length || !counts.length) {
    parts.push(`<text x="${x0 + w / 2}" y="${y0 + h / 2}" text-anchor="middle" font-size="11" fill="#777">no data</text>`);
    return parts.join('\n');
  }
  const xLo = Math.min(...counts) / 2;
  const xHi = Math.max(...counts) * 2;
  const vals = pts.map((p) => p[metric]!);
  // The linear reference reaches from obnam's first point to the largest count.
  const first = pts.filter((p) => p.tool === 'obnam').sort((a, b) => a.files - b.files)[0];
  const linearEnd = first ? first[metric]! * (Math.max(...counts) / first.files) : undefined;
  const yLo = Math.min(...vals) / 2;
  const yHi = Math.max(...vals, metric === 'seconds' && linearEnd ? linearEnd : 0) * 2;
  const lx = (v: number) => x0 + ((Math.log10(v) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo))) * w;
  const ly = (v: number) => y0 + h - ((Math.log10(v) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * h;
  for (const t of ticks(xLo, xHi)) {
    if (t < xLo || t > xHi) continue;
    parts.push(`<line x1="${lx(t)}" y1="${y0 + h}" x2="${lx(t)}" y2="${y0 + h + 4}" stroke="#999"/>`);
    parts.push(`<text x="${lx(t)}" y="${y0 + h + 15}" text-anchor="middle" font-size="10">${label(t)}</text>`);
  }
  for (const t of ticks(yLo, yHi)) {
    if (t < yLo || t > yHi) continue;
    parts.push(`<line x1="${x0}" y1="${ly(t)}" x2="${x0 + w}" y2="${ly(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${x0 - 4}" y="${ly(t) + 3}" text-anchor="end" font-size="10">${label(t)}</text>`);
  }
  if (metric === 'seconds' && first && linearEnd && counts.length > 1) {
    parts.push(
      `<line x1="${lx(first.files)}" y1="${ly(first.seconds)}" x2="${lx(Math.max(...counts))}" y2="${ly(linearEnd)}" stroke="#888" stroke-dasharray="2,3"/>`,
    );
  }
  for (const tool of [...new Set(pts.map((p) => p.tool))]) {
    const line = pts.filter((p) => p.tool === tool).sort((a, b) => a.files - b.files);
    const c = colorOf(tool);
    if (line.length > 1) {
      parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${line.map((p) => `${lx(p.files).toFixed(1)},${ly(p[metric]!).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const p of line) {
      parts.push(`<circle cx="${lx(p.files).toFixed(1)}" cy="${ly(p[metric]!).toFixed(1)}" r="3" fill="${c}"><title>${esc(`${tool} ${step} ${count(p.files)} files: ${p[metric]!.toFixed(2)}`)}</title></circle>`);
    }
  }
  return parts.join('\n');
}

/** The chart: for every step a time panel and an RSS panel, two steps a row. */
export function svgChart(rows: ScaleRow[], title: string): string {
  const w = 220;
  const h = 150;
  const gapX = 60;
  const gapY = 55;
  const cols = 4;
  const steps = STEPS.filter((s) => rows.some((r) => r.step === s));
  const rowsN = Math.ceil((steps.length * 2) / cols);
  const width = 40 + cols * (w + gapX);
  const height = 70 + rowsN * (h + gapY) + 20;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="20" y="22" font-size="15">${esc(title)}</text>`,
  ];
  const tools = [...new Set(rows.map((r) => r.tool))];
  tools.forEach((t, i) => {
    parts.push(`<line x1="${20 + i * 120}" y1="40" x2="${45 + i * 120}" y2="40" stroke="${colorOf(t)}" stroke-width="2"/>`);
    parts.push(`<text x="${50 + i * 120}" y="44" font-size="12">${esc(t)}</text>`);
  });
  parts.push(`<line x1="${20 + tools.length * 120}" y1="40" x2="${45 + tools.length * 120}" y2="40" stroke="#888" stroke-dasharray="2,3"/>`);
  parts.push(`<text x="${50 + tools.length * 120}" y="44" font-size="12">linear growth from obnam's first point (x: files, log scales)</text>`);
  steps.forEach((step, k) => {
    for (const [j, metric] of (['seconds', 'peakRssMb'] as const).entries()) {
      const idx = k * 2 + j;
      const x = 50 + (idx % cols) * (w + gapX);
      const y = 80 + Math.floor(idx / cols) * (h + gapY);
      parts.push(panel(rows, step, metric, x, y, w, h));
    }
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
