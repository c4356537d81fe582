/**
 * A pack being filled: the objects a packed store has accepted but not yet
 * written as a finished pack (format-spec/local-store.md, sections 7 and
 * 11.4). Two kinds implement it: MemoryPack (here), which holds the pack in
 * memory until it is written as one blob, and PackWriter (pack-writer.ts),
 * which appends every object to a journal file as it arrives.
 */
import { randomBytes } from 'node:crypto';
import type { Kind } from '../format/version.js';
import type { PackedEntry } from './compact-index.js';
import { PACK_HEADER_BYTES, packHeader, packTrailer, RECORD_HEADER_BYTES, recordHeader } from './pack-format.js';

export type FillingEntry = PackedEntry & { digest: Buffer };

export interface FillingPack {
  readonly id: string;
  /** The objects added, in order (offsets of their bytes in the pack). */
  readonly entries: readonly FillingEntry[];
  /** Bytes of the pack so far: header and records. */
  readonly size: number;
  readonly empty: boolean;
  add(kind: Kind, id: string, data: Uint8Array, digest: Buffer): void;
  /** An object of this pack, readable before the pack is finished. */
  lookup(kind: Kind, id: string): Promise<{ data: Uint8Array; digest: Buffer } | undefined>;
  digestOf(kind: Kind, id: string): Buffer | undefined;
}

/** A pack held whole in memory, written as one blob (`bytes()`) when it is finished. */
export class MemoryPack implements FillingPack {
  readonly id = randomBytes(32).toString('hex');
  readonly entries: FillingEntry[] = [];
  private readonly parts: Uint8Array[] = [packHeader()];
  private readonly byKey = new Map<string, { data: Uint8Array; digest: Buffer }>();
  size = PACK_HEADER_BYTES;

  get empty(): boolean {
    return this.entries.length === 0;
  }

  add(kind: Kind, id: string, data: Uint8Array, digest: Buffer): void {
    this.parts.push(recordHeader(kind, id, data.length, digest), data);
    this.entries.push({ kind, id, offset: this.size + RECORD_HEADER_BYTES, length: data.length, digest });
    this.byKey.set(`${kind}/${id}`, { data, digest });
    this.size += RECORD_HEADER_BYTES + data.length;
  }

  async lookup(kind: Kind, id: string): Promise<{ data: Uint8Array; digest: Buffer } | undefined> {
    return this.byKey.get(`${kind}/${id}`);
  }

  digestOf(kind: Kind, id: string): Buffer | undefined {
    return this.byKey.get(`${kind}/${id}`)?.digest;
  }

  /** The finished pack: header, records, index and footer (section 4.1), and its size. */
  bytes(): { parts: Uint8Array[]; size: number } {
    const trailer = packTrailer(this.entries);
    return { parts: [...this.parts, trailer], size: this.size + trailer.length };
  }
}
