/**
 * fsck --repair removes the stored copies fsck found damaged (a flipped
 * byte in a chunk, in a bundle of small files, in a tree); the next
 * backup --force stores their content again under the same ids, after
 * which fsck passes and the OLD snapshot restores byte for byte. An intact
 * object named wrongly is kept; a client that may not delete is refused
 * before the check; --repair with --quick is refused.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ObnamError } from '../lib/errors.js';
import { repairDamaged } from '../lib/fsck/repair.js';
import { Repository } from '../lib/repo/repository.js';
import { appendOnly } from '../lib/store/guard.js';
import { LocalStore } from '../lib/store/local.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { prngBytes } from './helpers/prng.js';
import { entryAt, flipByte, openTestRepo } from './helpers/repo.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/tree.js';

const PASS = 'fsck repair test passphrase';

interface Report {
  ok: boolean;
  problems: { kind: string; id: string; status: string; paths: string[]; snapshots: string[] }[];
  repair?: { removed: { kind: string; id: string }[]; kept: { kind: string; id: string }[] };
}

describe('fsck --repair', () => {
  let tmp: TempDir;
  let src: string;
  let pristine: string;
  let repo: string;
  let env: Record<string, string>;
  let first: string;

  before(async () => {
    tmp = await tempDir('obnam-fsck-repair-');
    src = path.join(tmp.path, 'src');
    fs.mkdirSync(path.join(src, 'big'), { recursive: true });
    fs.mkdirSync(path.join(src, 'small'));
    fs.writeFileSync(path.join(src, 'big', 'victim.bin'), prngBytes('victim', 900 * 1024));
    fs.writeFileSync(path.join(src, 'big', 'other.bin'), prngBytes('other', 300 * 1024));
    // Bundled small files (more than 64 bytes, at most the inline limit).
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, 'small', `f${i}.txt`), prngBytes(`small ${i}`, 2000 + i));
    pristine = path.join(tmp.path, 'pristine');
    // Small packs, so that one object can be damaged without touching the others.
    env = { OBNAM_REPO: pristine, OBNAM_PASSPHRASE: PASS, HOME: tmp.path, OBNAM_PACK_SIZE: '65536', OBNAM_NO_PROGRESS: '1' };
    await obnamOk(['init'], { env });
    first = JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout).snapshot;
    repo = path.join(tmp.path, 'repo');
    env.OBNAM_REPO = repo;
  });
  beforeEach(() => {
    fs.rmSync(repo, { recursive: true, force: true });
    fs.cpSync(pristine, repo, { recursive: true });
  });
  after(() => tmp.remove());

  async function fsckJson(extra: string[] = []): Promise<{ code: number | null; report: Report }> {
    const r = await obnam(['fsck', '--json', ...extra], { env });
    try {
      return { code: r.code, report: JSON.parse(r.stdout) as Report };
    } catch {
      throw new Error(`fsck ${extra.join(' ')} exited ${r.code} with no JSON: ${r.stdout} ${r.stderr}`);
    }
  }

  /** Restores the FIRST snapshot and compares it with the source, byte for byte and metadata. */
  async function firstSnapshotRestores(): Promise<void> {
    const out = path.join(tmp.path, 'out');
    fs.rmSync(out, { recursive: true, force: true });
    await obnamOk(['restore', first, out], { env });
    assertSameTree(src, path.join(out, src));
  }

  for (const [what, damage] of [
    ['a chunk of a large file', async (r: Repository) => ['chunk', (await entryAt(r, path.join(src, 'big', 'victim.bin'))).chunks![0]!.id]],
    ['a bundle of small files', async (r: Repository) => ['chunk', (await entryAt(r, path.join(src, 'small', 'f3.txt'))).chunks![0]!.id]],
    ['a directory tree', async (r: Repository) => ['tree', (await entryAt(r, path.join(src, 'big'))).subtree!]],
  ] as const) {
    it(`removes ${what} found damaged; backup --force stores it again and the old snapshot restores`, async () => {
      const r = await openTestRepo(repo, PASS);
      const [kind, id] = (await damage(r)) as ['tree' | 'chunk', string];
      await flipByte(r, kind, id);
      await r.close();

      const repaired = await fsckJson(['--repair']);
      assert.equal(repaired.code, 1, 'damage was found: the repository is not whole until the next backup');
      assert.deepEqual(
        repaired.report.problems.map((p) => [p.kind, p.id, p.status]),
        [[kind, id, 'corrupt']],
      );
      assert.deepEqual(repaired.report.repair!.removed.map((o) => [o.kind, o.id]), [[kind, id]]);
      assert.deepEqual(repaired.report.repair!.kept, []);

      const after = await fsckJson();
      assert.equal(after.code, 1);
      const missing = after.report.problems.find((p) => p.id === id);
      assert.equal(missing?.status, 'missing', 'the damaged copy is gone: now missing, with the same files named');
      assert.deepEqual(missing.paths, repaired.report.problems[0]!.paths);
      const failed = await obnam(['restore', first, path.join(tmp.path, 'broken')], { env });
      assert.equal(failed.code, 1, 'until a backup stores it again, the old snapshot does not restore whole');

      await obnamOk(['backup', '--force', src], { env });
      const healed = await fsckJson();
      assert.equal(healed.code, 0, JSON.stringify(healed.report.problems));
      await firstSnapshotRestores();
    });
  }

  it('prints what it removed and what to run next', async () => {
    const r = await openTestRepo(repo, PASS);
    const chunk = (await entryAt(r, path.join(src, 'big', 'other.bin'))).chunks![0]!.id;
    await flipByte(r, 'chunk', chunk);
    await r.close();
    const text = await obnam(['fsck', '--repair'], { env });
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`corrupt chunk ${chunk}`));
    assert.match(text.stdout, new RegExp(`repair: removed damaged chunk ${chunk}`));
    assert.match(text.stdout, /run obnam backup --force of the same paths/);
  });

  it('on a healthy repository removes nothing and exits 0', async () => {
    const { code, report } = await fsckJson(['--repair']);
    assert.equal(code, 0);
    assert.deepEqual(report.repair, { removed: [], kept: [] });
    assert.match((await obnamOk(['fsck', '--repair'], { env })).stdout, /no problems found/);
  });

  it('refuses --quick, which cannot tell damage', async () => {
    const r = await obnam(['fsck', '--repair', '--quick'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--repair needs the full check/);
  });

  it('keeps an object whose stored copy is intact, whatever a report says of it', async () => {
    const r = await openTestRepo(repo, PASS);
    try {
      const chunk = (await entryAt(r, path.join(src, 'big', 'other.bin'))).chunks![0]!.id;
      const tree = (await entryAt(r, path.join(src, 'small'))).subtree!;
      // As fsck reports a chunk that a tree names with the wrong length (the fault is in the tree).
      const problems = [
        { kind: 'chunk' as const, id: chunk, status: 'corrupt' as const, message: 'a tree records another length', snapshots: [first], paths: [], morePaths: 0 },
        { kind: 'tree' as const, id: tree, status: 'corrupt' as const, message: 'as reported', snapshots: [first], paths: [], morePaths: 0 },
      ];
      const report = await repairDamaged(r, problems);
      assert.deepEqual(report.removed, []);
      assert.deepEqual(
        report.kept.map((o) => [o.kind, o.id]),
        [['chunk', chunk], ['tree', tree]],
      );
      assert.equal((await r.getObject('chunk', chunk)).length, 300 * 1024, 'still stored and readable');
      await r.getTree(tree);
    } finally {
      await r.close();
    }
  });

  it('is refused where the store forbids deletion (append-only), and removes nothing', async () => {
    const r = await openTestRepo(repo, PASS);
    const chunk = (await entryAt(r, path.join(src, 'big', 'victim.bin'))).chunks![0]!.id;
    await flipByte(r, 'chunk', chunk);
    await r.close();
    const guarded = await Repository.open(appendOnly(await LocalStore.open(repo)), PASS);
    try {
      const problems = [{ kind: 'chunk' as const, id: chunk, status: 'corrupt' as const, message: '', snapshots: [], paths: [], morePaths: 0 }];
      await assert.rejects(
        () => repairDamaged(guarded, problems),
        (e: unknown) => e instanceof ObnamError && e.code === 'PERMISSION' && /needs a client allowed to delete/.test(e.message),
      );
    } finally {
      await guarded.close();
    }
    const { report } = await fsckJson();
    assert.equal(report.problems.find((p) => p.id === chunk)?.status, 'corrupt', 'the damaged copy is still there');
  });
});
