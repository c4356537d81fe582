/**
 * Writes the format-version-1 test vectors: fixtures/vectors-v1.json (values
 * computed from fixed inputs) and fixtures/repo-v1/ (a small repository made
 * by this code, with a known passphrase, and fixtures/repo-v1.json describing
 * what it holds). Run `npm run fixtures` only when the format version changes:
 * these files are the contract that fixtures.test.ts holds the code to.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backup } from '../../lib/backup/engine.js';
import { Repository } from '../../lib/repo/repository.js';
import { LocalStore } from '../../lib/store/local.js';
import { startRepoPool } from '../../lib/workers/repopool.js';
import { ROOT } from './cli.js';
import { prngBytes } from './prng.js';
import { computeVectors } from './vectors.js';
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

async function main(): Promise<void> {
  const fixtures = path.join(ROOT, 'fixtures');
  fs.writeFileSync(path.join(fixtures, 'vectors-v1.json'), JSON.stringify(computeVectors(), null, 1) + '\n');

  fs.rmSync(FIXTURE_SOURCE, { recursive: true, force: true });
  const { files, symlinks, dirs } = fixtureFiles();
  for (const d of dirs) fs.mkdirSync(path.join(FIXTURE_SOURCE, d), { recursive: true });
  for (const [f, data] of Object.entries(files)) fs.writeFileSync(path.join(FIXTURE_SOURCE, f), data);
  for (const [l, t] of Object.entries(symlinks)) fs.symlinkSync(t, path.join(FIXTURE_SOURCE, l));
  for (const p of [...Object.keys(files), ...dirs, '.']) {
    execFileSync('touch', ['-h', '-d', '@1700000000.123456789', path.join(FIXTURE_SOURCE, p)]);
  }

  const dir = path.join(fixtures, 'repo-v1');
  fs.rmSync(dir, { recursive: true, force: true });
  const spec = { type: 'local' as const, dir };
  const repo = await Repository.init(await LocalStore.create(dir), spec, FIXTURE_PASSPHRASE, undefined, { kdf: FIXTURE_KDF });
  const pool = startRepoPool(repo, { size: 1 });
  const result = await backup(repo, { paths: [FIXTURE_SOURCE], pool, hostname: 'fixture-host', username: 'fixture', tags: ['fixture'] });
  await pool.close();
  await repo.close();
  for (const sub of ['tmp', 'deleted']) fs.writeFileSync(path.join(dir, sub, '.keep'), '');
  const manifest = {
    passphrase: FIXTURE_PASSPHRASE,
    source: FIXTURE_SOURCE,
    snapshot: result.id,
    tree: result.snapshot.tree,
    files: Object.fromEntries(Object.entries(files).map(([f, d]) => [f, createHash('sha256').update(d).digest('hex')])),
    symlinks,
    dirs,
    mtime_ns: '1700000000123456789',
  };
  fs.writeFileSync(path.join(fixtures, 'repo-v1.json'), JSON.stringify(manifest, null, 1) + '\n');
  fs.rmSync(FIXTURE_SOURCE, { recursive: true, force: true });
  process.stdout.write(`wrote fixtures/vectors-v1.json, fixtures/repo-v1/ (snapshot ${result.id.slice(0, 8)})\n`);
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
