/**
 * The data of the sharing tests' family: alice's photos (every kind of entry
 * and metadata, and a large file), her private diary (a marker string that
 * must never be readable by anyone else), and a large file both alice and
 * bob keep (to show they deduplicate against each other).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeRichTree } from './tree.js';
import { prngBytes } from './prng.js';

/** The file alice and bob both back up: incompressible, several chunks. */
export const COMMON_SIZE = 3 * 1024 * 1024 + 4321;

export interface AliceData {
  /** A directory with every kind of entry (docs, big file, links, fifo, xattrs, odd names and times). */
  photos: string;
  /** A directory holding diary.txt, whose content holds `diaryMarker`. */
  private: string;
  diaryMarker: string;
  /** A file name in the private directory that must never be readable by others. */
  privateName: string;
}

/** alice's directories under `home`/data. */
export function makeAliceData(home: string): AliceData {
  const photos = path.join(home, 'data', 'photos');
  const priv = path.join(home, 'data', 'private');
  fs.mkdirSync(photos, { recursive: true });
  fs.mkdirSync(priv, { recursive: true });
  makeRichTree(photos, 1024 * 1024 + 17);
  fs.rmSync(path.join(photos, 'socket')); // cp -a out of a mount does not recreate sockets
  fs.writeFileSync(path.join(photos, 'common.bin'), prngBytes('family common file', COMMON_SIZE));
  const diaryMarker = `alice-diary-${randomBytes(12).toString('hex')}`;
  const privateName = `alice-private-name-${randomBytes(8).toString('hex')}`;
  writeDiary(priv, diaryMarker, 1);
  fs.writeFileSync(path.join(priv, privateName), `${diaryMarker} in a file with a secret name\n`);
  fs.writeFileSync(path.join(priv, 'letters.bin'), Buffer.concat([Buffer.from(diaryMarker), randomBytes(200 * 1024)]));
  return { photos, private: priv, diaryMarker, privateName };
}

/** Rewrites alice's diary (day N): a new snapshot of the private directory differs from the last. */
export function writeDiary(dir: string, marker: string, day: number): void {
  fs.writeFileSync(path.join(dir, 'diary.txt'), `day ${day}: ${marker}\n`.repeat(50 + day));
}

/** bob's directory under `home`/data: the family's common file (the same bytes as alice's) and his notes. */
export function makeBobData(home: string): string {
  const dir = path.join(home, 'data', 'stuff');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'common-copy.bin'), prngBytes('family common file', COMMON_SIZE));
  fs.writeFileSync(path.join(dir, 'bob-notes.txt'), `bob's notes ${randomBytes(8).toString('hex')}\n`);
  return dir;
}
