/**
 * fsck finds damage and says what it affects: a flipped byte in a chunk and
 * in a tree, a truncated pack, a deleted object; --quick checks existence;
 * --json is one document; a healthy repository passes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { obnam, obnamOk } from './helpers/cli.js';
import { entryAt, flipByte, locate, openTestRepo } from './helpers/repo.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const PASS = 'fsck test passphrase';

interface Problem {
  kind: string;
  id: string;
  status: string;
  snapshots: string[];
  paths: string[];
}

describe('fsck', () => {
  let tmp: TempDir;
  let src: string;
  let pristine: string;
  let repo: string;
  let env: Record<string, string>;
  let snapshots: string[];

  before(async () => {
    tmp = await tempDir();
    src = path.join(tmp.path, 'src');
    pristine = path.join(tmp.path, 'pristine');
    fs.mkdirSync(path.join(src, 'a', 'b'), { recursive: true });
    fs.mkdirSync(path.join(src, 'other'));
    fs.writeFileSync(path.join(src, 'a', 'b', 'victim.bin'), randomBytes(900 * 1024));
    fs.writeFileSync(path.join(src, 'a', 'b', 'twin.bin'), fs.readFileSync(path.join(src, 'a', 'b', 'victim.bin')));
    fs.writeFileSync(path.join(src, 'other', 'safe.bin'), randomBytes(700 * 1024));
    fs.writeFileSync(path.join(src, 'other', 'small.txt'), 'small and inline\n');
    // Small packs, so that one object can be damaged without touching the others.
    env = { OBNAM_REPO: pristine, OBNAM_PASSPHRASE: PASS, HOME: tmp.path, OBNAM_PACK_SIZE: '65536' };
    await obnamOk(['init'], { env });
    snapshots = [];
    for (let i = 0; i < 2; i++) {
      snapshots.push(JSON.parse((await obnamOk(['backup', '--json', '--force', src], { env })).stdout).snapshot);
    }
    repo = path.join(tmp.path, 'repo');
    env.OBNAM_REPO = repo;
  });
  beforeEach(() => {
    fs.rmSync(repo, { recursive: true, force: true });
    fs.cpSync(pristine, repo, { recursive: true });
  });
  after(() => tmp.remove());

  async function runFsck(extra: string[] = []): Promise<{ code: number | null; report: { ok: boolean; problems: Problem[] } }> {
    const r = await obnam(['fsck', '--json', ...extra], { env });
    return { code: r.code, report: JSON.parse(r.stdout) };
  }

  it('passes a healthy repository, in full and quick mode', async () => {
    for (const mode of [[], ['--quick']]) {
      const { code, report } = await runFsck(mode);
      assert.equal(code, 0);
      assert.equal(report.ok, true);
      assert.deepEqual(report.problems, []);
    }
    const text = await obnamOk(['fsck'], { env });
    assert.match(text.stdout, /no problems found/);
  });

  it('finds a flipped byte in a chunk and names the snapshots and both files that use it', async () => {
    const r = await openTestRepo(repo, PASS);
    const chunk = (await entryAt(r, path.join(src, 'a', 'b', 'victim.bin'))).chunks![0]!.id;
    await flipByte(r, 'chunk', chunk);
    await r.close();
    const { code, report } = await runFsck();
    assert.equal(code, 1);
    assert.equal(report.problems.length, 1);
    const p = report.problems[0]!;
    assert.deepEqual([p.kind, p.id, p.status], ['chunk', chunk, 'corrupt']);
    assert.deepEqual([...p.snapshots].sort(), [...snapshots].sort());
    assert.deepEqual([...p.paths].sort(), [path.join(src, 'a', 'b', 'twin.bin'), path.join(src, 'a', 'b', 'victim.bin')]);
    const text = await obnam(['fsck'], { env });
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`corrupt chunk ${chunk}`));
    assert.match(text.stdout, /affects: .*victim\.bin/);
  });

  it('finds a damaged tree and names the directory', async () => {
    const r = await openTestRepo(repo, PASS);
    const dir = (await entryAt(r, path.join(src, 'other'))).subtree!;
    await flipByte(r, 'tree', dir, 0.2);
    await r.close();
    const { code, report } = await runFsck();
    assert.equal(code, 1);
    const p = report.problems.find((x) => x.id === dir)!;
    assert.equal(p.status, 'corrupt');
    assert.deepEqual(p.paths, [path.join(src, 'other')]);
    assert.equal(p.snapshots.length, 2);
  });

  it('finds a truncated pack: its objects are missing, and the files that need them are named', async () => {
    const r = await openTestRepo(repo, PASS);
    const chunk = (await entryAt(r, path.join(src, 'other', 'safe.bin'))).chunks![0]!.id;
    const loc = locate(r, 'chunk', chunk);
    await r.close();
    fs.truncateSync(loc.file, loc.offset + 100);
    const { code, report } = await runFsck();
    assert.equal(code, 1);
    const p = report.problems.find((x) => x.id === chunk)!;
    assert.equal(p.status, 'missing');
    assert.ok(p.paths.includes(path.join(src, 'other', 'safe.bin')), JSON.stringify(p));
    const quick = await runFsck(['--quick']);
    assert.equal(quick.code, 1, 'quick mode sees missing objects too');
  });

  it('finds a deleted object', async () => {
    const r = await openTestRepo(repo, PASS);
    const chunk = (await entryAt(r, path.join(src, 'a', 'b', 'victim.bin'))).chunks![0]!.id;
    await r.deleteObject('chunk', chunk);
    await r.close();
    const { code, report } = await runFsck(['--quick']);
    assert.equal(code, 1);
    assert.equal(report.problems.length, 1);
    assert.equal(report.problems[0]!.status, 'missing');
    assert.equal(report.problems[0]!.paths.length, 2);
  });

  it('restore of a damaged snapshot restores what it can and fails with exit 1', async () => {
    const r = await openTestRepo(repo, PASS);
    const chunk = (await entryAt(r, path.join(src, 'a', 'b', 'victim.bin'))).chunks![0]!.id;
    await flipByte(r, 'chunk', chunk);
    await r.close();
    const out = path.join(tmp.path, 'out');
    fs.rmSync(out, { recursive: true, force: true });
    const res = await obnam(['restore', 'latest', out], { env });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /victim\.bin/);
    assert.deepEqual(fs.readFileSync(path.join(out, src, 'other', 'safe.bin')), fs.readFileSync(path.join(src, 'other', 'safe.bin')));
    assert.equal(fs.existsSync(path.join(out, src, 'a', 'b', 'victim.bin')), false, 'no half-restored file is left');
  });
});
