/**
 * Reads small files' contents out of bundles (format-spec 6.7) for engines
 * that walk a snapshot in order (restore, dump): the files of one bundle are
 * mostly neighbours in the walk, so the last few bundles read are kept, and
 * a bundle is fetched and decrypted once for all its files rather than once
 * a file. Concurrent reads of one bundle share its fetch.
 */
import { bundleContent, ChunkRef } from '../format/tree.js';

/** Bundles kept: a walk touches them in order, so a few cover the files in flight. */
const KEEP = 4;

export class BundleReader {
  private readonly recent = new Map<string, Promise<Uint8Array>>();

  constructor(private readonly getChunk: (id: string) => Promise<Uint8Array>) {}

  /** The content a bundle reference names; CORRUPT if it is not inside the bundle, the chunk's own errors otherwise. */
  async read(ref: ChunkRef): Promise<Buffer> {
    let p = this.recent.get(ref.id);
    if (p) {
      this.recent.delete(ref.id); // to the newest end
    } else {
      p = this.getChunk(ref.id);
      if (this.recent.size >= KEEP) this.recent.delete(this.recent.keys().next().value!);
    }
    this.recent.set(ref.id, p);
    let plaintext: Uint8Array;
    try {
      plaintext = await p;
    } catch (e) {
      if (this.recent.get(ref.id) === p) this.recent.delete(ref.id); // the next file tries again
      throw e;
    }
    const part = bundleContent(ref, plaintext);
    return Buffer.from(part.buffer, part.byteOffset, part.byteLength);
  }
}
