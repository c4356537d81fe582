/**
 * obnam identity new|show through the real CLI: one line of public key on
 * stdout, the file under $XDG_CONFIG_HOME/obnam (or ~/.config/obnam) with mode
 * 0600, never replaced silently, --force keeping the old one, clear exit-1
 * errors for a missing or damaged identity.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadIdentity } from '../lib/crypto/identity.js';
import { obnam, obnamOk } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

const KEY_LINE = /^obnam-pk1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}\n$/;

async function withHome<T>(f: (dirs: { home: string; xdg: string; env: Record<string, string | undefined> }) => Promise<T>): Promise<T> {
  const tmp = await tempDir();
  try {
    const home = path.join(tmp.path, 'home');
    const xdg = path.join(tmp.path, 'xdg');
    await fs.mkdir(home);
    return await f({ home, xdg, env: { HOME: home, XDG_CONFIG_HOME: xdg, OBNAM_PASSPHRASE: 'member passphrase' } });
  } finally {
    await tmp.remove();
  }
}

describe('obnam identity', () => {
  it('show without an identity: exit 1 and how to make one', async () => {
    await withHome(async ({ env, xdg }) => {
      const r = await obnam(['identity', 'show'], { env });
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`no identity at ${path.join(xdg, 'obnam', 'identity')}: create one with obnam identity new`));
    });
  });

  it('new prints one public-key line; the file is 0600 and opens with the passphrase; show prints the same line', async () => {
    await withHome(async ({ env, xdg }) => {
      const made = await obnamOk(['identity', 'new'], { env });
      assert.match(made.stdout, KEY_LINE);
      const file = path.join(xdg, 'obnam', 'identity');
      assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
      assert.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700);
      const shown = await obnamOk(['identity', 'show'], { env: { ...env, OBNAM_PASSPHRASE: undefined } });
      assert.equal(shown.stdout, made.stdout);
      const id = await loadIdentity(file, 'member passphrase');
      const json = JSON.parse((await obnamOk(['identity', 'show', '--json'], { env })).stdout);
      assert.deepEqual(json, { public_key: made.stdout.trim(), file });
      await assert.rejects(loadIdentity(file, 'another passphrase'), /wrong passphrase/);
      assert.equal(id.public.length, 32);
      assert.deepEqual(await fs.readdir(path.dirname(file)), ['identity']);
    });
  });

  it('new never replaces an identity silently; --force replaces it and keeps the old one', async () => {
    await withHome(async ({ env, xdg }) => {
      const file = path.join(xdg, 'obnam', 'identity');
      const first = await obnamOk(['identity', 'new'], { env });
      const before = await fs.readFile(file);
      // refused before any passphrase is asked for
      const again = await obnam(['identity', 'new'], { env: { ...env, OBNAM_PASSPHRASE: undefined } });
      assert.equal(again.code, 1);
      assert.equal(again.stdout, '');
      assert.match(again.stderr, /already exists/);
      assert.deepEqual(await fs.readFile(file), before);
      const forced = await obnamOk(['identity', 'new', '--force'], { env });
      assert.match(forced.stdout, KEY_LINE);
      assert.notEqual(forced.stdout, first.stdout);
      const kept = (await fs.readdir(path.dirname(file))).filter((n) => n.startsWith('identity.replaced-'));
      assert.equal(kept.length, 1);
      assert.match(forced.stderr, new RegExp(`previous identity is kept as .*${kept[0]}`));
      assert.deepEqual(await fs.readFile(path.join(path.dirname(file), kept[0]!)), before);
      assert.equal((await obnamOk(['identity', 'show'], { env })).stdout, forced.stdout);
    });
  });

  it('uses ~/.config/obnam without XDG_CONFIG_HOME, and --identity-file anywhere', async () => {
    await withHome(async ({ env, home }) => {
      const plain = { ...env, XDG_CONFIG_HOME: undefined };
      const made = await obnamOk(['identity', 'new'], { env: plain });
      await fs.access(path.join(home, '.config', 'obnam', 'identity'));
      assert.equal((await obnamOk(['identity', 'show'], { env: plain })).stdout, made.stdout);
      const other = path.join(home, 'keys', 'laptop.identity');
      const made2 = await obnamOk(['identity', 'new', '--identity-file', other], { env: plain });
      assert.notEqual(made2.stdout, made.stdout);
      assert.equal((await obnamOk(['identity', 'show', '--identity-file', other], { env: plain })).stdout, made2.stdout);
      assert.equal((await fs.stat(other)).mode & 0o777, 0o600);
    });
  });

  it('new without a passphrase source writes nothing; a damaged identity file is a clear error', async () => {
    await withHome(async ({ env, xdg }) => {
      const r = await obnam(['identity', 'new'], { env: { ...env, OBNAM_PASSPHRASE: undefined } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no passphrase/);
      await assert.rejects(fs.access(path.join(xdg, 'obnam', 'identity')));
      await fs.mkdir(path.join(xdg, 'obnam'), { recursive: true });
      await fs.writeFile(path.join(xdg, 'obnam', 'identity'), 'not an identity\n', { mode: 0o600 });
      const bad = await obnam(['identity', 'show'], { env });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^obnam: identity file .*identity/);
      assert.doesNotMatch(bad.stderr, /internal error|at .*\.js/);
    });
  });
});
