/**
 * Churn bench (issue 12, "churn amplification"): how many bytes, and how many
 * objects, an incremental backup stores after a small change to a data set
 * of mostly small files, for obnam repositories made with several writer
 * settings and for restic, all backing up the same trees in the same run.
 *
 * Steps: build the data set; back it up into every repository; apply the
 * mutation; back it up again; report what each repository grew by (bytes on
 * disk, du --apparent-size) and the objects the second backup added.
 *
 * The mutation is deterministic (bench/scale-data.ts mutationOf, applied to
 * the data set's regular files in sorted path order): 1% of the files get one
 * line appended, 0.1% are deleted, and 0.2% get a new text file beside them
 * (64 B-8 KiB). The issue's run (54,000 files: 1%, 100 deleted, 200 new)
 * had the same kind of change.
 *
 * Objects: obnam's new chunks, trees and the snapshot (its --json summary);
 * restic's new data and tree blobs and the snapshot (both pack objects into
 * larger files on disk; the count is what each indexes and fetches).
 * Rows "obnam (model)": the small-file bundle model (bench/churn-model.ts,
 * format-spec/proposal-bundles.md) computed from the largest inline_max
 * repository's real trees (BENCH_BUNDLE: comma-separated bundle targets,
 * default none). Format version 4 has real bundles, so the model is only
 * meaningful on trees that still inline small files (a version 2 repository).
 *
 * Writer settings: obnam's `inline_max` (obnam init --inline-max; recorded in
 * the config, format-spec 10.4). Tree paging is not a writer setting: its
 * split rule is part of the format (format-spec 2.2, 8.7), so it has no row.
 *
 * Run: npm run bench:churn, or npx tsc -p . && node dist/bench/churn.js [--json]
 *
 * Settings (environment):
 *   BENCH_DATA    colon-separated directories copied into the data set
 *                 (default /usr/share/doc:/usr/include: about 230 MB, 13,600 files)
 *   BENCH_SOURCE  copy (default: the directories above) or synthetic (the
 *                 bench:scale data set, bench/scale-data.ts, whose 1% changed
 *                 files get new contents rather than an appended line)
 *   BENCH_FILES   synthetic only: number of files (default 20000)
 *   BENCH_INLINE  comma-separated inline_max values, one obnam repository each
 *                 (default 16384,4096,1024,0)
 *   BENCH_LEVEL   obnam init --compression-level for every obnam repository
 *                 (default: obnam's default, 1)
 *   BENCH_PEERS   comma-separated peers (default restic; empty for none; a
 *                 missing one is skipped with a message)
 *   BENCH_DIR     work directory (default a new one under /tmp); removed at the
 *                 end unless given
 *   BENCH_OUT     also write the table (markdown) to this file
 *
 * Run time on 2 loaded vCPUs with the defaults: about 5-10 minutes.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { modelBundles } from './churn-model.js';
import { duBytes, has } from './measure.js';
import { contentAt, hash, layout, mutateTree, mutationOf, writeTree } from './scale-data.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OBNAM = path.join(ROOT, 'bin', 'obnam');
const MiB = 2 ** 20;
const ENV = { ...process.env, OBNAM_PASSPHRASE: 'bench', RESTIC_PASSWORD: 'bench', OBNAM_NO_PROGRESS: '1' };

/** One repository under test: how to make it and how to back up into it, with what each backup added. */
interface Subject {
  tool: 'obnam' | 'restic';
  setting: string;
  repo: string;
  /** obnam: the repository's inline_max. */
  inlineMax?: number;
  init(): void;
  /** Backs up `data`; returns the objects this backup added. */
  backup(data: string): number;
}

export interface ChurnRow {
  tool: string;
  setting: string;
  /** obnam: the repository's inline_max. */
  inlineMax?: number;
  /** Repository size after the first backup, bytes. */
  firstBytes: number;
  firstObjects: number;
  /** What the backup after the mutation added: bytes on disk and objects. */
  churnBytes: number;
  churnObjects: number;
  churnSeconds: number;
}

