/**
 * Work started now that finishes later. Walkers (backup, restore) do the part
 * that must happen in order, then hand back a Pending for the rest. It is an
 * object, not a bare promise, because an async function that returns a
 * promise would wait for it, which would serialise all the work.
 */
export interface Pending<T> {
  result: Promise<T>;
}

export function pending<T>(result: Promise<T>): Pending<T> {
  result.catch(() => undefined); // awaited later; an early failure must not count as unhandled
  return { result };
}

export function ready<T>(v: T): Pending<T> {
  return { result: Promise.resolve(v) };
}
