/**
 * Recovering journals: a pack's temporary file (tmp/PACKID.OWNER.pack) left
 * by a writer that is no longer running. Its complete records whose bytes
 * match their digests are kept, the rest (a torn tail) is cut off, and the
 * file is finished as a pack and moved into place. A store that flushes by
 * syncing its journal (obnam-server) relies on this for the objects it
 * acknowledged; for other writers it saves work that was not yet in a pack.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { sha256 } from '../crypto/hash.js';
import { isId } from '../format/ids.js';
import { KIND_CODE, Kind } from '../format/version.js';
import { ownerAlive } from '../util/owner.js';
import * as io from './localfs.js';
import { PACK_HEADER_BYTES, PACK_MAGIC, PackEntry, packTrailer, RECORD_HEADER_BYTES } from './pack-format.js';

const JOURNAL = /^([0-9a-f]{64})\.(\d+-\d+)\.pack$/;
const KIND_BY_CODE = new Map<number, Kind>(Object.entries(KIND_CODE).map(([k, c]) => [c, k as Kind]));

/** The journals in `tmpDir`: [pack id, file, whether their writer still runs]. */
export async function journals(tmpDir: string): Promise<[string, string, boolean][]> {
  const out: [string, string, boolean][] = [];
  for (const name of await fs.readdir(tmpDir).catch(() => [] as string[])) {
    const m = JOURNAL.exec(name);
    if (m) out.push([m[1]!, path.join(tmpDir, name), ownerAlive(m[2]!)]);
  }
  return out;
}

/**
 * The intact records of a journal, from byte `from` on (a record boundary;
 * the start by default); stops at the first incomplete or damaged one.
 */
export function intactRecords(file: Buffer, from = PACK_HEADER_BYTES, base = 0): PackEntry[] {
  const entries: PackEntry[] = [];
  if (from === PACK_HEADER_BYTES && (file.length < PACK_HEADER_BYTES || !PACK_MAGIC.equals(file.subarray(0, 4)))) return entries;
  let pos = from - base;
  while (pos + RECORD_HEADER_BYTES <= file.length) {
    const kind = KIND_BY_CODE.get(file[pos]!);
    const id = file.toString('hex', pos + 1, pos + 33);
    const length = file.readUInt32BE(pos + 33);
    const digest = Buffer.from(file.subarray(pos + 37, pos + 69));
    const offset = pos + RECORD_HEADER_BYTES;
    if (!kind || !isId(id) || offset + length > file.length) break;
    if (!sha256(file.subarray(offset, offset + length)).equals(digest)) break;
    entries.push({ kind, id, offset: base + offset, length, digest });
    pos = offset + length;
  }
  return entries;
}

/**
 * Finishes an orphaned journal as the pack `finalPath`; returns its entries
 * (none if nothing in it was intact, in which case it is just removed).
 */
export async function recoverJournal(journal: string, finalPath: string): Promise<PackEntry[]> {
  const bytes = await fs.readFile(journal);
  const entries = intactRecords(bytes);
  if (entries.length) {
    const last = entries[entries.length - 1]!;
    const end = last.offset + last.length;
    const fh = await fs.open(journal, 'r+');
    try {
      await fh.truncate(end);
      const trailer = packTrailer(entries);
      await io.writeAll(fh, [trailer], end);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.mkdir(path.dirname(finalPath), { recursive: true, mode: 0o700 });
    await io.linkNoReplace(journal, finalPath);
    await io.fsyncDir(path.dirname(finalPath));
  }
  await io.unlink(journal, true);
  return entries;
}

/**
 * Checks every complete record of a journal against its digest (scrub): a
 * record that does not match is reported; an incomplete last record is a
 * write in progress, not damage.
 */
export function* damagedJournalRecords(file: Buffer): Generator<{ kind?: Kind; id?: string; message: string }> {
  if (file.length < PACK_HEADER_BYTES || !PACK_MAGIC.equals(file.subarray(0, 4))) {
    yield { message: 'not a pack journal (bad header)' };
    return;
  }
  let pos = PACK_HEADER_BYTES;
  while (pos + RECORD_HEADER_BYTES <= file.length) {
    const kind = KIND_BY_CODE.get(file[pos]!);
    const id = file.toString('hex', pos + 1, pos + 33);
    const length = file.readUInt32BE(pos + 33);
    const offset = pos + RECORD_HEADER_BYTES;
    if (offset + length > file.length) return; // still being written
    if (!kind || !isId(id)) {
      yield { message: `damaged record header at ${pos}` };
      return;
    }
    if (!sha256(file.subarray(offset, offset + length)).equals(file.subarray(pos + 37, pos + 69))) {
      yield { kind, id, message: `${kind} ${id}: stored bytes do not match their SHA-256 digest` };
    }
    pos = offset + length;
  }
}
