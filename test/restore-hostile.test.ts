/**
 * Restore of a hostile snapshot, as root (format-spec section 12: key holders
 * are the threat). The snapshot is written with the library, not by a
 * backup: next to a directory named `m\xff` (not UTF-8) stands a symlink named
 * `m\xef\xbf\xbd` (the bytes of "m\uFFFD", what `m\xff` becomes when decoded
 * as UTF-8) pointing to a directory outside the target, at two levels, with
 * fifos, device nodes, sockets and files with user.* and security.* xattrs
 * below the real directories. A restore must put all of it inside the target
 * and change nothing outside: no new entries, no xattrs, modes, owners or
 * times changed (the outside tree's full state is compared before and after,
 * ctime included). Symlinks planted in the target in place of a directory
 * stop the restore with a clear line; one in place of a file is replaced.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compareNames, TreeEntry } from '../lib/format/tree.js';
import type { Repository } from '../lib/repo/repository.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { openTestRepo } from './helpers/repo.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { isRoot, setTimeNs, setXattr, xattrsOf } from './helpers/tree.js';

const PASS = 'hostile restore passphrase';
const T = { sec: 1_000_000_000, nsec: 5 };
const M_FF = Buffer.from([0x6d, 0xff]); // "m\xff": not UTF-8
const M_FFFD = Buffer.from([0x6d, 0xef, 0xbf, 0xbd]); // "m\uFFFD" in UTF-8: what M_FF decodes to
const N_FF = Buffer.from([0x6e, 0xff]);
const N_FFFD = Buffer.from([0x6e, 0xef, 0xbf, 0xbd]);

/** A valid VFS_CAP_REVISION_2 security.capability value (effective, CAP_NET_RAW permitted). */
const CAPABILITY = Buffer.from([0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const EVIL_XATTRS: [Buffer, Buffer][] = [
  [Buffer.from('security.capability'), CAPABILITY],
  [Buffer.from('user.evil'), Buffer.from('set by a hostile snapshot')],
];

function entry(name: Buffer | string, type: TreeEntry['type'], extra: Partial<TreeEntry> = {}): TreeEntry {
  return { name: Buffer.from(name), type, mode: 0o644, uid: 0, gid: 0, mtime: T, ctime: T, size: 0, ...extra };
}

const file = (name: Buffer | string, content: string, xattrs?: [Buffer, Buffer][]) =>
  entry(name, 'file', { data: Buffer.from(content), size: Buffer.byteLength(content), xattrs });

async function dir(repo: Repository, name: Buffer | string, entries: TreeEntry[], extra: Partial<TreeEntry> = {}): Promise<TreeEntry> {
  const sorted = [...entries].sort((a, b) => compareNames(a.name, b.name));
  const { id } = await repo.putTree({ kind: 'leaf', entries: sorted });
  return entry(name, 'dir', { mode: 0o755, subtree: id, ...extra });
}

/** The special files and xattr-carrying files that went outside through the confused name. */
function payload(tag: string): TreeEntry[] {
  return [
    entry(`fifo-${tag}`, 'fifo', { xattrs: [[Buffer.from('security.obnam-test'), Buffer.from('fifo')]] }),
    entry(`cdev-${tag}`, 'chardev', { rdev: (1 << 8) | 3, mode: 0o666 }),
    entry(`bdev-${tag}`, 'blockdev', { rdev: 7 << 8, mode: 0o660 }),
    entry(`sock-${tag}`, 'socket', { mode: 0o755 }),
    file(`victim-${tag}`, 'hostile content\n', EVIL_XATTRS),
  ];
}

/**
 * Writes the hostile snapshot: h/m\uFFFD -> outside, and h/m\xff/ holding
 * the payload, deep/er/ (a path that exists outside too) with more, and a
 * second level n\uFFFD -> outside next to n\xff/; plus a hardlink whose link
 * goes through the symlink.
 */
async function writeHostileSnapshot(repo: Repository, outside: string): Promise<string> {
  const deeper = await dir(repo, 'er', [...payload('deep'), file('victim', 'overwrites outside/deep/er/victim?\n', EVIL_XATTRS)]);
  const deep = await dir(repo, 'deep', [deeper]);
  const nDir = await dir(repo, N_FF, payload('n'), { xattrs: EVIL_XATTRS.slice(1) });
  const mDir = await dir(
    repo,
    M_FF,
    [
      ...payload('m'),
      file('victim', 'overwrites outside/victim?\n', EVIL_XATTRS),
      deep,
      nDir,
      entry(N_FFFD, 'symlink', { target: Buffer.from(outside), size: outside.length }),
      entry('link-out', 'hardlink', { link: Buffer.concat([Buffer.from('h/'), M_FFFD, Buffer.from('/victim')]) }),
    ],
    { mode: 0o1777, xattrs: EVIL_XATTRS.slice(1) },
  );
  const h = await dir(repo, 'h', [mDir, entry(M_FFFD, 'symlink', { target: Buffer.from(outside), size: outside.length })]);
  const root = await dir(repo, 'root', [h]);
  const zero = { files: 0, dirs: 0, symlinks: 0, others: 0, bytes: 0, filesRead: 0, newChunks: 0, newTrees: 0, newBytes: 0, storedBytes: 0, errors: 0 };
  const { id } = await repo.putSnapshot({
    tree: root.subtree!,
    time: T,
    end: T,
    hostname: 'hostile',
    username: 'mallory',
    paths: ['/h'],
    tags: [],
    program: 'a hostile key holder',
    summary: zero,
  });
  return id;
}

/** The directory outside the target: files with xattrs, a deeper directory, a fifo and a device. */
function makeOutside(outside: string): void {
  fs.mkdirSync(path.join(outside, 'deep', 'er'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'victim'), 'must not change\n', { mode: 0o644 });
  fs.writeFileSync(path.join(outside, 'deep', 'er', 'victim'), 'must not change either\n', { mode: 0o600 });
  setXattr(path.join(outside, 'victim'), 'user.original', 'before');
  setXattr(outside, 'user.original', 'the outside directory');
  for (const p of ['victim', 'deep/er/victim', 'deep/er', 'deep', '.']) setTimeNs(path.join(outside, p), 1_500_000_000, 7);
}

/** Everything observable about a tree: entries, types, modes, owners, sizes, times (ctime too), content, targets, all xattrs. */
function stateOf(root: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  const visit = (p: Buffer, rel: string) => {
    const st = fs.lstatSync(p, { bigint: true });
    const d: Record<string, string> = {
      mode: st.mode.toString(8),
      uid: String(st.uid),
      gid: String(st.gid),
      size: String(st.size),
      rdev: String(st.rdev),
      nlink: String(st.nlink),
      ino: String(st.ino),
      mtime: String(st.mtimeNs),
      ctime: String(st.ctimeNs),
      xattrs: JSON.stringify(xattrsOf(p)),
    };
    if (st.isFile()) d.sha256 = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    if (st.isSymbolicLink()) d.target = fs.readlinkSync(p, { encoding: 'buffer' }).toString('hex');
    out.set(rel, d);
    if (st.isDirectory()) {
      for (const n of (fs.readdirSync(p, { encoding: 'buffer' }) as Buffer[]).sort(Buffer.compare)) {
        visit(Buffer.concat([p, Buffer.from('/'), n]), `${rel}/${n.toString('hex')}`);
      }
    }
  };
  visit(Buffer.from(root), '.');
  return out;
}

const at = (...parts: (string | Buffer)[]) => Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from('/'), Buffer.from(p)] : [Buffer.from(p)])));

