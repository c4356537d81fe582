/**
 * Key derivation: new key slots get the cost the spec states (scrypt N = 2^17,
 * r = 8, p = 1: 128 MiB per guess) whatever the environment says; readers
 * refuse, before any work and with KDF_LIMIT, a key slot that asks for more
 * memory or work than they allow, and go on with the other slots.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_KDF_COST, deriveKey, kdfMemory, MAX_KDF_MEMORY } from '../lib/crypto/kdf.js';
import { parseKeySlot, tryOpenKeySlot } from '../lib/crypto/keyslot.js';
import { ObnamError } from '../lib/errors.js';
import { encodeCbor } from '../lib/format/cbor.js';
import { Repository } from '../lib/repo/repository.js';
import { LocalStore } from '../lib/store/local.js';
import { obnam, obnamOk, ROOT } from './helpers/cli.js';
import { TEST_KDF } from './helpers/kdf.js';
import { tempDir, TempDir } from './helpers/tmp.js';

const PASS = 'kdf test passphrase';

/** A key object as a hostile store could write it: any KDF parameters, keys that open nothing. */
function craftedKeySlot(kdf: { log_n: number; r: number; p: number }, created = 1_700_000_000): Uint8Array {
  return encodeCbor({
    version: 1,
    kdf: { algorithm: 'scrypt', ...kdf, salt: randomBytes(32) },
    wrapped: randomBytes(12 + 117 + 16),
    created,
    hostname: 'hostile',
    username: 'store',
  });
}

const isKdfLimit = (e: unknown) => e instanceof ObnamError && e.code === 'KDF_LIMIT';

describe('key derivation cost', () => {
  let tmp: TempDir;
  before(async () => {
    tmp = await tempDir('obnam-kdf-');
  });
  after(async () => {
    await tmp.remove();
  });

  it('bin/obnam init makes key slots with scrypt N=2^17, r=8, p=1 (128 MiB), and ignores OBNAM_TEST_KDF_LOG_N', async () => {
    const repo = path.join(tmp.path, 'real');
    const env = { OBNAM_REPO: repo, OBNAM_PASSPHRASE: PASS, HOME: tmp.path, OBNAM_TEST_KDF_LOG_N: '10' };
    await obnamOk(['init'], { env, realKdf: true });
    const keys = JSON.parse((await obnamOk(['key', 'list', '--json'], { env, realKdf: true })).stdout) as { kdf: unknown }[];
    assert.deepEqual(keys.map((k) => k.kdf), [{ algorithm: 'scrypt', log_n: 17, r: 8, p: 1 }]);
    assert.equal(kdfMemory(DEFAULT_KDF_COST), 128 * 1024 * 1024);
  });

  it('the spec states the cost the code uses', async () => {
    const spec = await fs.readFile(path.join(ROOT, 'format-spec', 'README.md'), 'utf8');
    const { logN, r, p } = DEFAULT_KDF_COST;
    assert.match(spec, new RegExp(`\\| scrypt, new slots +\\| log_n ${logN}, r ${r}, p ${p}, salt 32 bytes`));
    assert.match(spec, new RegExp(`Parameters of new slots: \`log_n\` = ${logN}, \`r\` = ${r}, \`p\` = ${p}`));
    assert.match(spec, /scrypt makes each guess cost 128 MiB/);
  });

  it('a key slot asking for more memory or passes than readers allow is refused before any work, with KDF_LIMIT', async () => {
    // Each of these was accepted before (up to 1 GiB, 16 passes): a client spent seconds to minutes on it.
    for (const kdf of [
      { log_n: 18, r: 8, p: 16 }, // 256 MiB, 16 passes
      { log_n: 20, r: 8, p: 1 }, // 1 GiB
      { log_n: 17, r: 32, p: 1 }, // 512 MiB
    ]) {
      const slot = parseKeySlot('ab'.repeat(32), craftedKeySlot(kdf));
      await assert.rejects(tryOpenKeySlot(slot, Buffer.from(PASS)), isKdfLimit, JSON.stringify(kdf));
      await assert.rejects(deriveKey(Buffer.from(PASS), slot.kdf), isKdfLimit);
    }
    // Within the limits: derived (and, with keys that open nothing, "not this passphrase").
    const fine = parseKeySlot('cd'.repeat(32), craftedKeySlot({ log_n: 12, r: 8, p: 2 }));
    assert.equal(await tryOpenKeySlot(fine, Buffer.from(PASS)), undefined);
    assert.ok(kdfMemory({ logN: 18, r: 8, p: 1 }) <= MAX_KDF_MEMORY, 'twice the default memory is allowed');
  });

  it('a repository with a hostile key slot opens with the real one; a wrong passphrase names the refused slot', async () => {
    const dir = path.join(tmp.path, 'hostile');
    const spec = { type: 'local' as const, dir };
    await (await Repository.init(await LocalStore.create(dir), spec, PASS, undefined, { kdf: TEST_KDF })).close();
    const hostileId = 'ee'.repeat(32);
    const store = await LocalStore.open(dir);
    await store.put('key', hostileId, craftedKeySlot({ log_n: 19, r: 8, p: 16 }));
    // The store can also set the unauthenticated "created" beyond what a Date holds (key list used to crash on it).
    await store.put('key', 'ff'.repeat(32), craftedKeySlot({ log_n: 10, r: 8, p: 1 }, 2 ** 53 - 1));
    await store.close();

    const env = { OBNAM_REPO: dir, OBNAM_PASSPHRASE: PASS, HOME: tmp.path };
    await obnamOk(['list'], { env });
    const keys = JSON.parse((await obnamOk(['key', 'list', '--json'], { env })).stdout) as { id: string; created: string }[];
    assert.equal(keys.find((k) => k.id === 'ff'.repeat(32))?.created, '@9007199254740991');
    assert.match((await obnamOk(['key', 'list'], { env })).stdout, /ffffffff {2}@9007199254740991 {2}store@hostile/);
    const r = await obnam(['list'], { env: { ...env, OBNAM_PASSPHRASE: 'wrong' } });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^obnam: wrong passphrase, or its key slot is unusable: ee{7} \(key slot asks for scrypt log_n 19, r 8, p 16 .*readers allow at most 256 MiB/);
  });
});
