/**
 * The rollback warning: the client remembers which snapshots it has seen (in
 * its cache, per repository id) and warns on stderr, once, about one that has
 * vanished without this client forgetting it. A damaged or unwritable record
 * is a warning, never a failure.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkSeenSnapshots, recordForgotten, seenSnapshotsFile } from '../cli/seen-snapshots.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const PASS = 'seen snapshots passphrase';

function warnings(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('obnam: warning: '));
}

describe('snapshots that vanish behind the client', () => {
  let tmp: TempDir;
  let repo: string;
  let src: string;
  let cache: string;
  let env: Record<string, string>;
  let repoId: string;

  const backup = async () => (JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout) as { snapshot: string }).snapshot;
  const list = async () => {
    const r = await obnamOk(['list', '--json'], { env });
    return { ids: (JSON.parse(r.stdout) as { id: string }[]).map((s) => s.id), warnings: warnings(r.stderr), stderr: r.stderr };
  };
  /** What a store that hides a snapshot does: the object is simply gone. */
  const hide = (id: string) => fs.rm(path.join(repo, 'snapshots', id));

  before(async () => {
    tmp = await tempDir('obnam-seen-');
    repo = path.join(tmp.path, 'repo');
    src = path.join(tmp.path, 'src');
    cache = path.join(tmp.path, 'cache');
    await fs.mkdir(src);
    await fs.writeFile(path.join(src, 'f'), 'some data\n');
    env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path, XDG_CACHE_HOME: cache };
    repoId = (JSON.parse((await obnamOk(['init', '--json'], { env })).stdout) as { repository: string }).repository;
  });
  after(async () => {
    await tmp.remove();
  });

  it('a snapshot deleted behind the client is named in a warning, once; the command still succeeds', async () => {
    const s1 = await backup();
    await fs.appendFile(path.join(src, 'f'), 'more\n');
    const s2 = await backup();
    assert.deepEqual((await list()).warnings, []);
    const file = path.join(cache, 'obnam', repoId, 'seen-snapshots');
    assert.deepEqual((JSON.parse(await fs.readFile(file, 'utf8')) as { seen: string[] }).seen, [s1, s2].sort());

    await hide(s1);
    const after = await list();
    assert.deepEqual(after.ids, [s2]);
    assert.equal(after.warnings.length, 1, after.stderr);
    assert.match(after.warnings[0]!, new RegExp(`^obnam: warning: snapshot ${s1} has vanished from the repository .*not forgotten here`));
    assert.deepEqual((await list()).warnings, [], 'named once');
  });

  it('a snapshot hidden right after the backup that made it is noticed too', async () => {
    const s = await backup();
    await hide(s);
    const r = await obnam(['restore', 'latest', path.join(tmp.path, 'restored')], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(warnings(r.stderr).map((l) => l.includes(s)), [true]);
  });

  it('snapshots recorded as forgotten here (as obnam forget does) are not reported', async () => {
    const s = await backup();
    const listedBefore = (await list()).ids;
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = cache;
    try {
      assert.equal(seenSnapshotsFile(repoId), path.join(cache, 'obnam', repoId, 'seen-snapshots'));
      const msgs: string[] = [];
      await recordForgotten(repoId, [s], (m) => msgs.push(m));
      // A listing made before the deletion (by a concurrent command) does not bring it back.
      await checkSeenSnapshots(repoId, listedBefore, (m) => msgs.push(m));
      assert.deepEqual(msgs, []);
    } finally {
      process.env.XDG_CACHE_HOME = saved;
    }
    await hide(s);
    assert.deepEqual((await list()).warnings, []);
  });

  it('a damaged record is a warning, and is started again', async () => {
    const file = path.join(cache, 'obnam', repoId, 'seen-snapshots');
    await fs.writeFile(file, '{"version": 1, "seen": ["not an id"');
    const r = await list();
    assert.equal(r.warnings.length, 1, r.stderr);
    assert.match(r.warnings[0]!, /the record of seen snapshots .* is damaged \(not JSON\); starting it again/);
    assert.deepEqual((JSON.parse(await fs.readFile(file, 'utf8')) as { seen: string[] }).seen, [...r.ids].sort());
    assert.deepEqual((await list()).warnings, []);
  });

  it('an unwritable cache is a warning, not a failure', async () => {
    const notADir = path.join(tmp.path, 'a-file');
    await fs.writeFile(notADir, '');
    const r = await obnam(['list'], { env: { ...env, XDG_CACHE_HOME: notADir } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(warnings(r.stderr).map((l) => /could not (read|update) the record of seen snapshots/.test(l)), [true]);
  });

  it('without XDG_CACHE_HOME the record is under ~/.cache/obnam', async () => {
    await obnamOk(['list'], { env: { ...env, XDG_CACHE_HOME: undefined } });
    await fs.access(path.join(tmp.path, '.cache', 'obnam', repoId, 'seen-snapshots'));
  });
});
