/**
 * The journal area of a local directory store (format-spec/local-store.md,
 * section 6): journals are files DIR/tmp/PACK.OWNER.pack (pack-writer.ts),
 * finished in place and linked into DIR/packs/XX/PACK (section 7, D1-D3),
 * recovered by pack-recover.ts when their writer died.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { errnoCode, ObnamError } from '../errors.js';
import type { JournalFile, PackJournals } from './journals.js';
import { packPath, tmpDir } from './local-layout.js';
import * as io from './localfs.js';
import { FOOTER_BYTES, INDEX_ENTRY_BYTES, PACK_HEADER_BYTES, PackEntry } from './pack-format.js';
import { intactRecords, journals, recoverJournal } from './pack-recover.js';
import { PackWriter } from './pack-writer.js';

/** Temporary files (not journals) older than this are leftovers of interrupted writers (J3). */
const STALE_TMP_MS = 24 * 3600 * 1000;
const JOURNAL_NAME = /\.\d+-\d+\.pack$/;

export class LocalJournals implements PackJournals {
  private readonly tmp: string;

  constructor(readonly dir: string) {
    this.tmp = tmpDir(dir);
  }

  start(): PackWriter {
    return new PackWriter(this.tmp);
  }

  async publish(w: PackWriter): Promise<number> {
    const final = packPath(this.dir, w.id);
    await w.finish();
    // Shard directories may be missing (a store copied by tools that drop empty directories).
    await fs.mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
    await io.linkNoReplace(w.tmpPath, final);
    w.readPath = final;
    await io.fsyncDir(path.dirname(final));
    await io.unlink(w.tmpPath, true).catch(() => undefined);
    return w.size + w.entries.length * INDEX_ENTRY_BYTES + FOOTER_BYTES;
  }

  async discard(w: PackWriter): Promise<void> {
    await w.abandon();
    await io.unlink(w.tmpPath, true).catch(() => undefined);
  }

  async recover(file: string, pack: string): Promise<{ entries: PackEntry[]; size?: number }> {
    const final = packPath(this.dir, pack);
    const entries = await recoverJournal(file, final);
    const size = entries.length ? (await fs.stat(final)).size : undefined;
    return { entries, size };
  }

  async list(): Promise<JournalFile[]> {
    return (await journals(this.tmp)).map(([pack, file, alive]) => ({ pack, file, alive }));
  }

  async recordsFrom(file: string, from: number): Promise<PackEntry[] | undefined> {
    let bytes: Buffer;
    try {
      const fh = await fs.open(file, 'r');
      try {
        const { size } = await fh.stat();
        bytes = Buffer.alloc(Math.max(0, size - from));
        await fh.read(bytes, 0, bytes.length, from);
        if (from === PACK_HEADER_BYTES) {
          const head = Buffer.alloc(PACK_HEADER_BYTES);
          await fh.read(head, 0, PACK_HEADER_BYTES, 0);
          bytes = Buffer.concat([head, bytes]);
        }
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined; // finished meanwhile: its pack shows up
      throw new ObnamError('IO', `cannot read journal ${file}: ${(e as Error).message}`);
    }
    return intactRecords(bytes, from, from === PACK_HEADER_BYTES ? 0 : from);
  }

  async read(file: string, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    try {
      const fh = await fs.open(file, 'r');
      try {
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        if (bytesRead !== length) throw new ObnamError('NOT_FOUND', `journal ${file} is shorter than its index says`);
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (e instanceof ObnamError) throw e;
      if (errnoCode(e) === 'ENOENT') throw new ObnamError('NOT_FOUND', `journal ${file} is gone`);
      throw new ObnamError('IO', `cannot read journal ${file}: ${(e as Error).message}`);
    }
    return buf;
  }

  async removeStale(now: number): Promise<void> {
    for (const n of await fs.readdir(this.tmp).catch(() => [] as string[])) {
      if (JOURNAL_NAME.test(n)) continue;
      const p = path.join(this.tmp, n);
      const st = await fs.stat(p).catch(() => undefined);
      if (st && now - st.mtimeMs > STALE_TMP_MS) await fs.rm(p, { force: true }).catch(() => undefined);
    }
  }
}
