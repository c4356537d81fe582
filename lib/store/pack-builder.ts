/**
 * A pack being filled in memory: objects are appended as records until the
 * pack reaches its target size, then the whole file is written at once.
 */
import { randomBytes } from 'node:crypto';
import type { Kind } from '../format/version.js';
import { PACK_HEADER_BYTES, PackEntry, packHeader, packTrailer, RECORD_HEADER_BYTES, recordHeader } from './pack-format.js';

export class PackBuilder {
  readonly id = randomBytes(32).toString('hex');
  readonly entries: PackEntry[] = [];
  private readonly parts: Uint8Array[] = [packHeader()];
  private readonly byKey = new Map<string, { data: Uint8Array; digest: Buffer }>();
  size = PACK_HEADER_BYTES;

  add(kind: Kind, id: string, data: Uint8Array, digest: Buffer): void {
    const offset = this.size + RECORD_HEADER_BYTES;
    this.parts.push(recordHeader(kind, id, data.length, digest), data);
    this.entries.push({ kind, id, offset, length: data.length, digest });
    this.byKey.set(`${kind}/${id}`, { data, digest });
    this.size = offset + data.length;
  }

  /** An object held in this pack, readable before the pack is written. */
  lookup(kind: Kind, id: string): { data: Uint8Array; digest: Buffer } | undefined {
    return this.byKey.get(`${kind}/${id}`);
  }

  get empty(): boolean {
    return this.entries.length === 0;
  }

  /** The pack file's bytes, as parts for one writev. */
  fileParts(): Uint8Array[] {
    return [...this.parts, packTrailer(this.entries)];
  }
}
