/**
 * The mount's one edge for errors: every failure of a file-system request
 * becomes a negative errno here, and nowhere else. FsError codes map to
 * their errno; an object that cannot be read (UNREADABLE) and anything
 * unexpected become EIO and are logged, once per distinct message, so a
 * damaged repository is visible without flooding the log when the kernel
 * retries.
 */
import { constants } from 'node:os';
import { FsError, FsErrorCode } from '../lib/fsview/errors.js';
import { describeError } from '../lib/errors.js';

const E = constants.errno;

const ERRNO: Record<FsErrorCode, number> = {
  NO_ENTRY: E.ENOENT,
  NOT_DIR: E.ENOTDIR,
  IS_DIR: E.EISDIR,
  NOT_FILE: E.EINVAL,
  NOT_LINK: E.EINVAL,
  NO_ATTR: E.ENODATA,
  BAD_HANDLE: E.EBADF,
  READ_ONLY: E.EROFS,
  UNREADABLE: E.EIO,
};

/** The errno (positive) for a failure; EIO for anything that is not an FsError. */
export function errnoOf(e: unknown): number {
  return e instanceof FsError ? ERRNO[e.code] : E.EIO;
}

export const EROFS = -E.EROFS;

const MAX_REMEMBERED = 10_000;

export class ErrorReporter {
  private readonly seen = new Set<string>();

  constructor(private readonly log: (line: string) => void) {}

  /** The negative errno fuse-native expects for `e`, logging the failures worth telling about. */
  errno(e: unknown, op: string, path: string): number {
    const errno = errnoOf(e);
    if (errno === E.EIO) {
      const what = e instanceof FsError ? e.message : `internal error: ${describeError(e)}`;
      const line = `${op} ${JSON.stringify(path)}: ${what}`;
      if (!this.seen.has(line)) {
        if (this.seen.size >= MAX_REMEMBERED) this.seen.clear();
        this.seen.add(line);
        this.log(line);
      }
    }
    return -errno;
  }
}
