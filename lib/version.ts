/**
 * The program's version: the one in package.json, read once at start-up, so
 * `obnam --version`, `obnam-server --version` and the Debian package (built
 * from the same package.json) always agree.
 */
import { readFileSync } from 'node:fs';

/** package.json sits two levels above this module (dist/lib/version.js, or lib/ under /usr/lib/obnam). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
