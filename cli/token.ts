/**
 * Where the access token for a server comes from, in order: --token,
 * --token-file, OBNAM_TOKEN, OBNAM_TOKEN_FILE, the config file's token, its
 * token_file. A token file holds the token alone (surrounding whitespace and
 * a final newline are ignored), so that it need not stand on a command line
 * (visible in ps) or in the environment. It is checked as a passphrase file
 * is: readable by others draws a warning, writable by others is refused
 * (someone could substitute their own token and receive the backups).
 */
import * as fs from 'node:fs/promises';
import { ObnamError } from '../lib/errors.js';
import { checkSecretFile } from './passphrase.js';

export interface TokenSources {
  token?: string;
  tokenFile?: string;
  configToken?: string;
  configTokenFile?: string;
}

export async function readTokenFile(file: string): Promise<string> {
  let text: string;
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    checkSecretFile('token file', file, await fh.stat());
    text = await fh.readFile('utf8');
  } catch (e) {
    if (e instanceof ObnamError) throw e;
    throw new ObnamError('USAGE', `cannot read token file ${file}: ${(e as Error).message}`);
  } finally {
    await fh?.close();
  }
  const token = text.trim();
  if (!token) throw new ObnamError('USAGE', `token file ${file} is empty`);
  if (/\s/.test(token)) throw new ObnamError('USAGE', `token file ${file} holds more than one word: it should hold the token alone`);
  return token;
}

/** The token, or undefined if no source gives one. */
export async function getToken(src: TokenSources): Promise<string | undefined> {
  if (src.token) return src.token;
  if (src.tokenFile) return readTokenFile(src.tokenFile);
  if (process.env.OBNAM_TOKEN) return process.env.OBNAM_TOKEN;
  if (process.env.OBNAM_TOKEN_FILE) return readTokenFile(process.env.OBNAM_TOKEN_FILE);
  if (src.configToken) return src.configToken;
  if (src.configTokenFile) return readTokenFile(src.configTokenFile);
  return undefined;
}
