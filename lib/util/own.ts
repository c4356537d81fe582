/**
 * Byte arrays that can be posted to a worker thread without dragging along
 * the memory they share with other views.
 */

/**
 * A copy of `b` with its own exactly-sized buffer: structured clone copies a
 * view's whole underlying ArrayBuffer, and Node's Buffers often share one.
 */
export function own(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}
