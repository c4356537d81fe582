/**
 * obnam forget through the real CLI: forgetting one of three snapshots leaves
 * the other two restoring byte-identical and fsck passing; --dry-run changes
 * no byte of the repository; --prune, an empty policy and a policy that
 * keeps nothing of a group are refused before anything is deleted; named
 * snapshots (latest, prefixes); filters and groups; --json. Over
 * obnam-server: a full client forgets, an append-only client can neither
 * forget nor prune, and a damaged snapshot is passed over and forgotten.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { openStore } from '../lib/store/open.js';
import { obnam, obnamOk, ROOT } from './helpers/cli.js';
import { makeUndecryptable } from './helpers/damage.js';
import { startTestServer, TestServer, treeDigest } from './helpers/server.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree, isRoot, makeRichTree } from './helpers/tree.js';

const PASS = 'forget test passphrase';

interface ListedSnapshot {
  id: string;
  hostname: string;
  tags: string[];
  damaged: boolean;
}

async function listIds(env: Record<string, string>): Promise<string[]> {
  const r = await obnamOk(['list', '--json'], { env });
  return (JSON.parse(r.stdout) as ListedSnapshot[]).map((s) => s.id);
}

describe('obnam forget on a local repository', () => {
  let tmp: TempDir;
  let dataTmp: TempDir;
  let src: string;
  let pristine: string;
  let repo: string;
  let env: Record<string, string>;
  /** Oldest first: three of src (changed in between), then one of src/sub tagged "keep". */
  const ids: string[] = [];

  const backup = async (args: string[]) => JSON.parse((await obnamOk(['backup', '--json', ...args], { env })).stdout).snapshot as string;

  before(async () => {
    tmp = await tempDir();
    dataTmp = await tempDir();
    src = path.join(dataTmp.path, 'src');
    fs.mkdirSync(src);
    makeRichTree(src, 300 * 1024);
    pristine = path.join(tmp.path, 'pristine');
    repo = path.join(tmp.path, 'repo');
    env = { OBNAM_REPO: pristine, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
    await obnamOk(['init'], { env });
    ids.push(await backup([src]));
    fs.writeFileSync(path.join(src, 'second.txt'), 'only from the second snapshot on\n');
    fs.appendFileSync(path.join(src, 'small.txt'), 'changed for the second\n');
    ids.push(await backup([src]));
    fs.writeFileSync(path.join(src, 'third.bin'), Buffer.alloc(200 * 1024, 3));
    fs.rmSync(path.join(src, 'second.txt'));
    ids.push(await backup([src]));
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    ids.push(await backup(['--tag', 'keep', path.join(src, 'sub')]));
    env.OBNAM_REPO = repo;
  });
  let run = 0;
  beforeEach(() => {
    fs.rmSync(repo, { recursive: true, force: true });
    fs.cpSync(pristine, repo, { recursive: true });
    env.HOME = path.join(tmp.path, `home-${++run}`);
    env.XDG_CACHE_HOME = path.join(env.HOME, '.cache');
    fs.mkdirSync(env.HOME);
  });
  after(async () => {
    await tmp.remove();
    await dataTmp.remove();
  });

  it('forgetting one of three snapshots leaves the other two byte-identical, and fsck passes', async () => {
    const restoreTo = async (id: string, name: string) => {
      const target = path.join(tmp.path, name);
      fs.rmSync(target, { recursive: true, force: true });
      await obnamOk(['restore', id, target], { env });
      return path.join(target, src);
    };
    const before1 = await restoreTo(ids[0]!, 'before-1');
    const before3 = await restoreTo(ids[2]!, 'before-3');
    const r = await obnamOk(['forget', ids[1]!], { env });
    assert.match(r.stdout, new RegExp(`${ids[1]!.slice(0, 8)}`));
    assert.match(r.stdout, /removed 1 snapshot/);
    // This client saw it (restore listed the snapshots) and forgot it itself: no rollback warning.
    const listed = await obnamOk(['list'], { env });
    assert.doesNotMatch(listed.stderr, /vanished/, listed.stderr);
    assert.deepEqual(await listIds(env), [ids[0], ids[2], ids[3]]);
    const after1 = await restoreTo(ids[0]!, 'after-1');
    const after3 = await restoreTo(ids[2]!, 'after-3');
    assert.ok(assertSameTree(before1, after1, { owners: isRoot }) > 5);
    assert.ok(assertSameTree(before3, after3, { owners: isRoot }) > 5);
    assert.ok(fs.existsSync(path.join(after3, 'third.bin')));
    assert.ok(!fs.existsSync(path.join(after1, 'second.txt')));
    await obnamOk(['fsck'], { env });
    // Its trees and chunks are still there for prune; forgetting it again is an error (it is gone).
    const again = await obnam(['forget', ids[1]!], { env });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no snapshot/);
  });

  it('applies a policy per group and says which rule keeps each snapshot', async () => {
    const r = await obnamOk(['forget', '--keep-last', '1', '--json'], { env });
    const doc = JSON.parse(r.stdout) as {
      dry_run: boolean;
      groups: { group: { hostname: string; paths: string[] }; keep: { id: string; reasons: string[] }[]; remove: { id: string }[] }[];
      removed: string[];
    };
    assert.equal(doc.dry_run, false);
    assert.deepEqual(
      doc.groups.map((g) => [g.group.paths, g.keep.map((k) => [k.id, k.reasons]), g.remove.map((s) => s.id)]),
      [
        [[src], [[ids[2], ['keep-last']]], [ids[1], ids[0]]],
        [[path.join(src, 'sub')], [[ids[3], ['keep-last']]], []],
      ],
    );
    assert.deepEqual(doc.removed, [ids[1], ids[0]]);
    assert.deepEqual(await listIds(env), [ids[2], ids[3]]);
  });

  it('--group-by none, --keep-tag and --path; the text output names the reasons', async () => {
    const r = await obnamOk(['forget', '--group-by', 'none', '--keep-last', '2', '--keep-tag', 'keep', '--dry-run'], { env });
    assert.match(r.stdout, /^all snapshots:$/m);
    assert.match(r.stdout, new RegExp(`${ids[3]!.slice(0, 8)}.*keep-tag keep, keep-last`));
    assert.match(r.stdout, new RegExp(`${ids[2]!.slice(0, 8)}.*keep-last`));
    assert.match(r.stdout, /would remove 2 snapshots \(dry run: nothing changed\)/);
    const p = await obnamOk(['forget', '--path', path.join(src, 'sub'), '--keep-within', '1d', '--json'], { env });
    assert.deepEqual(JSON.parse(p.stdout).removed, []);
    assert.equal((await listIds(env)).length, 4);
  });

  it('--dry-run changes no byte of the repository', async () => {
    const before = await treeDigest(repo);
    await obnamOk(['forget', '--keep-last', '1', '--dry-run'], { env });
    await obnamOk(['forget', ids[0]!, 'latest', '--dry-run', '--json'], { env });
    assert.deepEqual(await treeDigest(repo), before);
  });

  it('--prune forgets, then marks what only the forgotten snapshots held; with --dry-run nothing changes', async () => {
    const before = await treeDigest(repo);
    const dry = await obnamOk(['forget', '--keep-last', '1', '--prune', '--dry-run'], { env });
    assert.match(dry.stdout, /would remove 2 snapshots/);
    // The dry run of the collection sees the snapshots the dry run of forget left in place.
    assert.match(dry.stdout, /dry run: nothing deleted/);
    assert.deepEqual(await treeDigest(repo), before);

    const r = await obnamOk(['forget', '--keep-last', '1', '--prune', '--json'], { env });
    const doc = JSON.parse(r.stdout) as { removed: string[]; prune: { marked: { plans: string[]; trees: number } } };
    assert.deepEqual([...doc.removed].sort(), [ids[0]!, ids[1]!].sort());
    assert.ok(doc.prune.marked.trees > 0, 'the forgotten snapshots held trees of their own');
    assert.equal(doc.prune.marked.plans.length, 1);
    assert.deepEqual(fs.readdirSync(path.join(repo, 'gcplans')).length, 1, 'one plan stored');
    assert.deepEqual((await listIds(env)).sort(), [ids[2]!, ids[3]!].sort());
    await obnamOk(['fsck'], { env });
  });

  it('--prune on a version 1 repository is refused in one line, before anything is deleted', async () => {
    const root = ROOT;
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'fixtures', 'repo-v1.json'), 'utf8')) as { passphrase: string };
    const v1 = path.join(tmp.path, `v1-${run}`);
    fs.cpSync(path.join(root, 'fixtures', 'repo-v1'), v1, { recursive: true });
    const v1env = { ...env, OBNAM_REPO: v1, OBNAM_PASSPHRASE: manifest.passphrase };
    // Opening upgrades the fixture's local-store layout (index segments): compare after that.
    await obnamOk(['list'], { env: v1env });
    const before = await treeDigest(v1);
    for (const args of [['--keep-last', '1', '--prune'], ['latest', '--prune']]) {
      const r = await obnam(['forget', ...args], { env: v1env });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /format version 1.*obnam upgrade/);
    }
    assert.deepEqual(await treeDigest(v1), before);
  });

  it('refuses a policy that keeps nothing, and names with a policy', async () => {
    const before = await treeDigest(repo);
    const empty = await obnam(['forget'], { env });
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /no policy given/);
    const none = await obnam(['forget', '--keep-tag', 'no-such-tag'], { env });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /refusing to remove all 3 snapshots of host/);
    const both = await obnam(['forget', ids[0]!, '--keep-last', '1'], { env });
    assert.equal(both.code, 1);
    assert.match(both.stderr, /not both/);
    for (const bad of [['--keep-last', '-1'], ['--keep-daily', 'many'], ['--keep-within', '1w'], ['--group-by', 'user']]) {
      const r = await obnam(['forget', ...bad], { env });
      assert.equal(r.code, 1, `${bad.join(' ')}: ${r.stderr}`);
    }
    assert.deepEqual(await treeDigest(repo), before);
  });

  it('names snapshots by latest and id prefix; "latest" honours --host/--tag/--path', async () => {
    const r = await obnamOk(['forget', 'latest', ids[0]!.slice(0, 6), '--json'], { env });
    const doc = JSON.parse(r.stdout) as { named: { id: string; damaged: boolean }[]; removed: string[] };
    assert.deepEqual(doc.named.map((n) => [n.id, n.damaged]), [
      [ids[3], false],
      [ids[0], false],
    ]);
    assert.deepEqual(doc.removed, [ids[3], ids[0]]);
    await obnamOk(['forget', 'latest', '--path', src], { env });
    assert.deepEqual(await listIds(env), [ids[1]]);
    const missing = await obnam(['forget', 'ffffffffffff'], { env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no snapshot ffffffffffff/);
    const noHost = await obnam(['forget', 'latest', '--host', 'no-such-host'], { env });
    assert.equal(noHost.code, 1);
    assert.deepEqual(await listIds(env), [ids[1]]);
  });
});

