/**
 * Verifies one stored object completely: it exists, its storage digest
 * matches, it decrypts and authenticates, its content matches its id, and
 * (trees, snapshots) it decodes to a valid structure.
 */
import { ObnamError, describeError } from '../errors.js';
import type { Kind } from '../format/version.js';
import type { ObjectInventory, ObjectReader, ReferenceReader } from '../repo/views.js';

/** `length`: a chunk's plaintext length, when it was read (bundle references are checked against it). */
export type VerifyResult = { ok: true; length?: number } | { ok: false; code: string; message: string };

/**
 * `length`: for chunks, the length the referring tree records; `key`: its
 * content key (format version 3). `outerOnly` (version 3, no reference gave
 * a key): a tree's outer envelope and reference list are checked, a chunk's
 * storage digest.
 */
export async function verifyObject(
  repo: ObjectReader & Pick<ReferenceReader, 'getTreeRefs'> & Pick<ObjectInventory, 'storedSize'>,
  kind: Kind,
  id: string,
  length?: number,
  key?: Uint8Array,
  outerOnly = false,
): Promise<VerifyResult> {
  try {
    if (outerOnly && kind === 'tree') await repo.getTreeRefs(id);
    else if (outerOnly && kind === 'chunk') await repo.storedSize(kind, id);
    else if (kind === 'tree') await repo.getTree(id, { key });
    else if (kind === 'snapshot') await repo.getSnapshot(id);
    else {
      const data = await repo.getObject(kind, id, { key });
      if (length !== undefined && data.length !== length) {
        throw new ObnamError('CORRUPT', `${kind} ${id}: ${data.length} bytes, but a tree records ${length}`);
      }
      return { ok: true, length: data.length };
    }
    return { ok: true };
  } catch (e) {
    const code = e instanceof ObnamError ? e.code : 'INTERNAL';
    return { ok: false, code, message: describeError(e) };
  }
}
