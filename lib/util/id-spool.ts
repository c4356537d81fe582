/**
 * IdSpool: an append-only list of 32-byte ids kept in an unlinked temporary
 * file instead of memory, read back once. The collector's mark holds L (every
 * stored id at its start) while it computes what the snapshots reach; at 10
 * million objects L is 320 MiB in memory (IdList) and about 2 MiB here (one
 * block being written or read).
 *
 * The file is created in a fresh private directory (mkdtemp: mode 0700) and
 * unlinked at once, before any id is written: only the open descriptor holds
 * it, so nothing is left behind by a crash or a kill -9 and no other user
 * can read it.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { idToBytes } from '../format/ids.js';

const ID = 32;
/** Ids per block written or read: 2 MiB. */
const BLOCK_IDS = 65536;

export class IdSpool {
  private block = new Uint8Array(BLOCK_IDS * ID);
  private inBlock = 0;
  private count = 0;
  private written = 0;
  private state: 'writing' | 'draining' | 'closed' = 'writing';

  private constructor(private readonly file: fs.FileHandle) {}

  /** A new, empty spool in a private temporary file under `dir` (default: the system's temporary directory). */
  static async create(dir = os.tmpdir()): Promise<IdSpool> {
    const where = await fs.mkdtemp(path.join(dir, 'obnam-ids-'));
    try {
      const name = path.join(where, 'ids');
      const file = await fs.open(name, 'wx+', 0o600);
      await fs.unlink(name);
      return new IdSpool(file);
    } finally {
      await fs.rmdir(where).catch(() => undefined);
    }
  }

  get size(): number {
    return this.count;
  }

  /** Appends an id; returns a promise only when a full block is being written (await it before the next push). */
  push(id: string | Uint8Array): Promise<void> | undefined {
    if (this.state !== 'writing') throw new Error('IdSpool: push after drain');
    this.block.set(typeof id === 'string' ? idToBytes(id) : id, this.inBlock * ID);
    this.count++;
    if (++this.inBlock < BLOCK_IDS) return undefined;
    return this.writeBlock();
  }

  private async writeBlock(): Promise<void> {
    const bytes = this.inBlock * ID;
    let done = 0;
    while (done < bytes) {
      const { bytesWritten } = await this.file.write(this.block, done, bytes - done, this.written + done);
      done += bytesWritten;
    }
    this.written += bytes;
    this.inBlock = 0;
  }

  /**
   * Every id pushed, in order, once; the spool is closed at the end (or when
   * the loop stops early). Each yielded array is valid until the next one is
   * asked for.
   */
  async *drain(): AsyncIterableIterator<Uint8Array> {
    if (this.state !== 'writing') throw new Error('IdSpool: drained twice');
    this.state = 'draining';
    try {
      const tail = this.block.slice(0, this.inBlock * ID);
      for (let at = 0; at < this.written; ) {
        const want = Math.min(this.block.length, this.written - at);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await this.file.read(this.block, got, want - got, at + got);
          if (bytesRead === 0) throw new Error('IdSpool: temporary file shorter than written');
          got += bytesRead;
        }
        for (let o = 0; o < want; o += ID) yield this.block.subarray(o, o + ID);
        at += want;
      }
      for (let o = 0; o < tail.length; o += ID) yield tail.subarray(o, o + ID);
    } finally {
      await this.close();
    }
  }

  /** Closes the file (its space is given back); safe to call more than once. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.block = new Uint8Array(0);
    await this.file.close();
  }
}
