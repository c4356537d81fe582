/**
 * Verifies one stored object completely: it exists, its storage digest
 * matches, it decrypts and authenticates, its content matches its id, and
 * (trees, snapshots) it decodes to a valid structure.
 */
import { ObnamError, describeError } from '../errors.js';
import type { Kind } from '../format/version.js';
import type { ObjectReader } from '../repo/views.js';

export type VerifyResult = { ok: true } | { ok: false; code: string; message: string };

/** `length`: for chunks, the length the referring tree records. */
export async function verifyObject(repo: ObjectReader, kind: Kind, id: string, length?: number): Promise<VerifyResult> {
  try {
    if (kind === 'tree') await repo.getTree(id);
    else if (kind === 'snapshot') await repo.getSnapshot(id);
    else {
      const data = await repo.getObject(kind, id);
      if (length !== undefined && data.length !== length) {
        throw new ObnamError('CORRUPT', `${kind} ${id}: ${data.length} bytes, but a tree records ${length}`);
      }
    }
    return { ok: true };
  } catch (e) {
    const code = e instanceof ObnamError ? e.code : 'INTERNAL';
    return { ok: false, code, message: describeError(e) };
  }
}
