/**
 * Scrub of a local directory store: every stored byte checked against its
 * digest, without any repository key (format-spec/local-store.md, section 9):
 * framed files, packs (their index and footer, and every record), and the
 * journals of live writers, and index segments. obnam-server's `scrub` runs it on every namespace.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { sha256 } from '../crypto/hash.js';
import { isId } from '../format/ids.js';
import { Kind, KINDS } from '../format/version.js';
import { unframe } from './framing.js';
import { FILE_DIRS, framedPath, INDEX_DIR, PACKED, packPath, segmentPath, SHARDS, tmpDir } from './local-layout.js';
import { decodeSegment } from './index-segment.js';
import { FOOTER_BYTES, indexLengthFromFooter, packRecords, parsePackIndex } from './pack-format.js';
import { damagedJournalRecords, journals } from './pack-recover.js';

export type ScrubProblem = { kind?: Kind; id?: string; file: string; message: string };

export async function* scrubDirectory(dir: string): AsyncGenerator<ScrubProblem> {
  for (const kind of KINDS) {
    if (PACKED.has(kind)) continue;
    for (const id of (await fs.readdir(path.join(dir, FILE_DIRS[kind]!)).catch(() => [] as string[])).filter(isId)) {
      const file = framedPath(dir, kind, id);
      try {
        unframe(await fs.readFile(file), `${kind} ${id}`);
      } catch (e) {
        yield { kind, id, file, message: (e as Error).message };
      }
    }
  }
  for (const s of SHARDS) {
    const names = await fs.readdir(path.join(dir, 'packs', s)).catch(() => [] as string[]);
    for (const pack of names.filter(isId)) yield* scrubPack(packPath(dir, pack), pack);
  }
  for (const seg of (await fs.readdir(path.join(dir, INDEX_DIR)).catch(() => [] as string[])).filter(isId)) {
    const file = segmentPath(dir, seg);
    try {
      decodeSegment(await fs.readFile(file), `index segment ${seg}`);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') yield { file, message: (e as Error).message };
    }
  }
  // Journals of live writers hold durable objects too.
  for (const [, file] of await journals(tmpDir(dir))) {
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(file);
    } catch {
      continue; // finished meanwhile: checked as a pack next time
    }
    for (const p of damagedJournalRecords(bytes)) yield { ...p, file };
  }
}

async function* scrubPack(file: string, pack: string): AsyncGenerator<ScrubProblem> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    yield { file, message: `cannot read pack: ${(e as Error).message}` };
    return;
  }
  try {
    const tail = bytes.subarray(bytes.length - indexLengthFromFooter(bytes.subarray(bytes.length - FOOTER_BYTES), `pack ${pack}`) - FOOTER_BYTES);
    parsePackIndex(tail, bytes.length, `pack ${pack}`);
  } catch (e) {
    yield { file, message: (e as Error).message };
  }
  try {
    for (const r of packRecords(bytes, `pack ${pack}`)) {
      if (!sha256(r.data).equals(r.digest)) {
        yield { kind: r.kind, id: r.id, file, message: `${r.kind} ${r.id}: stored bytes do not match their SHA-256 digest` };
      }
    }
  } catch (e) {
    yield { file, message: (e as Error).message };
  }
}
