/**
 * obnam init --inline-max (issue 12, churn amplification): init records the
 * default inline_max (format-spec 6.6, 10.4) or the chosen one in the config,
 * refuses values no reader accepts, and neither the default (small files in
 * bundles, format version 4) nor a small inline_max re-stores the siblings
 * of a changed small file: an incremental
 * backup after changing one file in a directory of many small files stores
 * that file and the directory's metadata, not the directory's contents.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_INLINE_MAX } from '../lib/format/config.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { prngBytes } from './helpers/prng.js';
import { openTestRepo } from './helpers/repo.js';
import { tempDir, TempDir } from './helpers/tmp.js';
import { assertSameTree } from './helpers/tree.js';

const PASS = 'inline max';
/** The directory of many small files: random (incompressible) contents, below the default inline_max. */
const FILES = 200;
const FILE_BYTES = 3000;

async function inlineMaxOf(repo: string): Promise<number> {
  const r = await openTestRepo(repo, PASS);
  try {
    return r.config.inlineMax;
  } finally {
    await r.close();
  }
}

describe('obnam init --inline-max', () => {
  let tmp: TempDir;
  let src: string;
  const env = (repo: string) => ({ OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path });

  before(async () => {
    tmp = await tempDir();
    src = path.join(tmp.path, 'src');
    fs.mkdirSync(path.join(src, 'many'), { recursive: true });
    for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(src, 'many', `f${String(i).padStart(3, '0')}`), prngBytes(`small ${i}`, FILE_BYTES));
  });
  after(async () => {
    await tmp.remove();
  });

  it('records the default inline_max when none is given, and the chosen one otherwise', async () => {
    const plain = path.join(tmp.path, 'plain');
    await obnamOk(['init'], { env: env(plain) });
    assert.equal(await inlineMaxOf(plain), DEFAULT_INLINE_MAX);
    assert.equal(DEFAULT_INLINE_MAX, 16384, 'the default format-spec 6.6 and 10.4 state');
    for (const v of [0, 1024, 65536]) {
      const repo = path.join(tmp.path, `chosen-${v}`);
      await obnamOk(['init', '--inline-max', String(v)], { env: env(repo) });
      assert.equal(await inlineMaxOf(repo), v);
    }
  });

  it('refuses a value outside 0..65536, or not a whole number, and creates nothing', async () => {
    for (const v of ['65537', '-1', '1.5', 'many']) {
      const repo = path.join(tmp.path, `bad-${v}`);
      const r = await obnam(['init', '--inline-max', v], { env: env(repo) });
      assert.equal(r.code, 1, `--inline-max ${v}: ${r.stderr}`);
      assert.match(r.stderr, /--inline-max must be a whole number of bytes from 0 to 65536/);
      assert.equal(fs.existsSync(path.join(repo, 'obnam-store')), false, `--inline-max ${v} left a repository behind`);
    }
  });

  /** Backs up, appends a line to one file, backs up again: the second backup's stored bytes (its --json summary). */
  async function churnOfOneFile(repo: string, initArgs: string[], name: string): Promise<{ stored: number; snapshot: string }> {
    await obnamOk(['init', ...initArgs], { env: env(repo) });
    await obnamOk(['backup', src], { env: env(repo) });
    fs.appendFileSync(path.join(src, 'many', name), 'one more line\n');
    const r = JSON.parse((await obnamOk(['--json', 'backup', src], { env: env(repo) })).stdout);
    return { stored: r.summary.storedBytes, snapshot: r.snapshot };
  }

  it('changing one small file stores it and the metadata, not its siblings: in a bundle by default, as a chunk with a small inline_max', async () => {
    // The bound is the changed file (one object, a bundle of one file or a chunk: its bytes plus a 35-byte
    // envelope) plus the rewritten trees, metadata only: at most 160 bytes an entry for the 200 entries of the
    // directory (a bundle reference costs a little more than a chunk's), and 4 KiB for the directories above
    // it and the snapshot's root. (Format version 2 inlined all 200 files in the tree: it stored them all again.)
    const bound = FILE_BYTES + 100 + 35 + FILES * 160 + 4096;
    const repoDefault = path.join(tmp.path, 'churn-default');
    const bundled = await churnOfOneFile(repoDefault, [], 'f007');
    assert.ok(bundled.stored < bound, `the default stored ${bundled.stored} bytes, more than ${bound}`);
    assert.ok(bundled.stored < (FILES * FILE_BYTES) / 10, `the default stored ${bundled.stored} bytes: siblings stored again`);
    const outDefault = path.join(tmp.path, 'restored-default');
    await obnamOk(['restore', bundled.snapshot, outDefault], { env: env(repoDefault) });
    assertSameTree(src, path.join(outDefault, src));

    const repo = path.join(tmp.path, 'churn-1024');
    const small = await churnOfOneFile(repo, ['--inline-max', '1024'], 'f100');
    assert.ok(small.stored < bound, `inline_max 1024 stored ${small.stored} bytes, more than ${bound}`);

    // Everything still restores byte for byte.
    const out = path.join(tmp.path, 'restored');
    await obnamOk(['restore', small.snapshot, out], { env: env(repo) });
    assertSameTree(src, path.join(out, src));
  });
});
