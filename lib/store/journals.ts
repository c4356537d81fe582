/**
 * The journal area of a packed store (format-spec/local-store.md, section
 * 6): where packs being filled are appended to, record by record, instead of
 * being held in memory. A journal can be made durable without finishing its
 * pack (flush by journal, section 7), is recovered as a pack when its writer
 * died (J1), and is read in place by other processes while its writer runs
 * (J2). The packed store (packed.ts) works with or without one; the local
 * directory store has one in its tmp/ (local-journals.ts).
 */
import type { PackEntry } from './pack-format.js';
import type { PackWriter } from './pack-writer.js';

export interface JournalFile {
  /** The pack the journal will become. */
  pack: string;
  file: string;
  /** Whether its writer still runs. */
  alive: boolean;
}

export interface PackJournals {
  /** A journal for a new pack. */
  start(): PackWriter;
  /**
   * Finishes a journal (index and footer, durably) and makes it the pack's
   * blob under its final name; resolves with the pack's size.
   */
  publish(w: PackWriter): Promise<number>;
  /** Removes a journal that will not become a pack. */
  discard(w: PackWriter): Promise<void>;
  /**
   * Finishes a journal from its intact records (J1: of a writer that died,
   * or one of this process's that failed to finish) as its pack, then removes
   * it; the entries and the pack's size (no pack if nothing was intact).
   */
  recover(file: string, pack: string): Promise<{ entries: PackEntry[]; size?: number }>;
  /** Every journal there is. */
  list(): Promise<JournalFile[]>;
  /** The intact records of a journal from byte `from` on (a record boundary); undefined if it is gone. */
  recordsFrom(file: string, from: number): Promise<PackEntry[] | undefined>;
  /** Bytes of a journal; NOT_FOUND if it is gone. */
  read(file: string, offset: number, length: number): Promise<Buffer>;
  /** Removes temporary files left by interrupted writers (J3); never a journal. */
  removeStale(now: number): Promise<void>;
}
