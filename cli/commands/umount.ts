/** obnam umount DIR: unmounts an obnam mount (the mounting process then exits). */
import { GlobalArgs } from '../context.js';
import { EXIT_OK } from '../exit.js';

export interface UmountArgs extends GlobalArgs {
  dir: string;
}

export async function umountCommand(args: UmountArgs): Promise<number> {
  const { unmountObnam } = await import('../../mount/unmount.js');
  const mountpoint = await unmountObnam(args.dir);
  if (args.json) process.stdout.write(JSON.stringify({ unmounted: mountpoint }) + '\n');
  return EXIT_OK;
}