describe('obnam forget over obnam-server', () => {
  let server: TestServer;
  let tmp: TempDir;
  let src: string;

  const clientEnv = (token: string, name: string): Record<string, string> => ({
    OBNAM_REPO: server.url,
    OBNAM_TOKEN: token,
    OBNAM_SERVER_FINGERPRINT: server.fingerprint,
    OBNAM_PASSPHRASE: PASS,
    HOME: path.join(tmp.path, `home-${name}`),
    XDG_CACHE_HOME: path.join(tmp.path, `home-${name}`, '.cache'),
  });

  before(async () => {
    server = await startTestServer();
    tmp = await tempDir();
    src = path.join(tmp.path, 'src');
    fs.mkdirSync(src);
  });
  after(async () => {
    await server.stop();
    await tmp.remove();
  });

  async function threeBackups(env: Record<string, string>): Promise<string[]> {
    fs.mkdirSync(env.HOME!, { recursive: true });
    await obnamOk(['init'], { env });
    const out: string[] = [];
    for (const v of ['1', '2', '3']) {
      fs.writeFileSync(path.join(src, 'f'), v);
      out.push(JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout).snapshot);
    }
    return out;
  }

  it('a full client forgets by policy; a damaged snapshot is passed over and then forgotten by id', async () => {
    const token = await server.addClient('full');
    const env = clientEnv(token, 'full');
    const ids = await threeBackups(env);
    const store = await openStore({ type: 'http', url: server.url, token, fingerprint: server.fingerprint });
    try {
      await makeUndecryptable(store, ids[1]!);
    } finally {
      await store.close();
    }
    const list = await obnamOk(['list'], { env });
    assert.match(list.stdout, /2 snapshots, 1 damaged/);
    assert.equal(list.stderr.split('\n').filter((l) => l.includes(ids[1]!)).length, 1, list.stderr);
    const r = await obnamOk(['forget', '--keep-last', '1'], { env });
    assert.match(r.stdout, /removed 1 snapshot/);
    await obnamOk(['forget', ids[1]!.slice(0, 8)], { env });
    assert.deepEqual(await listIds(env), [ids[2]]);
    await obnamOk(['fsck'], { env });
  });

  it('an append-only client can neither forget nor prune: one clear line, exit 1, nothing deleted', async () => {
    const token = await server.addClient('appender', true);
    const env = clientEnv(token, 'appender');
    const ids = await threeBackups(env);
    const ns = await server.namespaceDir('appender');
    const before = await treeDigest(ns);
    for (const args of [['--keep-last', '1'], [ids[0]!], ['latest'], ['--keep-last', '1', '--prune']]) {
      const r = await obnam(['forget', ...args], { env });
      assert.equal(r.code, 1, `forget ${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /append-only|allowed to delete/);
    }
    assert.deepEqual(await listIds(env), ids);
    assert.deepEqual(await treeDigest(ns), before);
    // Looking is allowed: a dry run changes nothing.
    const dry = await obnamOk(['forget', '--keep-last', '1', '--dry-run'], { env });
    assert.match(dry.stdout, /would remove 2 snapshots/);
  });
});
