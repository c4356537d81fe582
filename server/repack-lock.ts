/**
 * One repack of a namespace at a time in a server process: the background
 * repacker (background-repack.ts) and clients' repack requests
 * (routes/repack.ts) run theirs through exclusive(), so a second one waits for
 * the first instead of rewriting the same packs beside it.
 */
export class RepackLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` once no other repack of `namespace` in this process runs. */
  exclusive<T>(namespace: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(namespace) ?? Promise.resolve();
    const run = before.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.tails.set(namespace, tail);
    void tail.then(() => {
      if (this.tails.get(namespace) === tail) this.tails.delete(namespace);
    });
    return run;
  }

  /** Whether a repack of `namespace` runs or waits. */
  busy(namespace: string): boolean {
    return this.tails.has(namespace);
  }
}
