/**
 * The clock that garbage collection and backups read (format-spec section
 * 14: plan times, grace periods). Production code uses the system clock;
 * tests inject their own through the library (BackupOptions.clock,
 * PruneOptions.clock), never through the environment.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Timestamp } from '../format/tree.js';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Waits `ms` of this clock's time (a backup waiting for a sweep, 14.6 B3).
   * A clock without it cannot wait: whoever would wait fails at once instead.
   */
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await sleepFor(ms, undefined, { signal });
  },
};

export function toTimestamp(ms: number): Timestamp {
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: Math.round((ms - sec * 1000) * 1e6) };
}

export function fromTimestamp(t: Timestamp): number {
  return t.sec * 1000 + t.nsec / 1e6;
}
