/** LocalStore against the store conformance suite, plus its on-disk guarantees. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { LocalStore } from '../lib/store/local.js';
import { storeConformance } from './helpers/store-conformance.js';
import { tempDir } from './helpers/tmp.js';

storeConformance('LocalStore', async () => {
  const dir = await tempDir();
  return { store: await LocalStore.create(dir.path), cleanup: dir.remove };
});

describe('LocalStore on disk', () => {
  it('detects a flipped byte through its digest, without any key', async () => {
    const dir = await tempDir();
    try {
      const s = await LocalStore.create(dir.path);
      const id = randomBytes(32).toString('hex');
      await s.put('chunk', id, randomBytes(1000));
      const file = s.objectPath('chunk', id);
      const bytes = await fs.readFile(file);
      bytes[500] ^= 1;
      await fs.writeFile(file, bytes);
      await assert.rejects(s.get('chunk', id), { code: 'CORRUPT' });
    } finally {
      await dir.remove();
    }
  });

  it('refuses a put whose bytes do not match the sender digest', async () => {
    const dir = await tempDir();
    try {
      const s = await LocalStore.create(dir.path);
      const id = randomBytes(32).toString('hex');
      await assert.rejects(s.put('chunk', id, randomBytes(10), { sha256: randomBytes(32) }), { code: 'CORRUPT' });
      assert.equal(await s.has('chunk', id), false);
    } finally {
      await dir.remove();
    }
  });

  it('open fails with NO_REPOSITORY on a directory that is not a store', async () => {
    const dir = await tempDir();
    try {
      await assert.rejects(LocalStore.open(dir.path), { code: 'NO_REPOSITORY' });
    } finally {
      await dir.remove();
    }
  });

  it('leaves no temp files behind after puts', async () => {
    const dir = await tempDir();
    try {
      const s = await LocalStore.create(dir.path);
      await Promise.all(Array.from({ length: 20 }, () => s.put('chunk', randomBytes(32).toString('hex'), randomBytes(100))));
      assert.deepEqual(await fs.readdir(`${dir.path}/tmp`), []);
    } finally {
      await dir.remove();
    }
  });
});
