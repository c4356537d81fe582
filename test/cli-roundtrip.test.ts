/**
 * The local CLI end to end: init, backup, list, ls, restore, with every entry
 * type; dedup of unchanged data; nothing in plain text in the repository;
 * sub-path restore; JSON outputs; the config file; key management.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { obnam, obnamOk, runCommand } from './helpers/cli.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree, BINARY_NAME, isRoot, makeRichTree, readAllFiles, RichTreeInfo } from './helpers/tree.js';

const PASS = 'correct horse battery staple';

describe('local repository round trip', () => {
  let tmp: TempDir;
  /** Holds only the backed-up tree, so nothing else changes its mtime. */
  let dataTmp: TempDir;
  let src: string;
  let repo: string;
  let env: Record<string, string>;
  let info: RichTreeInfo;
  let first: { snapshot: string; summary: Record<string, number> };

  before(async () => {
    tmp = await tempDir();
    dataTmp = await tempDir();
    src = path.join(dataTmp.path, 'src');
    repo = path.join(tmp.path, 'repo');
    fs.mkdirSync(src);
    info = makeRichTree(src);
    env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
    await obnamOk(['init'], { env });
    first = JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout);
  });
  after(async () => {
    await tmp.remove();
    await dataTmp.remove();
  });

  it('backup --json names the new snapshot and counts what it saw', () => {
    assert.match(first.snapshot, /^[0-9a-f]{64}$/);
    assert.ok(first.summary.files >= 15, `files: ${first.summary.files}`);
    assert.ok(first.summary.newChunks > 0);
  });

  it('restores every entry type with bytes and metadata intact', async () => {
    const out = path.join(tmp.path, 'restored');
    await obnamOk(['restore', first.snapshot, out], { env });
    const n = assertSameTree(src, path.join(out, src), { owners: isRoot });
    assert.ok(n >= 25, `compared ${n} entries`);
    // The restored hardlinks share one inode, as the originals do.
    const a = fs.statSync(path.join(out, src, 'hard-a'));
    assert.equal(fs.statSync(path.join(out, src, 'docs', 'hard-b')).ino, a.ino);
    assert.equal(a.nlink, 3);
  });

  it('a second backup of unchanged data adds only the snapshot (and trees of changed directories above it)', async () => {
    const before = listRepoFiles(repo);
    const r = await obnamOk(['backup', '--json', '--verbose', src], { env });
    const second = JSON.parse(r.stdout);
    assert.equal(second.parent, first.snapshot);
    assert.equal(second.summary.filesRead, 0, r.stderr);
    assert.equal(second.summary.newChunks, 0);
    // Other tests create files in the system temp directory while this runs, so the
    // directories above `src` may have new mtimes: at most their trees are new.
    const ancestors = src.split('/').length - 1;
    assert.ok(second.summary.newTrees <= ancestors, `new trees: ${second.summary.newTrees}`);
    const added = listRepoFiles(repo).filter((f) => !before.includes(f));
    assert.ok(added.some((f) => f.startsWith('snapshots/')), `added: ${added.join(', ')}`);
    assert.ok(
      // New trees go to a pack, which the index segment written at close describes.
      added.every((f) => f.startsWith('snapshots/') || (second.summary.newTrees > 0 && (f.startsWith('packs/') || f.startsWith('index/')))),
      `added: ${added.join(', ')}`,
    );
  });

  it('a changed file is read again; everything else is reused', async () => {
    fs.appendFileSync(path.join(src, 'docs', 'medium.bin'), 'more');
    const third = JSON.parse((await obnamOk(['backup', '--json', src], { env })).stdout);
    assert.equal(third.summary.filesRead, 1);
    // The big file's chunks are shared; only the changed file's tail chunk is new.
    assert.ok(third.summary.newChunks <= 2, `new chunks: ${third.summary.newChunks}`);
  });

  it('no file content or file name appears in the repository in plain text', () => {
    const needles = [info.contentMarker, info.nameMarker, 'hello xattr', 'docs/small.txt', 'compressible.txt'].map((s) => Buffer.from(s));
    needles.push(BINARY_NAME);
    for (const blob of readAllFiles(repo)) {
      for (const n of needles) assert.equal(blob.indexOf(n), -1, `found ${n.toString()} in the repository`);
    }
  });

  it('list shows the snapshots, and --json is one document', async () => {
    const snaps = JSON.parse((await obnamOk(['list', '--json'], { env })).stdout);
    assert.equal(snaps.length, 3);
    assert.equal(snaps[0].id, first.snapshot);
    assert.deepEqual(snaps[0].paths, [src]);
    const text = (await obnamOk(['list'], { env })).stdout;
    assert.match(text, new RegExp(first.snapshot.slice(0, 8)));
  });

  it('ls lists a path in a snapshot, by id prefix and by latest', async () => {
    const r = await obnamOk(['ls', first.snapshot.slice(0, 10), path.join(src, 'docs')], { env });
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.includes(path.join(src, 'docs', 'small.txt')), r.stdout);
    assert.ok(lines.includes(path.join(src, 'docs', 'deep', 'deeper', 'leaf.txt')));
    const j = JSON.parse((await obnamOk(['ls', '--json', 'latest', path.join(src, 'link-relative')], { env })).stdout);
    assert.equal(j.entries.length, 1);
    assert.equal(j.entries[0].type, 'symlink');
    assert.equal(j.entries[0].target, 'docs/small.txt');
    const long = (await obnamOk(['ls', '-l', 'latest', path.join(src, 'setuid-prog')], { env })).stdout;
    assert.match(long, /^-rwsr-xr-x /);
  });

  it('restores one sub-path only, at its place under the target', async () => {
    const out = path.join(tmp.path, 'partial');
    await obnamOk(['restore', 'latest', out, '--path', path.join(src, 'docs', 'deep')], { env });
    assert.equal(fs.readFileSync(path.join(out, src, 'docs', 'deep', 'deeper', 'leaf.txt'), 'utf8'), 'leaf\n');
    assert.equal(fs.existsSync(path.join(out, src, 'big.bin')), false);
    assert.deepEqual(fs.readdirSync(path.join(out, src, 'docs')), ['deep']);
  });

  it('an unknown snapshot, an ambiguous prefix and a path not in the snapshot fail with one line', async () => {
    for (const args of [['ls', 'ffffffff'], ['restore', 'latest', path.join(tmp.path, 'x'), '--path', '/no/such/path']]) {
      const r = await obnam(args, { env });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n')[0]!.startsWith('obnam: '), true, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('manages keys: add, list, open with the new one, remove', async () => {
    await obnamOk(['key', 'add'], { env: { ...env, OBNAM_NEW_PASSPHRASE: 'second passphrase' } });
    const keys = JSON.parse((await obnamOk(['key', 'list', '--json'], { env })).stdout);
    assert.equal(keys.length, 2);
    const current = keys.find((k: { current: boolean }) => k.current);
    const other = keys.find((k: { current: boolean }) => !k.current);
    await obnamOk(['list'], { env: { ...env, OBNAM_PASSPHRASE: 'second passphrase' } });
    const self = await obnam(['key', 'remove', current.id], { env });
    assert.equal(self.code, 1);
    assert.match(self.stderr, /refusing to remove the key this passphrase opened/);
    await obnamOk(['key', 'remove', other.id.slice(0, 12)], { env });
    const gone = await obnam(['list'], { env: { ...env, OBNAM_PASSPHRASE: 'second passphrase' } });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /wrong passphrase/);
  });
});

