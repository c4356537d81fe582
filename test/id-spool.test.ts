/**
 * IdSpool (lib/util/id-spool.ts): the mark's list of every stored id, kept
 * in an unlinked temporary file. Reads back exactly what was pushed, across
 * block boundaries, leaves no file behind, and gives its descriptor back
 * when a reader stops early.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { IdSpool } from '../lib/util/id-spool.js';
import { tempDir } from './helpers/tmp.js';

const idOf = (i: number) => createHash('sha256').update(`id ${i}`).digest();
const openFds = () => fs.readdirSync('/proc/self/fd').length;

describe('IdSpool', () => {
  it('reads back every id in order across blocks (2.5 blocks), and leaves nothing in its directory', async () => {
    const tmp = await tempDir();
    try {
      const spool = await IdSpool.create(tmp.path);
      assert.deepEqual(fs.readdirSync(tmp.path), [], 'the file is unlinked before any id is written');
      const n = 65536 * 2 + 32768;
      for (let i = 0; i < n; i++) {
        const w = spool.push(i % 2 ? idOf(i) : idOf(i).toString('hex'));
        if (w) await w;
      }
      assert.equal(spool.size, n);
      let i = 0;
      for await (const b of spool.drain()) {
        assert.ok(Buffer.from(b).equals(idOf(i)), `id ${i}`);
        i++;
      }
      assert.equal(i, n);
      assert.deepEqual(fs.readdirSync(tmp.path), []);
    } finally {
      await tmp.remove();
    }
  });

  it('closes its file when the reader stops early, and when closed unread', async () => {
    const tmp = await tempDir();
    try {
      const before = openFds();
      const a = await IdSpool.create(tmp.path);
      const b = await IdSpool.create(tmp.path);
      for (let i = 0; i < 70_000; i++) {
        await a.push(idOf(i));
        await b.push(idOf(i));
      }
      assert.equal(openFds(), before + 2);
      for await (const x of a.drain()) if (x[0]! > 0) break;
      await b.close();
      await b.close();
      assert.equal(openFds(), before);
      assert.throws(() => a.push(idOf(0)), /push after drain/);
      assert.deepEqual(fs.readdirSync(tmp.path), []);
    } finally {
      await tmp.remove();
    }
  });
});
