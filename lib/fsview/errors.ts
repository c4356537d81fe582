/**
 * Why a file-system view operation failed, as a stable code. The view knows
 * nothing of errno numbers; the FUSE adapter turns these codes into errnos in
 * exactly one place (mount/errno.ts).
 *
 * UNREADABLE is the one that matters for a damaged repository: an object that
 * is missing, corrupt, or could not be fetched. It fails the operation that
 * needed the object (and is logged); everything else keeps working.
 */
export type FsErrorCode =
  | 'NO_ENTRY' // no such path
  | 'NOT_DIR' // a path component is not a directory
  | 'IS_DIR' // a directory where a file was needed
  | 'NOT_FILE' // something that cannot be read as a file (device, fifo, socket)
  | 'NOT_LINK' // readlink of something that is not a symlink
  | 'NO_ATTR' // no such extended attribute
  | 'BAD_HANDLE' // a read on a handle that is not open
  | 'READ_ONLY' // any attempt to change anything
  | 'UNREADABLE'; // an object needed for the answer is missing, corrupt or unreachable

export class FsError extends Error {
  readonly code: FsErrorCode;
  constructor(code: FsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FsError';
    this.code = code;
  }
}