describe('restore of a hostile snapshot (as root)', { skip: !isRoot && 'needs root (device nodes, security.* xattrs)' }, () => {
  let tmp: TempDir;
  let outside: string;
  let snapshot: string;
  let env: Record<string, string>;
  let before_: Map<string, Record<string, string>>;

  before(async () => {
    tmp = await tempDir();
    outside = path.join(tmp.path, 'outside');
    makeOutside(outside);
    before_ = stateOf(outside);
    env = { OBNAM_REPO: path.join(tmp.path, 'repo'), OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
    await obnamOk(['init'], { env });
    const repo = await openTestRepo(env.OBNAM_REPO!, PASS);
    try {
      snapshot = await writeHostileSnapshot(repo, outside);
    } finally {
      await repo.close();
    }
  });

  after(async () => {
    await tmp.remove();
  });

  const assertOutsideUnchanged = () => assert.deepEqual(stateOf(outside), before_, 'nothing outside the target changed');

  it('puts every entry inside the target and changes nothing outside; the refused hardlink is reported', async () => {
    const target = path.join(tmp.path, 'target');
    const r = await obnam(['restore', snapshot, target], { env });
    assertOutsideUnchanged();
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /link-out: hardlink to \/h\/m\uFFFD\/victim not restored: its target is not part of this restore/);
    assert.match(r.stderr, /1 files could not be restored completely/);
    const m = at(target, 'h', M_FF);
    assert.ok(fs.lstatSync(m).isDirectory());
    assert.equal(fs.lstatSync(m).mode & 0o7777, 0o1777);
    assert.deepEqual(xattrsOf(m), { 'user.evil': Buffer.from('set by a hostile snapshot').toString('hex') });
    assert.equal(fs.readlinkSync(at(target, 'h', M_FFFD), { encoding: 'buffer' }).toString(), outside);
    for (const [where, tag] of [
      [m, 'm'],
      [at(m, 'deep', 'er'), 'deep'],
      [at(m, N_FF), 'n'],
    ] as const) {
      const st = (n: string) => fs.lstatSync(at(where, n), { bigint: true });
      assert.ok(st(`fifo-${tag}`).isFIFO(), `${where}/fifo-${tag}`);
      assert.deepEqual(xattrsOf(at(where, `fifo-${tag}`)), { 'security.obnam-test': Buffer.from('fifo').toString('hex') });
      assert.ok(st(`cdev-${tag}`).isCharacterDevice());
      assert.equal(st(`cdev-${tag}`).rdev, 259n);
      assert.equal(st(`cdev-${tag}`).mode & 0o7777n, 0o666n);
      assert.ok(st(`bdev-${tag}`).isBlockDevice());
      assert.equal(st(`bdev-${tag}`).rdev, 1792n);
      assert.ok(st(`sock-${tag}`).isSocket());
      assert.equal(st(`sock-${tag}`).mode & 0o7777n, 0o755n);
      assert.equal(st(`sock-${tag}`).mtimeNs, 1_000_000_000_000_000_005n);
      const victim = at(where, `victim-${tag}`);
      assert.equal(fs.readFileSync(victim, 'utf8'), 'hostile content\n');
      assert.deepEqual(Object.keys(xattrsOf(victim)), ['security.capability', 'user.evil']);
    }
    assert.equal(fs.readFileSync(at(m, 'victim'), 'utf8'), 'overwrites outside/victim?\n');
  });

  it('a symlink planted in the target in place of a directory stops the restore with one clear line', async () => {
    for (const plant of [['h'], ['h', M_FF, 'deep']] as (string | Buffer)[][]) {
      const target = path.join(tmp.path, `planted-${plant.length}`);
      const parent = at(target, ...plant.slice(0, -1));
      fs.mkdirSync(parent, { recursive: true });
      const link = at(parent, plant[plant.length - 1]!);
      fs.symlinkSync(plant.length === 1 ? outside : path.join(outside, 'deep'), link);
      const r = await obnam(['restore', snapshot, target], { env });
      assertOutsideUnchanged();
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /exists and is not a directory; refusing to restore through it/);
      assert.ok(fs.lstatSync(link).isSymbolicLink(), 'the planted symlink is left as it was');
    }
  });

  it('a symlink planted in the target in place of a file is replaced, never written through', async () => {
    const target = path.join(tmp.path, 'planted-file');
    const m = at(target, 'h', M_FF);
    fs.mkdirSync(at(m, 'deep', 'er'), { recursive: true });
    fs.symlinkSync(path.join(outside, 'victim'), at(m, 'victim'));
    fs.symlinkSync(path.join(outside, 'deep', 'er', 'victim'), at(m, 'deep', 'er', 'victim'));
    fs.symlinkSync(outside, at(m, 'fifo-m'));
    const r = await obnam(['restore', snapshot, target], { env });
    assertOutsideUnchanged();
    assert.equal(r.code, 1, r.stderr); // the hardlink through the symlink, as above
    assert.ok(fs.lstatSync(at(m, 'victim')).isFile());
    assert.ok(fs.lstatSync(at(m, 'deep', 'er', 'victim')).isFile());
    assert.ok(fs.lstatSync(at(m, 'fifo-m')).isFIFO());
  });
});
