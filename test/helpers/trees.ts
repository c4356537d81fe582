/** Small file trees for server tests: make one, and compare two byte for byte. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** Writes a tree of a few directories and files (some empty, some larger than a chunk) under `dir`. */
export async function makeTree(dir: string, seed: string, opts: { bigBytes?: number; files?: number } = {}): Promise<void> {
  await fs.mkdir(path.join(dir, 'sub', 'deeper'), { recursive: true });
  await fs.writeFile(path.join(dir, 'empty'), '');
  await fs.writeFile(path.join(dir, 'hello.txt'), `hello from ${seed}\n`);
  await fs.writeFile(path.join(dir, 'sub', 'random.bin'), randomBytes(opts.bigBytes ?? 300_000));
  for (let i = 0; i < (opts.files ?? 5); i++) {
    await fs.writeFile(path.join(dir, 'sub', 'deeper', `f${i}`), `${seed} file ${i}\n`.repeat(i * 1000 + 1));
  }
  await fs.symlink('hello.txt', path.join(dir, 'link'));
}

/** Asserts that two trees hold the same names, file contents and symlink targets. */
export async function assertSameTree(a: string, b: string): Promise<void> {
  const list = async (d: string) => (await fs.readdir(d)).sort();
  const names = await list(a);
  assert.deepEqual(await list(b), names, `entries of ${b}`);
  for (const n of names) {
    const pa = path.join(a, n);
    const pb = path.join(b, n);
    const sa = await fs.lstat(pa);
    const sb = await fs.lstat(pb);
    assert.equal(sb.mode, sa.mode, `mode of ${pb}`);
    if (sa.isDirectory()) await assertSameTree(pa, pb);
    else if (sa.isSymbolicLink()) assert.equal(await fs.readlink(pb), await fs.readlink(pa));
    else assert.ok((await fs.readFile(pa)).equals(await fs.readFile(pb)), `content of ${pb}`);
  }
}
