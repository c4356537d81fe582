/**
 * Writes the test vectors of the current format version (4):
 * fixtures/vectors-v4.json, and those of versions 2 and 3 (which their
 * fixed inputs keep as they were): fixtures/vectors-v2.json and
 * fixtures/repo-v2/ (a small repository made by this code, with a known
 * passphrase, one snapshot, and one garbage-collection plan left by a
 * forgotten second snapshot; fixtures/repo-v2.json describes what it holds).
 * Run `npm run fixtures` only when the format version changes: these files
 * are the contract that fixtures.test.ts holds the code to. The version 1
 * files (vectors-v1.json, repo-v1/) were written by this program when
 * version 1 was current and are kept forever, never regenerated.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backup } from '../../lib/backup/engine.js';
import { mark } from '../../lib/gc/mark.js';
import { Repository } from '../../lib/repo/repository.js';
import { configAtVersion, newConfig } from '../../lib/format/config.js';
import { LocalStore } from '../../lib/store/local.js';
import { startRepoPool } from '../../lib/engine-workers/start.js';
import { ROOT } from './cli.js';
import { prngBytes } from './prng.js';
import { computeVectorsV2, computeVectorsV4 } from './vectors.js';
import { computeVectorsV3 } from './vectors-v3.js';
import { createHash } from 'node:crypto';

export const FIXTURE_PASSPHRASE = 'obnam fixture passphrase';
export const FIXTURE_SOURCE = '/tmp/obnam-fixture-source';
/** The scrypt cost of the fixture's key slot (what fixtures/repo-v1/keys holds). */
export const FIXTURE_KDF = { logN: 10, r: 8, p: 4 };

/** The files of the fixture snapshot: relative path -> content (or symlink target). */
export function fixtureFiles(): { files: Record<string, Buffer>; symlinks: Record<string, string>; dirs: string[] } {
  return {
    files: {
      'hello.txt': Buffer.from('hello, obnam\n'),
      'empty': Buffer.alloc(0),
      'docs/readme.md': Buffer.from('# fixture\n\nA small repository for format tests.\n'),
      'docs/large.bin': prngBytes('fixture large file', 600 * 1024),
    },
    symlinks: { 'link-to-hello': 'hello.txt' },
    dirs: ['docs', 'empty-dir'],
  };
}

/** The fixture's clock: fixed, so snapshot and plan times are known. */
export const FIXTURE_TIME_MS = 1_700_000_000_000;

async function main(): Promise<void> {
  const fixtures = path.join(ROOT, 'fixtures');
  fs.writeFileSync(path.join(fixtures, 'vectors-v2.json'), JSON.stringify(computeVectorsV2(), null, 1) + '\n');
  fs.writeFileSync(path.join(fixtures, 'vectors-v3.json'), JSON.stringify(computeVectorsV3(), null, 1) + '\n');
  fs.writeFileSync(path.join(fixtures, 'vectors-v4.json'), JSON.stringify(computeVectorsV4(), null, 1) + '\n');

  fs.rmSync(FIXTURE_SOURCE, { recursive: true, force: true });
  const { files, symlinks, dirs } = fixtureFiles();
  for (const d of dirs) fs.mkdirSync(path.join(FIXTURE_SOURCE, d), { recursive: true });
  for (const [f, data] of Object.entries(files)) fs.writeFileSync(path.join(FIXTURE_SOURCE, f), data);
  for (const [l, t] of Object.entries(symlinks)) fs.symlinkSync(t, path.join(FIXTURE_SOURCE, l));
  const touch = () => {
    for (const p of [...Object.keys(files), ...dirs, '.']) execFileSync('touch', ['-h', '-d', '@1700000000.123456789', path.join(FIXTURE_SOURCE, p)]);
  };
  touch();

  const dir = path.join(fixtures, 'repo-v2');
  fs.rmSync(dir, { recursive: true, force: true });
  const spec = { type: 'local' as const, dir };
  // repo-v2 stays a version 2 repository (format-spec 17.4): no version 4 fixture repository is kept (17.5).
  const repo = await Repository.init(await LocalStore.create(dir), spec, FIXTURE_PASSPHRASE, configAtVersion(newConfig(), 2), { kdf: FIXTURE_KDF });
  const pool = startRepoPool(repo, { size: 1 });
  let now = FIXTURE_TIME_MS;
  const clock = { now: () => now };
  const result = await backup(repo, { paths: [FIXTURE_SOURCE], pool, hostname: 'fixture-host', username: 'fixture', tags: ['fixture'], clock });
  // A second snapshot with one more file, forgotten, and a mark: the plan names what only it held.
  const extra = path.join(FIXTURE_SOURCE, 'docs', 'forgotten.bin');
  fs.writeFileSync(extra, prngBytes('fixture forgotten file', 300 * 1024));
  touch();
  now += 3_600_000;
  const forgotten = await backup(repo, { paths: [FIXTURE_SOURCE], pool, hostname: 'fixture-host', username: 'fixture', clock });
  await pool.close();
  await repo.deleteSnapshot(forgotten.id);
  now += 3_600_000;
  const marked = await mark(repo, { clock, hostname: 'fixture-host' });
  const plan = { plans: marked.plans, ...(await repo.getPlan(marked.plans[0]!)) };
  await repo.close();
  for (const sub of ['tmp', 'deleted']) fs.writeFileSync(path.join(dir, sub, '.keep'), '');
  const manifest = {
    passphrase: FIXTURE_PASSPHRASE,
    source: FIXTURE_SOURCE,
    snapshot: result.id,
    tree: result.snapshot.tree,
    plan: plan.plans[0],
    plan_trees: plan.trees,
    plan_chunks: plan.chunks,
    files: Object.fromEntries(Object.entries(files).map(([f, d]) => [f, createHash('sha256').update(d).digest('hex')])),
    symlinks,
    dirs,
    mtime_ns: '1700000000123456789',
  };
  fs.writeFileSync(path.join(fixtures, 'repo-v2.json'), JSON.stringify(manifest, null, 1) + '\n');
  fs.rmSync(FIXTURE_SOURCE, { recursive: true, force: true });
  process.stdout.write(`wrote fixtures/vectors-v2.json, fixtures/repo-v2/ (snapshot ${result.id.slice(0, 8)}, plan ${plan.plans[0]!.slice(0, 8)})\n`);
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
