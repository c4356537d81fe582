/**
 * Damaging a snapshot object the way a failing disk or a hostile store
 * cannot be caught by the store itself: through the store's own interface,
 * so its digest matches and only decryption fails.
 */
import assert from 'node:assert/strict';
import type { ObjectStore } from '../../lib/store/store.js';

/** Replaces a snapshot object by one whose envelope fails authentication (its last byte flipped). */
export async function makeUndecryptable(store: ObjectStore, id: string): Promise<void> {
  const bytes = Buffer.from(await store.get('snapshot', id));
  bytes[bytes.length - 1]! ^= 0x01;
  await store.delete('snapshot', id);
  assert.equal(await store.put('snapshot', id, bytes), true);
}
