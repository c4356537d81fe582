/**
 * Where a file's bytes are: the cumulative offsets of its chunks, and a
 * binary search from a byte offset to the chunk that holds it, so a read of
 * any range touches only the chunks that cover it.
 */
import type { ChunkRef } from '../format/tree.js';

export class ChunkMap {
  /** starts[i] is the file offset of chunk i; starts[n] is the file size. */
  private readonly starts: Float64Array;

  constructor(readonly chunks: readonly ChunkRef[]) {
    this.starts = new Float64Array(chunks.length + 1);
    for (let i = 0; i < chunks.length; i++) this.starts[i + 1] = this.starts[i]! + chunks[i]!.length;
  }

  get size(): number {
    return this.starts[this.chunks.length]!;
  }

  get count(): number {
    return this.chunks.length;
  }

  /** The file offset where chunk `i` starts. */
  start(i: number): number {
    return this.starts[i]!;
  }

  /** The index of the chunk holding byte `offset` (0 <= offset < size). */
  indexAt(offset: number): number {
    // The last chunk whose start is <= offset (never an empty chunk: the next one starts at the same offset).
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The chunks [first, last] covering bytes [offset, end) (end > offset, end <= size). */
  range(offset: number, end: number): [number, number] {
    return [this.indexAt(offset), this.indexAt(end - 1)];
  }
}
