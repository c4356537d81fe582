/**
 * One damaged snapshot object must not stop everything (issue 7, item 7):
 * with the newest of three snapshots undecryptable (its stored bytes intact
 * for the store, its envelope not), list, list --json, restore latest, ls,
 * backup's parent selection, forget's policy and the mount go on with the
 * other two and name the damaged one on stderr, once; fsck reports it; and
 * `forget ID` removes it by id prefix. A snapshot whose stored bytes no
 * longer match the store's digest is passed over the same way.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ObnamError } from '../lib/errors.js';
import { Repository } from '../lib/repo/repository.js';
import { LocalStore } from '../lib/store/local.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { makeUndecryptable } from './helpers/damage.js';
import { cleanupMount, corruptStoredObject, fuseAvailable, startMount } from './helpers/mount.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const PASS = 'damaged snapshot passphrase';

/** The stderr lines that name a snapshot id. */
const linesNaming = (stderr: string, id: string) => stderr.split('\n').filter((l) => l.includes(id));

describe('a damaged snapshot object', () => {
  let tmp: TempDir;
  let src: string;
  let pristine: string;
  let repo: string;
  let env: Record<string, string>;
  const ids: string[] = [];

  before(async () => {
    tmp = await tempDir();
    src = path.join(tmp.path, 'src');
    pristine = path.join(tmp.path, 'pristine');
    repo = path.join(tmp.path, 'repo');
    fs.mkdirSync(src);
    env = { OBNAM_REPO: pristine, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
    await obnamOk(['init'], { env });
    for (const version of ['one', 'two', 'three']) {
      fs.writeFileSync(path.join(src, 'version.txt'), `version ${version}\n`);
      fs.writeFileSync(path.join(src, `only-in-${version}`), version);
      ids.push(JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout).snapshot);
    }
    const store = await LocalStore.open(pristine);
    try {
      await makeUndecryptable(store, ids[2]!);
    } finally {
      await store.close();
    }
    env.OBNAM_REPO = repo;
  });
  let run = 0;
  beforeEach(() => {
    fs.rmSync(repo, { recursive: true, force: true });
    fs.cpSync(pristine, repo, { recursive: true });
    // A home of its own per test: client-side caches never see another test's copy of the repository.
    env.HOME = path.join(tmp.path, `home-${++run}`);
    env.XDG_CACHE_HOME = path.join(env.HOME, '.cache');
    fs.mkdirSync(env.HOME);
  });
  after(() => tmp.remove());

  it('list shows the others and names the damaged one on stderr, once', async () => {
    const r = await obnamOk(['list'], { env });
    assert.match(r.stdout, new RegExp(ids[0]!.slice(0, 8)));
    assert.match(r.stdout, new RegExp(ids[1]!.slice(0, 8)));
    assert.doesNotMatch(r.stdout, new RegExp(ids[2]!.slice(0, 8)));
    assert.match(r.stdout, /2 snapshots, 1 damaged/);
    assert.equal(linesNaming(r.stderr, ids[2]!).length, 1, r.stderr);
    assert.match(r.stderr, /damaged|cannot be read/);
  });

  it('list --json includes it, marked damaged', async () => {
    const r = await obnamOk(['list', '--json'], { env });
    const list = JSON.parse(r.stdout) as { id: string; damaged: boolean; error?: string; time?: string }[];
    assert.deepEqual(
      list.map((s) => [s.id, s.damaged]),
      [
        [ids[0], false],
        [ids[1], false],
        [ids[2], true],
      ],
    );
    assert.equal(typeof list[2]!.error, 'string');
    assert.equal(list[2]!.time, undefined);
    assert.equal(linesNaming(r.stderr, ids[2]!).length, 1, r.stderr);
  });

  it('restore latest restores the newest readable snapshot', async () => {
    const target = path.join(tmp.path, 'restored');
    fs.rmSync(target, { recursive: true, force: true });
    const r = await obnamOk(['restore', 'latest', target], { env });
    const restored = path.join(target, src);
    assert.equal(fs.readFileSync(path.join(restored, 'version.txt'), 'utf8'), 'version two\n');
    assert.ok(fs.existsSync(path.join(restored, 'only-in-two')));
    assert.ok(!fs.existsSync(path.join(restored, 'only-in-three')));
    assert.equal(linesNaming(r.stderr, ids[2]!).length, 1, r.stderr);
  });

  it('ls latest lists the newest readable snapshot; ls of the damaged id fails clearly', async () => {
    const r = await obnamOk(['ls', 'latest'], { env });
    assert.match(r.stdout, /only-in-two/);
    assert.doesNotMatch(r.stdout, /only-in-three/);
    assert.equal(linesNaming(r.stderr, ids[2]!).length, 1, r.stderr);
    const bad = await obnam(['ls', ids[2]!.slice(0, 10)], { env });
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    assert.match(bad.stderr, new RegExp(ids[2]!));
  });

  it('backup takes the newest readable snapshot as its parent', async () => {
    const r = await obnamOk(['backup', '--json', src], { env });
    assert.equal(JSON.parse(r.stdout).parent, ids[1]);
    assert.equal(linesNaming(r.stderr, ids[2]!).length, 1, r.stderr);
  });

  it('fsck reports it', async () => {
    const r = await obnam(['fsck', '--json'], { env });
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout) as { problems: { kind: string; id: string; status: string }[] };
    assert.deepEqual(
      report.problems.map((p) => [p.kind, p.id, p.status]),
      [['snapshot', ids[2], 'corrupt']],
    );
  });

  it("forget's policy goes on with the others", async () => {
    const r = await obnamOk(['forget', '--keep-last', '1', '--dry-run', '--json'], { env });
    const doc = JSON.parse(r.stdout) as { groups: { keep: { id: string }[]; remove: { id: string }[] }[]; damaged: { id: string }[] };
    assert.deepEqual(doc.groups.map((g) => [g.keep.map((s) => s.id), g.remove.map((s) => s.id)]), [[[ids[1]], [ids[0]]]]);
    assert.deepEqual(doc.damaged.map((d) => d.id), [ids[2]]);
    assert.equal(linesNaming(r.stderr, ids[2]!).length, 1, r.stderr);
  });

  it('forget removes it by id prefix; then list is quiet and fsck passes', async () => {
    const r = await obnamOk(['forget', ids[2]!.slice(0, 12)], { env });
    assert.match(r.stdout, new RegExp(ids[2]!.slice(0, 8)));
    const list = await obnamOk(['list', '--json'], { env });
    assert.deepEqual((JSON.parse(list.stdout) as { id: string }[]).map((s) => s.id), [ids[0], ids[1]]);
    assert.equal(list.stderr, '');
    await obnamOk(['fsck'], { env });
  });

  it('the mount shows the others and names the damaged one', { skip: !fuseAvailable && 'no /dev/fuse' }, async () => {
    const mountpoint = path.join(tmp.path, 'mnt');
    fs.mkdirSync(mountpoint, { recursive: true });
    let m;
    try {
      m = await startMount(repo, mountpoint, [], { OBNAM_PASSPHRASE: PASS });
      assert.deepEqual(fs.readdirSync(path.join(mountpoint, 'ids')).sort(), [ids[0], ids[1]].sort());
      const latest = path.join(mountpoint, 'latest', src.slice(1));
      assert.equal(fs.readFileSync(path.join(latest, 'version.txt'), 'utf8'), 'version two\n');
      assert.equal(linesNaming(m.stderr(), ids[2]!).length, 1, m.stderr());
    } finally {
      await cleanupMount(m, mountpoint);
    }
  });
});