describe('passphrases and repositories that are not there', () => {
  it('a wrong passphrase fails cleanly, with exit 1 and one line', async () => {
    const tmp = await tempDir();
    try {
      const env = { OBNAM_REPO: path.join(tmp.path, 'repo'), OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      const r = await obnam(['list'], { env: { ...env, OBNAM_PASSPHRASE: 'wrong' } });
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim(), 'obnam: wrong passphrase: no key of this repository opens with it');
      const again = await obnam(['init'], { env });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already exists/);
    } finally {
      await tmp.remove();
    }
  });

  it('a missing repository is one clear line', async () => {
    const tmp = await tempDir();
    try {
      const r = await obnam(['list'], { env: { OBNAM_REPO: path.join(tmp.path, 'nothing'), OBNAM_PASSPHRASE: PASS, HOME: tmp.path } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^obnam: no obnam repository at /);
    } finally {
      await tmp.remove();
    }
  });

  it('the passphrase can come from --passphrase-file; without any source it fails, not hangs', async () => {
    const tmp = await tempDir();
    try {
      const pf = path.join(tmp.path, 'pass');
      fs.writeFileSync(pf, `${PASS}\n`);
      const env = { OBNAM_REPO: path.join(tmp.path, 'repo'), HOME: tmp.path };
      await obnamOk(['init', '--passphrase-file', pf], { env });
      await obnamOk(['list', '--passphrase-file', pf], { env });
      const r = await obnam(['list'], { env });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no passphrase/);
    } finally {
      await tmp.remove();
    }
  });
});

