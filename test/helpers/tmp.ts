/** Temporary directories for tests, removed by the test that made them. */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TempDir {
  path: string;
  remove: () => Promise<void>;
}

export async function tempDir(prefix = 'obnam-test-'): Promise<TempDir> {
  const p = await fs.mkdtemp(path.join(process.env.OBNAM_TEST_TMPDIR ?? os.tmpdir(), prefix));
  return {
    path: p,
    remove: async () => {
      await fs.chmod(p, 0o700).catch(() => undefined);
      await fs.rm(p, { recursive: true, force: true });
    },
  };
}
