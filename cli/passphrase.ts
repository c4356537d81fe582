/**
 * Where the passphrase comes from, in order: --passphrase-file,
 * OBNAM_PASSPHRASE, OBNAM_PASSPHRASE_FILE, the config file's
 * passphrase_file, and finally a prompt on the terminal without echo.
 *
 * A passphrase file is checked as ssh checks a private key: readable by group
 * or others draws a warning; writable by them (someone could substitute a
 * passphrase they know before an init or key add) is refused. Pipes, such
 * as a shell's <(...), are not files and are not checked.
 */
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { ObnamError } from '../lib/errors.js';

export interface PassphraseSources {
  passphraseFile?: string;
  configPassphraseFile?: string;
}

async function readPassphraseFile(file: string): Promise<string> {
  let text: string;
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    checkSecretFile('passphrase file', file, await fh.stat());
    text = await fh.readFile('utf8');
  } catch (e) {
    if (e instanceof ObnamError) throw e;
    throw new ObnamError('USAGE', `cannot read passphrase file ${file}: ${(e as Error).message}`);
  } finally {
    await fh?.close();
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  if (!line) throw new ObnamError('USAGE', `passphrase file ${file} is empty`);
  return line;
}

/** The check above, for any file holding a secret (`what`: "passphrase file", "token file"). */
export function checkSecretFile(what: string, file: string, st: Stats): void {
  if (!st.isFile()) return;
  const mode = `0${(st.mode & 0o777).toString(8).padStart(3, '0')}`;
  if (st.mode & 0o022) {
    throw new ObnamError('PERMISSION', `${what} ${file} can be changed by others (mode ${mode}): not using it; chmod 600 ${file}`);
  }
  if (st.mode & 0o044) process.stderr.write(`obnam: warning: ${what} ${file} can be read by others (mode ${mode}); chmod 600 ${file}\n`);
}

export async function getPassphrase(src: PassphraseSources, opts: { confirm?: boolean } = {}): Promise<string> {
  if (src.passphraseFile) return readPassphraseFile(src.passphraseFile);
  const env = process.env.OBNAM_PASSPHRASE;
  if (env !== undefined && env !== '') return env;
  if (process.env.OBNAM_PASSPHRASE_FILE) return readPassphraseFile(process.env.OBNAM_PASSPHRASE_FILE);
  if (src.configPassphraseFile) return readPassphraseFile(src.configPassphraseFile);
  if (!process.stdin.isTTY) {
    throw new ObnamError(
      'USAGE',
      'no passphrase: set OBNAM_PASSPHRASE, use --passphrase-file, set passphrase_file in the config, or run in a terminal',
    );
  }
  const first = await promptHidden('Passphrase: ');
  if (!first) throw new ObnamError('USAGE', 'empty passphrase');
  if (opts.confirm) {
    const again = await promptHidden('Passphrase again: ');
    if (again !== first) throw new ObnamError('USAGE', 'the passphrases do not match');
  }
  return first;
}

/** The passphrase for a new key slot: --new-passphrase-file, OBNAM_NEW_PASSPHRASE, or a prompt (twice). */
export async function getNewPassphrase(file?: string): Promise<string> {
  if (file) return readPassphraseFile(file);
  const env = process.env.OBNAM_NEW_PASSPHRASE;
  if (env !== undefined && env !== '') return env;
  if (!process.stdin.isTTY) {
    throw new ObnamError('USAGE', 'no new passphrase: use --new-passphrase-file, set OBNAM_NEW_PASSPHRASE, or run in a terminal');
  }
  const first = await promptHidden('New passphrase: ');
  if (!first) throw new ObnamError('USAGE', 'empty passphrase');
  if ((await promptHidden('New passphrase again: ')) !== first) throw new ObnamError('USAGE', 'the passphrases do not match');
  return first;
}

/** Reads one line from the terminal without echoing it. */
export function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new ObnamError('ABORTED', 'interrupted'));
        if (ch === '\u0004') return done();
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