describe('the default repository and the config file', () => {
  it('init and backup with no repository option use ~/.local/share/obnam', async () => {
    const tmp = await tempDir();
    try {
      const env = { HOME: tmp.path, OBNAM_PASSPHRASE: PASS, XDG_DATA_HOME: undefined, XDG_CONFIG_HOME: undefined };
      const data = path.join(tmp.path, 'data');
      fs.mkdirSync(data);
      fs.writeFileSync(path.join(data, 'f'), 'x');
      await obnamOk(['init'], { env });
      assert.ok(fs.existsSync(path.join(tmp.path, '.local', 'share', 'obnam', 'repo', 'obnam-store')));
      await obnamOk(['backup', data], { env });
      assert.equal(JSON.parse((await obnamOk(['list', '--json'], { env })).stdout).length, 1);
      // Backing up the home directory leaves out the repository inside it.
      await obnamOk(['backup', '--tag', 'home', tmp.path], { env });
      const ls = (await obnamOk(['ls', 'latest', tmp.path], { env })).stdout.trim().split('\n');
      assert.ok(ls.includes(path.join(data, 'f')), ls.join('\n'));
      assert.ok(ls.includes(path.join(tmp.path, '.local', 'share', 'obnam')), 'the directory above the repository is kept');
      assert.ok(!ls.some((l) => l.startsWith(path.join(tmp.path, '.local', 'share', 'obnam', 'repo'))), 'the repository is not backed up');
      assert.deepEqual(JSON.parse((await obnamOk(['list', '--json'], { env })).stdout)[1].tags, ['home']);
    } finally {
      await tmp.remove();
    }
  });

  it('--one-file-system records a mount point but not what is mounted there', async (t) => {
    const tmp = await tempDir();
    const inner = path.join(tmp.path, 'data', 'mnt');
    fs.mkdirSync(inner, { recursive: true });
    fs.writeFileSync(path.join(tmp.path, 'data', 'outside'), 'x');
    const mounted = await runCommand('mount', ['-t', 'tmpfs', 'obnam-test', inner]);
    try {
      if (mounted.code !== 0) return t.skip('cannot mount a tmpfs here (needs root)');
      fs.writeFileSync(path.join(inner, 'inside'), 'y');
      const env = { OBNAM_REPO: path.join(tmp.path, 'repo'), OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
      await obnamOk(['init'], { env });
      await obnamOk(['backup', '-x', path.join(tmp.path, 'data')], { env });
      const ls = (await obnamOk(['ls', 'latest', path.join(tmp.path, 'data')], { env })).stdout.trim().split('\n');
      assert.ok(ls.includes(path.join(tmp.path, 'data', 'outside')));
      assert.ok(ls.includes(inner), 'the mount point itself is recorded');
      assert.ok(!ls.includes(path.join(inner, 'inside')), ls.join('\n'));
      await obnamOk(['backup', path.join(tmp.path, 'data')], { env });
      const all = (await obnamOk(['ls', 'latest', path.join(tmp.path, 'data')], { env })).stdout;
      assert.match(all, /inside/, 'without -x the mounted file system is backed up');
    } finally {
      if (mounted.code === 0) await runCommand('umount', [inner]);
      await tmp.remove();
    }
  });

  it('a backup with a config file needs no arguments, and skips excluded paths', async () => {
    const tmp = await tempDir();
    try {
      const data = path.join(tmp.path, 'data');
      fs.mkdirSync(path.join(data, 'cache'), { recursive: true });
      fs.writeFileSync(path.join(data, 'keep.txt'), 'keep');
      fs.writeFileSync(path.join(data, 'skip.tmp'), 'skip');
      fs.writeFileSync(path.join(data, 'cache', 'junk'), 'junk');
      fs.writeFileSync(path.join(tmp.path, 'pass'), PASS);
      fs.mkdirSync(path.join(tmp.path, '.config', 'obnam'), { recursive: true });
      fs.writeFileSync(
        path.join(tmp.path, '.config', 'obnam', 'config.yaml'),
        `repo: ${tmp.path}/repo\npaths: [${data}]\nexclude: ["*.tmp", "${data}/cache"]\npassphrase_file: ${tmp.path}/pass\ntags: [nightly]\n`,
      );
      const env = { HOME: tmp.path, XDG_CONFIG_HOME: undefined };
      await obnamOk(['init'], { env });
      await obnamOk(['backup'], { env });
      const ls = (await obnamOk(['ls', 'latest', data], { env })).stdout.trim().split('\n');
      assert.deepEqual(ls, [data, path.join(data, 'keep.txt')]);
      const [snap] = JSON.parse((await obnamOk(['list', '--json'], { env })).stdout);
      assert.deepEqual(snap.tags, ['nightly']);
    } finally {
      await tmp.remove();
    }
  });
});

function listRepoFiles(repo: string): string[] {
  return (fs.readdirSync(repo, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(repo, path.join((e as unknown as { path: string }).path, e.name)))
    .sort();
}
