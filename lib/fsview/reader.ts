/**
 * Reading one open file at any offset. Small files come straight from their
 * tree entry (inline data); others fetch only the chunks that cover the range
 * asked for. When reads go forward through the file (each starts in the chunk
 * where the last one ended, or the next), the chunks after the range are
 * fetched ahead, so sequential reads rarely wait for the repository.
 */
import { describeError } from '../errors.js';
import { chunkContent } from '../format/tree.js';
import type { TreeEntry } from '../format/tree.js';
import { ChunkMap } from './chunkmap.js';
import { FsError } from './errors.js';
import type { RepoObjects } from './objects.js';

export class FileReader {
  private readonly map?: ChunkMap;
  /** The last chunk the previous read touched (-1: none yet, so a read of chunk 0 counts as sequential). */
  private lastChunk = -1;

  constructor(
    private readonly entry: TreeEntry,
    private readonly objects: RepoObjects,
    /** Chunks to fetch ahead of a sequential read (0: none). */
    private readonly readAhead: number,
    /** Collects background fetches, so callers can wait for them (FsView.idle). */
    private readonly track: (p: Promise<void>) => void,
  ) {
    if (entry.chunks) this.map = new ChunkMap(entry.chunks);
  }

  get size(): number {
    return this.entry.size;
  }

  /**
   * Reads up to target.length bytes at `offset` into `target`; returns the
   * count (0 at or past the end). `fromRepository`: every chunk is fetched
   * now, none taken from the view's cache or fetched ahead (a file of a
   * snapshot that is gone: its chunks may be deleted at any time).
   */
  async readInto(target: Buffer, offset: number, fromRepository = false): Promise<number> {
    const end = Math.min(offset + target.length, this.entry.size);
    if (offset >= end) return 0;
    if (this.entry.data) return this.entry.data.copy(target, 0, offset, end);
    const map = this.map!;
    const [first, last] = map.range(offset, end);
    const previous = this.lastChunk;
    const sequential = first === previous || first === previous + 1;
    this.lastChunk = last;
    const wanted: Promise<Buffer>[] = [];
    for (let i = first; i <= last; i++) {
      const { id, key } = map.chunks[i]!;
      wanted.push(fromRepository ? this.objects.chunkFromRepository(id, key) : this.objects.chunk(id, key));
    }
    // Look ahead each time a forward read reaches a new chunk.
    if (sequential && last > previous && !fromRepository) this.fetchAhead(last + 1);
    const chunks = await Promise.all(wanted);
    let written = 0;
    for (let i = first; i <= last; i++) {
      const ref = map.chunks[i]!;
      let chunk: Buffer;
      try {
        chunk = chunkContent(ref, chunks[i - first]!); // a bundle reference: its range of the bundle
      } catch (e) {
        throw new FsError('UNREADABLE', describeError(e));
      }
      const start = map.start(i);
      const from = Math.max(offset, start) - start;
      const to = Math.min(end, start + chunk.length) - start;
      written += chunk.copy(target, written, from, to);
    }
    return written;
  }

  private fetchAhead(from: number): void {
    const map = this.map!;
    for (let i = from; i < Math.min(map.count, from + this.readAhead); i++) {
      this.track(this.objects.prefetchChunk(map.chunks[i]!.id, map.chunks[i]!.key));
    }
  }
}
