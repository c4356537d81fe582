/**
 * LocalStore.listPage (what obnam-server answers listings from) sees objects
 * still in the open pack and drops deleted ones at once: garbage
 * collection's mark and sweep list trees and chunks through it (format-spec
 * 14.8). Its cache followed only the index version, which neither changes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { LocalStore } from '../lib/store/local.js';
import { tempDir } from './helpers/tmp.js';

describe('LocalStore.listPage', () => {
  for (const journalFlush of [true, false]) {
    it(`is fresh after puts and deletes in the open pack (journalFlush ${journalFlush})`, async () => {
      const tmp = await tempDir();
      try {
        const store = await LocalStore.create(path.join(tmp.path, 's'), { journalFlush });
        assert.deepEqual(await store.listPage('chunk', undefined, 100), []);
        const a = randomBytes(32).toString('hex');
        const b = randomBytes(32).toString('hex');
        await store.put('chunk', a, Buffer.from('a'));
        await store.flush();
        assert.deepEqual(await store.listPage('chunk', undefined, 100), [a]);
        await store.put('chunk', b, Buffer.from('b'));
        await store.flush();
        assert.deepEqual(await store.listPage('chunk', undefined, 100), [a, b].sort());
        await store.delete('chunk', a);
        assert.deepEqual(await store.listPage('chunk', undefined, 100), [b]);
        await store.close();
      } finally {
        await tmp.remove();
      }
    });
  }
});
