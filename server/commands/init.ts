/**
 * obnam-server init [DIR] [--cert FILE --key FILE] [--hostname NAME...]:
 * creates a server directory and prints the certificate's SHA-256
 * fingerprint for clients to pin.
 */
import { initServerDir } from '../init.js';

export interface InitArgs {
  dir?: string;
  cert?: string;
  key?: string;
  hostname?: string[];
}

export async function initCommand(args: InitArgs): Promise<number> {
  const { dir, fingerprint } = await initServerDir(args.dir ?? process.env.OBNAM_SERVER_DIR ?? process.cwd(), {
    cert: args.cert,
    key: args.key,
    hostnames: args.hostname,
  });
  process.stdout.write(
    `initialised obnam-server directory ${dir.dir}\n` +
      `certificate SHA-256 fingerprint: ${fingerprint}\n` +
      `next: obnam-server client add NAME --dir ${dir.dir}, then obnam-server serve --dir ${dir.dir}\n`,
  );
  return 0;
}