export interface ChurnResult {
  source: string;
  files: number;
  bytes: number;
  mutation: { changed: number; deleted: number; added: number; changedBytes: number };
  /** Directories holding a changed, deleted or added file. */
  touchedDirs: number;
  /** Per inline_max: bytes of small files (<= inline_max) in the directories the mutation touched. */
  siblingInlineBytes: Record<string, number>;
  rows: ChurnRow[];
}

function runOk(cmd: string, args: string[], okCodes = [0]): string {
  const r = spawnSync(cmd, args, { env: ENV, encoding: 'utf8', maxBuffer: 64 * MiB });
  if (!okCodes.includes(r.status ?? -1)) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  }
  return r.stdout;
}

function obnamSubject(work: string, inlineMax: number): Subject {
  const repo = path.join(work, `obnam-inline-${inlineMax}`);
  const ob = (args: string[], ok?: number[]) => runOk(process.execPath, [OBNAM, '--repo', repo, ...args], ok);
  return {
    tool: 'obnam',
    setting: `inline_max ${inlineMax}${process.env.BENCH_LEVEL ? `, zstd ${process.env.BENCH_LEVEL}` : ''}`,
    repo,
    inlineMax,
    init: () => void ob(['init', '--inline-max', String(inlineMax), ...(process.env.BENCH_LEVEL ? ['--compression-level', process.env.BENCH_LEVEL] : [])]),
    backup(data) {
      // Exit 3: some file could not be read (warned); the snapshot is written.
      const s = JSON.parse(ob(['--json', 'backup', data], [0, 3]).trim().split('\n').pop()!).summary;
      return s.newChunks + s.newTrees + 1;
    },
  };
}

function resticSubject(work: string): Subject {
  const repo = path.join(work, 'restic');
  const rs = (args: string[]) => runOk('restic', ['-r', repo, ...args]);
  return {
    tool: 'restic',
    setting: 'restic defaults',
    repo,
    init: () => void rs(['-q', 'init']),
    backup(data) {
      const lines = rs(['--json', 'backup', data]).trim().split('\n');
      const s = lines.map((l) => JSON.parse(l)).find((m) => m.message_type === 'summary');
      return s.data_blobs + s.tree_blobs + 1;
    },
  };
}

/** Regular files below `root`, in sorted path order (the order the mutation indexes). */
function regularFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(root);
  return out;
}

/** The content of the file the mutation adds beside file `i`: 64 B-8 KiB of text. */
function addedContent(i: number): Buffer {
  const size = 64 + (hash(i, 22) % 8129);
  return contentAt({ size, seed: hash(i, 21), text: true, mode: 0o100644, mtime: 0, ino: 0 }, 0, size);
}

/** Applies the 1% mutation to the copied tree; returns what it did. */
function mutateCopy(files: string[]): ChurnResult['mutation'] {
  const counts = { changed: 0, deleted: 0, added: 0, changedBytes: 0 };
  files.forEach((f, i) => {
    const m = mutationOf(i);
    if (!m) return;
    if (m === 'changed') {
      fs.appendFileSync(f, `churn bench: line ${i} appended\n`);
      counts.changed++;
      counts.changedBytes += fs.statSync(f).size;
    } else if (m === 'deleted') {
      fs.rmSync(f);
      counts.deleted++;
    } else {
      fs.writeFileSync(path.join(path.dirname(f), `churn-new-${i}.txt`), addedContent(i));
      counts.added++;
    }
  });
  return counts;
}

/** Size and mtime of every regular file below `root`, by path: what tells a changed file. */
function fileStates(root: string): Map<string, string> {
  return new Map(regularFiles(root).map((f) => [f, ((st) => `${st.size}:${st.mtimeMs}`)(fs.statSync(f))]));
}

