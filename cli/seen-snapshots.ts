/**
 * The client's record of the snapshots it has seen in each repository, to
 * notice a store that hides or rolls back snapshots (format-spec 16.4): a
 * snapshot this client saw that has vanished, and that it did not forget
 * itself, is named in a warning (once).
 *
 * One file per repository id: $XDG_CACHE_HOME/obnam/<repository id>/seen-snapshots
 * (~/.cache/obnam/...), JSON { version: 1, seen: [ids], forgotten: [ids] }.
 * `forgotten` holds ids this client deleted itself (recordForgotten, called by
 * `obnam forget`), the most recent MAX_FORGOTTEN of them, so that a listing
 * made by a concurrent command before the deletion cannot bring them back.
 * Every update re-reads the file and merges, then replaces it atomically
 * (temporary file, fsync, rename). A damaged or unwritable file is a warning,
 * never a failure: it protects nothing that the repository needs.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeError, errnoCode, ObnamError } from '../lib/errors.js';

const VERSION = 1;
const MAX_FORGOTTEN = 10_000;
/** Vanished snapshots named one per line; more are counted. */
const MAX_NAMED = 10;
const ID = /^[0-9a-f]{64}$/;

export type Warn = (message: string) => void;

/** Warnings as every obnam command prints them: one line on stderr. */
export const warnOnStderr: Warn = (message) => void process.stderr.write(`obnam: warning: ${message}\n`);

interface SeenRecord {
  seen: Set<string>;
  /** In the order they were forgotten, oldest first. */
  forgotten: string[];
}

/** The cache directory of obnam: $XDG_CACHE_HOME/obnam, else ~/.cache/obnam. */
export function obnamCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'obnam');
}

/** The record file of one repository. */
export function seenSnapshotsFile(repositoryId: string): string {
  if (!ID.test(repositoryId)) throw new ObnamError('INTERNAL', `not a repository id: ${repositoryId}`);
  return path.join(obnamCacheDir(), repositoryId, 'seen-snapshots');
}

/**
 * Compares the snapshot ids the store lists now with the record: warns about
 * each recorded snapshot that has vanished without being forgotten here,
 * then records the listing (vanished ones are dropped: each is named once).
 */
export async function checkSeenSnapshots(repositoryId: string, listed: Iterable<string>, warn: Warn = warnOnStderr): Promise<void> {
  const now = new Set(listed);
  const file = seenSnapshotsFile(repositoryId);
  const record = await readRecord(file, warn);
  if (!record) return; // unreadable: warned; writing would fail the same way
  const forgotten = new Set(record.forgotten);
  const vanished = [...record.seen].filter((id) => !now.has(id) && !forgotten.has(id)).sort();
  for (const id of vanished.slice(0, MAX_NAMED)) {
    warn(
      `snapshot ${id} has vanished from the repository since this client last saw it, and it was not forgotten here: ` +
        'unless someone else removed it, the store is hiding it or was rolled back',
    );
  }
  if (vanished.length > MAX_NAMED) warn(`and ${vanished.length - MAX_NAMED} more snapshots have vanished (recorded in ${file})`);
  await update(file, warn, (r) => {
    for (const id of vanished) r.seen.delete(id);
    for (const id of now) r.seen.add(id);
  });
}

/** Records snapshots this client has just written (so that hiding them at once is noticed too). */
export async function recordSeen(repositoryId: string, ids: readonly string[], warn: Warn = warnOnStderr): Promise<void> {
  await update(seenSnapshotsFile(repositoryId), warn, (r) => {
    for (const id of ids) r.seen.add(id);
  });
}

/**
 * Records snapshots this client deletes itself (obnam forget), so that their
 * absence is not reported. Call it before or after deleting them.
 */
export async function recordForgotten(repositoryId: string, ids: readonly string[], warn: Warn = warnOnStderr): Promise<void> {
  await update(seenSnapshotsFile(repositoryId), warn, (r) => {
    const add = new Set(ids);
    for (const id of add) r.seen.delete(id);
    r.forgotten = [...r.forgotten.filter((id) => !add.has(id)), ...add].slice(-MAX_FORGOTTEN);
  });
}

async function update(file: string, warn: Warn, change: (r: SeenRecord) => void): Promise<void> {
  const record = (await readRecord(file, warn, true)) ?? { seen: new Set<string>(), forgotten: [] };
  change(record);
  const forgotten = new Set(record.forgotten);
  const seen = [...record.seen].filter((id) => ID.test(id) && !forgotten.has(id)).sort();
  const text = JSON.stringify({ version: VERSION, seen, forgotten: record.forgotten }) + '\n';
  try {
    await writeAtomically(file, text);
  } catch (e) {
    warn(`could not update the record of seen snapshots ${file}: ${describeError(e)}`);
  }
}

/**
 * The record, or an empty one if there is none (or, with a warning, if it is
 * damaged); undefined, with a warning, if it cannot be read.
 */
async function readRecord(file: string, warn: Warn, quiet = false): Promise<SeenRecord | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { seen: new Set(), forgotten: [] };
    if (!quiet) warn(`could not read the record of seen snapshots ${file}: ${describeError(e)}`);
    return undefined;
  }
  const parsed = parseRecord(text);
  if (typeof parsed === 'string') {
    if (!quiet) warn(`the record of seen snapshots ${file} is damaged (${parsed}); starting it again`);
    return { seen: new Set(), forgotten: [] };
  }
  return parsed;
}

function parseRecord(text: string): SeenRecord | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (!v || typeof v !== 'object') return 'not an object';
  const o = v as { version?: unknown; seen?: unknown; forgotten?: unknown };
  if (o.version !== VERSION) return `unknown version ${JSON.stringify(o.version)}`;
  const ids = (x: unknown) => Array.isArray(x) && x.every((id) => typeof id === 'string' && ID.test(id));
  if (!ids(o.seen) || !ids(o.forgotten)) return 'ids are not 64 hex digits';
  return { seen: new Set(o.seen as string[]), forgotten: o.forgotten as string[] };
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}
