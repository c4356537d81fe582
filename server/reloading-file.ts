/**
 * A small local file that the running server re-reads whenever it changed
 * (inode, size or mtime), so that the admin commands take effect from the
 * next request on without a restart. Concurrent callers share one read.
 * Used by the client registry (clients.json) and the namespace grants
 * (namespaces.json).
 */
import * as fss from 'node:fs';
import { ObnamError } from '../lib/errors.js';

export class ReloadingFile<T> {
  private value: T;
  private stamp = '';
  private loading?: Promise<void>;

  constructor(
    private readonly file: string,
    private readonly load: (file: string) => Promise<T>,
    empty: T,
  ) {
    this.value = empty;
  }

  /**
   * The file's contents as loaded, read again first if the file changed
   * (one synchronous stat: it costs less than a trip through the thread pool).
   */
  async current(): Promise<T> {
    for (;;) {
      const stamp = this.currentStamp();
      if (stamp === this.stamp) return this.value;
      if (!this.loading) {
        this.loading = (async () => {
          this.value = await this.load(this.file);
          this.stamp = stamp;
        })().finally(() => (this.loading = undefined));
      }
      await this.loading;
    }
  }

  private currentStamp(): string {
    try {
      const st = fss.statSync(this.file, { throwIfNoEntry: false });
      return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : 'missing';
    } catch (e) {
      throw new ObnamError('IO', `cannot read ${this.file}: ${(e as Error).message}`);
    }
  }
}