/** Bytes of the files of at most `limit` bytes directly in the directories `dirs` (what rewriting their trees re-stores inline). */
function smallBytesIn(dirs: Set<string>, limit: number): number {
  let n = 0;
  for (const d of dirs) {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (!e.isFile()) continue;
      const size = fs.statSync(path.join(d, e.name)).size;
      if (size <= limit) n += size;
    }
  }
  return n;
}

export async function runChurnBench(work: string): Promise<ChurnResult> {
  const source = process.env.BENCH_SOURCE ?? 'copy';
  const inlines = (process.env.BENCH_INLINE ?? '16384,4096,1024,0').split(',').filter(Boolean).map(Number);
  const peers = (process.env.BENCH_PEERS ?? 'restic').split(',').filter(Boolean);
  const data = path.join(work, 'data');
  fs.rmSync(data, { recursive: true, force: true });
  fs.mkdirSync(data, { recursive: true });

  let describe: string;
  if (source === 'copy') {
    const dirs = (process.env.BENCH_DATA ?? '/usr/share/doc:/usr/include').split(':').filter(Boolean);
    dirs.forEach((d, k) => runOk('cp', ['-a', d, path.join(data, `${k}-${path.basename(d)}`)]));
    describe = `a copy of ${dirs.join(' + ')}`;
  } else if (source === 'synthetic') {
    const n = Number(process.env.BENCH_FILES ?? 20000);
    await writeTree(layout(n), path.join(data, 'set'));
    describe = `the bench:scale synthetic set of ${n} files`;
  } else throw new Error(`BENCH_SOURCE must be copy or synthetic, not ${source}`);

  const subjects: Subject[] = inlines.map((v) => obnamSubject(work, v));
  for (const p of peers) {
    if (p !== 'restic') process.stdout.write(`churn bench: unknown peer ${p}: skipped\n`);
    else if (!has('restic')) process.stdout.write('churn bench: restic is not installed: skipping it (apt-get install restic)\n');
    else subjects.push(resticSubject(work));
  }
  for (const s of subjects) fs.rmSync(s.repo, { recursive: true, force: true });

  const files = regularFiles(data);
  const bytes = duBytes(data);
  process.stdout.write(`churn bench: ${describe}: ${files.length} files, ${(bytes / 1e6).toFixed(0)} MB\n`);
  const rows = new Map<Subject, ChurnRow>();
  for (const s of subjects) {
    s.init();
    const firstObjects = s.backup(data);
    rows.set(s, { tool: s.tool, setting: s.setting, inlineMax: s.inlineMax, firstBytes: duBytes(s.repo), firstObjects, churnBytes: 0, churnObjects: 0, churnSeconds: 0 });
    process.stdout.write(`  ${s.tool} ${s.setting}: first backup stored ${(rows.get(s)!.firstBytes / MiB).toFixed(1)} MiB\n`);
  }

  const before = fileStates(data);
  let mutation: ChurnResult['mutation'];
  if (source === 'copy') mutation = mutateCopy(files);
  else {
    const l = layout(Number(process.env.BENCH_FILES ?? 20000));
    await mutateTree(l, path.join(data, 'set'), 0, 1);
    mutation = { changed: 0, deleted: 0, added: 0, changedBytes: 0 };
    for (let i = 0; i < l.files; i++) {
      const m = mutationOf(i);
      if (m) mutation[m]++;
    }
  }
  const after = fileStates(data);
  const touched = new Set<string>();
  for (const [f, st] of before) if (after.get(f) !== st) touched.add(path.dirname(f));
  for (const f of after.keys()) if (!before.has(f)) touched.add(path.dirname(f));
  process.stdout.write(`  mutation: ${mutation.changed} changed, ${mutation.deleted} deleted, ${mutation.added} added, in ${touched.size} directories\n`);

  for (const s of subjects) {
    const row = rows.get(s)!;
    const started = process.hrtime.bigint();
    row.churnObjects = s.backup(data);
    row.churnSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    row.churnBytes = duBytes(s.repo) - row.firstBytes;
    process.stdout.write(`  ${s.tool} ${s.setting}: backup after the mutation stored ${(row.churnBytes / MiB).toFixed(2)} MiB\n`);
  }
  const siblingInlineBytes: Record<string, number> = {};
  for (const v of inlines) siblingInlineBytes[String(v)] = smallBytesIn(touched, v);
  // The bundle proposal (format-spec/proposal-bundles.md), modelled on the repository with the largest inline_max.
  const widest = subjects.filter((s) => s.inlineMax !== undefined).sort((a, b) => b.inlineMax! - a.inlineMax!)[0];
  const targets = (process.env.BENCH_BUNDLE ?? '').split(',').filter(Boolean).map(Number);
  if (widest && targets.length) {
    const base = rows.get(widest)!;
    const m = await modelBundles(widest.repo, ENV.OBNAM_PASSPHRASE, targets);
    for (const t of m.targets) {
      rows.set({ ...widest }, {
        tool: 'obnam (model)',
        setting: `${widest.setting}, ${t.rule} bundles of ${t.target}`,
        inlineMax: widest.inlineMax,
        firstBytes: Number.NaN,
        firstObjects: base.firstObjects + t.firstObjects,
        churnBytes: base.churnBytes - m.newTreeBytes + t.metadataBytes + t.bundleBytes,
        churnObjects: base.churnObjects + t.objects - m.newTreeObjects,
        churnSeconds: Number.NaN,
      });
    }
  }
  return { source: describe, files: files.length, bytes, mutation, touchedDirs: touched.size, siblingInlineBytes, rows: [...rows.values()] };
}