describe('a snapshot object whose stored bytes are damaged', () => {
  let tmp: TempDir;
  let env: Record<string, string>;
  const ids: string[] = [];

  before(async () => {
    tmp = await tempDir();
    const src = path.join(tmp.path, 'src');
    const repo = path.join(tmp.path, 'repo');
    fs.mkdirSync(src);
    env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
    await obnamOk(['init'], { env });
    for (const v of ['a', 'b']) {
      fs.writeFileSync(path.join(src, 'f'), v);
      ids.push(JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout).snapshot);
    }
    const store = await LocalStore.open(repo);
    try {
      await corruptStoredObject(repo, store, 'snapshot', ids[0]!);
    } finally {
      await store.close();
    }
  });
  after(() => tmp.remove());

  it('is named and passed over by list and restore latest', async () => {
    const r = await obnamOk(['list', '--json'], { env });
    assert.deepEqual(
      (JSON.parse(r.stdout) as { id: string; damaged: boolean }[]).map((s) => [s.id, s.damaged]),
      [
        [ids[1], false],
        [ids[0], true],
      ],
    );
    assert.equal(linesNaming(r.stderr, ids[0]!).length, 1, r.stderr);
    await obnamOk(['restore', 'latest', path.join(tmp.path, 'out')], { env });
  });
});

describe('Repository.scanSnapshots', () => {
  it('passes over damage only: a transport failure reading one snapshot fails the scan', async () => {
    const tmp = await tempDir();
    try {
      const dir = path.join(tmp.path, 'repo');
      const src = path.join(tmp.path, 'src');
      fs.mkdirSync(src);
      const env = { OBNAM_REPO: dir, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      const ids: string[] = [];
      for (const v of ['a', 'b']) {
        fs.writeFileSync(path.join(src, 'f'), v);
        ids.push(JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout).snapshot);
      }
      const store = await LocalStore.open(dir);
      // The real store, with one read failing as a broken connection would.
      const get = store.get.bind(store);
      store.get = async (kind, id, opts) => {
        if (kind === 'snapshot' && id === ids[0]) throw new ObnamError('NETWORK', 'connection reset');
        return get(kind, id, opts);
      };
      const repo = await Repository.open(store, PASS);
      try {
        const reported: string[] = [];
        repo.onDamagedSnapshot = (d) => reported.push(d.id);
        await assert.rejects(repo.scanSnapshots(), (e: unknown) => e instanceof ObnamError && e.code === 'NETWORK');
        await assert.rejects(repo.resolveSnapshot('latest'), (e: unknown) => e instanceof ObnamError && e.code === 'NETWORK');
        assert.deepEqual(reported, []);
        // Damage is passed over and reported once, however often the snapshots are listed.
        await makeUndecryptable(store, ids[1]!);
        store.get = get;
        for (let i = 0; i < 3; i++) {
          const scan = await repo.scanSnapshots();
          assert.deepEqual(scan.snapshots.map((s) => s.id), [ids[0]]);
          assert.deepEqual(scan.damaged.map((d) => [d.id, d.error.code]), [[ids[1], 'CORRUPT']]);
        }
        assert.deepEqual(reported, [ids[1]]);
        assert.equal(await repo.resolveSnapshotId(ids[1]!.slice(0, 9)), ids[1]);
        await repo.deleteSnapshot(ids[1]!);
        await repo.deleteSnapshot(ids[1]!); // already gone: done
        assert.deepEqual((await repo.scanSnapshots()).damaged, []);
      } finally {
        await repo.close();
      }
    } finally {
      await tmp.remove();
    }
  });
});
