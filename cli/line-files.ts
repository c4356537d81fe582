/**
 * Files that list one item a line, as restic reads them: --exclude-file
 * (patterns) and --files-from (paths; "-" is stdin). Each line is trimmed;
 * blank lines and lines starting with "#" are ignored. Patterns have "~/",
 * $NAME and ${NAME} expanded (an unset variable is empty, as restic does);
 * --files-from lines have "~/" expanded and are then glob patterns, expanded
 * as restic expands them (cli/path-glob.ts); one that matches nothing is
 * skipped, and named through a callback.
 */
import * as fs from 'node:fs/promises';
import { ObnamError } from '../lib/errors.js';
import { expandHome } from './config.js';
import { expandPathPattern } from './path-glob.js';

async function readLines(file: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new ObnamError('USAGE', `cannot read ${what} ${file}: ${(e as Error).message}`);
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function expandVariables(line: string): string {
  return line.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_, a?: string, b?: string) => process.env[(a ?? b)!] ?? '');
}

/** The exclude patterns in an --exclude-file. */
export async function readExcludeFile(file: string): Promise<string[]> {
  return (await readLines(file, 'exclude file')).map((l) => expandHome(expandVariables(l)));
}

/** The paths a --files-from file names; `onUnmatched` hears of each line that matches nothing. */
export async function readFilesFrom(file: string, onUnmatched: (pattern: string) => void): Promise<string[]> {
  const paths: string[] = [];
  for (const line of await readLines(file, 'file list')) {
    const found = await expandPathPattern(expandHome(line));
    if (found.length === 0) onUnmatched(line);
    paths.push(...found);
  }
  return paths;
}