/** The result as a markdown table, restic's row the reference for the ratio column. */
export function churnTable(r: ChurnResult): string {
  const ref = r.rows.find((x) => x.tool === 'restic');
  const mib = (b: number) => (b / MiB).toFixed(3);
  const num = (t: string) => (t === 'NaN' ? '-' : t);
  const lines = [
    `Data: ${r.source}, ${r.files} files, ${(r.bytes / 1e6).toFixed(0)} MB. Mutation: ${r.mutation.changed} files changed ` +
      `(${r.source.startsWith('a copy') ? 'one line appended' : 'new contents'})` +
      `, ${r.mutation.deleted} deleted, ${r.mutation.added} added, in ${r.touchedDirs} directories.`,
    '',
    '| tool | setting | first backup MiB | objects | after mutation: stored MiB | objects added | vs restic (bytes) | small-file bytes in touched dirs, MiB | seconds |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const x of r.rows) {
    // What the model stores in bundles instead is in its stored column.
    const inline = x.tool === 'obnam' ? mib(r.siblingInlineBytes[String(x.inlineMax)] ?? 0) : '';
    const ratio = ref && x !== ref ? `${(x.churnBytes / ref.churnBytes).toFixed(3)}x` : '';
    lines.push(
      `| ${x.tool} | ${x.setting} | ${num(mib(x.firstBytes))} | ${x.firstObjects} | ${mib(x.churnBytes)} | ${x.churnObjects} | ${ratio} | ${inline} | ${num(x.churnSeconds.toFixed(1))} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const work = process.env.BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'obnam-bench-churn-'));
  fs.mkdirSync(work, { recursive: true });
  try {
    process.stdout.write(`machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), node ${process.version}\n`);
    const r = await runChurnBench(work);
    const md = churnTable(r);
    if (process.env.BENCH_OUT) fs.writeFileSync(process.env.BENCH_OUT, md + '\n');
    process.stdout.write(process.argv.includes('--json') ? JSON.stringify(r, null, 2) + '\n' : '\n' + md + '\n');
  } finally {
    if (!process.env.BENCH_DIR) fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e) => {
    process.stderr.write(`churn bench failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
