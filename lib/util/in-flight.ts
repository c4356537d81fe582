/**
 * InFlight: a count of started operations with a bound. A producer awaits
 * `slot()` before starting one and calls `done()` when it settles; `idle()`
 * resolves once none is left. Keeps the number of pending promises (and of
 * what they hold) bounded however many operations a walk starts, without a
 * list of them.
 */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];
  /** The most operations in flight at once (for measurements and tests). */
  peak = 0;

  constructor(readonly limit: number) {}

  get size(): number {
    return this.count;
  }

  /** Resolves when one more operation may start, and counts it as started. */
  async slot(): Promise<void> {
    while (this.count >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    this.count++;
    if (this.count > this.peak) this.peak = this.count;
  }

  /** One operation has settled. */
  done(): void {
    this.count--;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when no operation is in flight. */
  async idle(): Promise<void> {
    while (this.count > 0) await new Promise<void>((r) => this.waiters.push(r));
  }
}
