/**
 * A bounded cache of files open for reading, by path: the least recently
 * used is closed beyond the bound, once no read holds it. A file evicted
 * while read (its blob deleted) is closed when the last read releases it, so
 * a read in flight never sees its descriptor closed under it.
 */
import * as fs from 'node:fs/promises';

export interface OpenFile {
  readonly fh: fs.FileHandle;
  readonly path: string;
}

interface Entry extends OpenFile {
  users: number;
  evicted: boolean;
}

export class OpenFiles {
  private readonly open = new Map<string, Promise<Entry>>();
  /** Entries taken out of `open` but still read. */
  private readonly draining = new Set<Entry>();

  constructor(private readonly max: number) {}

  async acquire(path: string): Promise<OpenFile> {
    let p = this.open.get(path);
    if (p) {
      // Most recently used last.
      this.open.delete(path);
      this.open.set(path, p);
    } else {
      p = fs.open(path, 'r').then((fh) => ({ fh, path, users: 0, evicted: false }));
      this.open.set(path, p);
      p.catch(() => {
        if (this.open.get(path) === p) this.open.delete(path);
      });
      while (this.open.size > this.max) this.evict(this.open.keys().next().value as string);
    }
    const e = await p;
    e.users++;
    return e;
  }

  release(f: OpenFile): void {
    const e = f as Entry;
    e.users--;
    if (e.evicted && e.users === 0) this.closeEntry(e);
  }

  /** Stops caching a file (closed now, or when its last read releases it). */
  evict(path: string): void {
    const p = this.open.get(path);
    if (!p) return;
    this.open.delete(path);
    void p.then(
      (e) => {
        e.evicted = true;
        if (e.users === 0) this.closeEntry(e);
        else this.draining.add(e);
      },
      () => undefined,
    );
  }

  private closeEntry(e: Entry): void {
    this.draining.delete(e);
    void e.fh.close().catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    for (const p of all) {
      const e = await p.catch(() => undefined);
      if (e) await e.fh.close().catch(() => undefined);
    }
    for (const e of this.draining) await e.fh.close().catch(() => undefined);
    this.draining.clear();
  }
}
