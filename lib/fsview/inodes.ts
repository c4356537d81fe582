/**
 * Inode numbers for the mount. Each distinct file gets its own number, stable
 * for as long as the mount runs; the two names of a hardlink share one (so
 * `cp -a` recreates the hardlink), and the same path in two snapshots gets
 * two (so `diff -r` compares them instead of assuming they are one file).
 * Numbers are handed out on first sight and stay below 2^32 (fuse-native
 * passes 32 bits).
 */
import { ObnamError } from '../errors.js';

export const ROOT_INO = 1;
export const SNAPSHOTS_INO = 2;
export const IDS_INO = 3;
export const LATEST_INO = 4;
const FIRST_FREE = 16;

export class InodeTable {
  private readonly byKey = new Map<string, number>();
  private next = FIRST_FREE;

  /**
   * The inode of `path` (a snapshot-relative path, components joined by "/",
   * "" for the snapshot's root) in snapshot number `snapshot`.
   */
  of(snapshot: number, path: Uint8Array): number {
    const key = `${snapshot}/${Buffer.from(path.buffer, path.byteOffset, path.byteLength).toString('latin1')}`;
    let ino = this.byKey.get(key);
    if (ino === undefined) {
      ino = this.next++;
      if (ino > 0xffffffff) throw new ObnamError('INTERNAL', 'the mount ran out of 32-bit inode numbers');
      this.byKey.set(key, ino);
    }
    return ino;
  }

  get size(): number {
    return this.byKey.size;
  }
}
