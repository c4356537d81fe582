/**
 * obnam dump end to end: a file's bytes on stdout (multi-chunk, inline,
 * empty, a hardlink), a directory as a tar archive that GNU tar extracts to
 * the same tree (content, modes, nanosecond and pre-1970 times, symlinks,
 * hardlinks, fifos, xattrs, long and non-UTF-8 names), clear errors, and a
 * reader that stops early.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseEnv, obnam, OBNAM, obnamBytes, obnamOk, runCommand } from './helpers/cli.js';
import { entryAt, openTestRepo } from './helpers/repo.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree, isRoot, makeRichTree } from './helpers/tree.js';

const PASS = 'dump test';

/** The member names of a tar archive, as GNU tar lists them. */
function tarList(archive: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-t', '-f', '-'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let s = '';
    tar.stdout.on('data', (d) => (s += d));
    tar.on('error', reject);
    tar.on('close', (code) => (code === 0 ? resolve(s.trim().split('\n')) : reject(new Error(`tar -t exited ${code}`))));
    tar.stdin.end(archive);
  });
}

describe('obnam dump', () => {
  let tmp: TempDir;
  let src: string;
  let env: Record<string, string>;
  let bigFile: string;
  const longName = 'n'.repeat(120);
  const deepDir = ['a'.repeat(90), 'b'.repeat(90), 'c'.repeat(90)];

  before(async () => {
    tmp = await tempDir();
    src = path.join(tmp.path, 'src');
    fs.mkdirSync(src);
    bigFile = makeRichTree(src).bigFile;
    fs.writeFileSync(path.join(src, longName), 'a name longer than ustar holds\n');
    fs.mkdirSync(path.join(src, ...deepDir), { recursive: true });
    fs.writeFileSync(path.join(src, ...deepDir, 'deep-file'), 'deep\n');
    fs.writeFileSync(path.join(src, 'before-1970'), 'old\n');
    await runCommand('touch', ['-m', '-d', '@-86400.25', path.join(src, 'before-1970')]);
    env = { OBNAM_REPO: path.join(tmp.path, 'repo'), OBNAM_PASSPHRASE: PASS };
    await obnamOk(['init'], { env });
    await obnamOk(['backup', src], { env });
  });
  after(async () => {
    await tmp?.remove();
  });

  it("writes a file's bytes: multi-chunk, inline, empty, and through a hardlink", async () => {
    const repo = await openTestRepo(env.OBNAM_REPO!, PASS);
    try {
      assert.ok((await entryAt(repo, bigFile)).chunks!.length > 2, 'the big file has several chunks');
      // The backup stores docs/hard-b's content, and hard-a and hard-c as hardlinks to it.
      assert.equal((await entryAt(repo, path.join(src, 'hard-a'))).type, 'hardlink');
    } finally {
      await repo.close();
    }
    for (const rel of ['big.bin', 'docs/small.txt', 'empty-file', 'hard-a', 'docs/medium.bin']) {
      const r = await obnamBytes(['dump', 'latest', path.join(src, rel)], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(fs.readFileSync(path.join(src, rel))), `${rel}: same bytes`);
      assert.equal(r.stderr, '');
    }
  });

  it('writes a directory as a tar archive that GNU tar extracts to the same tree', async () => {
    const r = await obnamBytes(['dump', 'latest', src], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /socket: tar archives cannot hold sockets, left out/);
    const archive = path.join(tmp.path, 'src.tar');
    fs.writeFileSync(archive, r.stdout);
    const out = path.join(tmp.path, 'untarred');
    fs.mkdirSync(out);
    const x = await runCommand('tar', ['-x', '-p', '--xattrs', '--xattrs-include=*', '--same-owner', '-f', archive, '-C', out]);
    assert.equal(x.code, 0, x.stderr);
    assert.deepEqual(fs.readdirSync(out), ['src']);
    const n = assertSameTree(src, path.join(out, 'src'), { owners: isRoot, skipSockets: true, toleranceNs: 0n });
    assert.ok(n >= 30, `compared ${n} entries`);
    // GNU tar's listing: the member names and types as written.
    const list = await runCommand('tar', ['-t', '-v', '-f', archive]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^h.* src\/hard-a link to src\/docs\/hard-b$/m);
    assert.match(list.stdout, /^l.* src\/link-relative -> docs\/small\.txt$/m);
    assert.match(list.stdout, /^p.* src\/fifo$/m);
    assert.match(list.stdout, new RegExp(`^-.* src/${longName}$`, 'm'));
  });

  it('a sub-directory is archived under its own name; the root under the top-level names', async () => {
    const r = await obnamBytes(['dump', 'latest', path.join(src, 'docs', 'deep')], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await tarList(r.stdout), ['deep/', 'deep/deeper/', 'deep/deeper/leaf.txt']);
    const whole = await obnamBytes(['dump', 'latest', '/'], { env });
    assert.equal(whole.code, 0, whole.stderr);
    const names = await tarList(whole.stdout);
    assert.equal(names[0], `${src.split('/')[1]}/`, 'first member: the top-level directory');
    assert.ok(names.includes(`${src.slice(1)}/docs/small.txt`));
  });

  it('refuses what it cannot write, with a clear error', async () => {
    const link = await obnam(['dump', 'latest', path.join(src, 'link-relative')], { env });
    assert.equal(link.code, 1);
    assert.match(link.stderr, /link-relative is a symlink to docs\/small\.txt: dump writes the content of a file, or a directory/);
    const missing = await obnam(['dump', 'latest', path.join(src, 'nothing')], { env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nothing is not in this snapshot/);
    const fifo = await obnam(['dump', 'latest', path.join(src, 'fifo')], { env });
    assert.equal(fifo.code, 1);
    assert.match(fifo.stderr, /fifo is a fifo/);
  });

  it('refuses to write an archive to a terminal, but writes a file there', async () => {
    const onTty = (target: string) =>
      runCommand('script', ['-q', '-e', '-c', `${process.execPath} ${OBNAM} dump latest '${target}'`, '/dev/null'], { env });
    const dir = await onTty(src);
    assert.equal(dir.code, 1, dir.stdout);
    assert.match(dir.stdout, /is a directory: its tar archive would go to the terminal; redirect stdout/);
    const file = await onTty(path.join(src, 'docs', 'small.txt'));
    assert.equal(file.code, 0, file.stdout);
    assert.match(file.stdout, /hello obnam-secret-content/);
  });

  it('ends quietly when the reader stops early (EPIPE)', async () => {
    const child = spawn(process.execPath, [OBNAM, 'dump', 'latest', bigFile], { env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const first = await new Promise<Buffer>((resolve) => child.stdout.once('data', resolve));
    assert.ok(first.length > 0);
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(stderr, '');
    assert.equal(code, 141, 'as coreutils and restic, killed by SIGPIPE, report it');
  });
});
