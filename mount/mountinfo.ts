/**
 * Which file systems are mounted where, and noticing when one goes away,
 * from /proc/self/mountinfo (read asynchronously: the mounting process must
 * never block its event loop, which answers the kernel's requests).
 */
import * as fs from 'node:fs/promises';

/** The file system type of obnam mounts in /proc/self/mountinfo. */
export const OBNAM_FSTYPE = 'fuse.obnam';

export interface MountEntry {
  id: number;
  mountpoint: string;
  fstype: string;
  source: string;
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (f.length < 10 || dash < 0) continue;
    out.push({ id: Number(f[0]), mountpoint: unescape(f[4]!), fstype: f[dash + 1]!, source: unescape(f[dash + 2]!) });
  }
  return out;
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await fs.readFile('/proc/self/mountinfo', 'utf8'));
}

/** The topmost mount at `mountpoint` (an absolute, resolved path), if any. */
export async function mountAt(mountpoint: string): Promise<MountEntry | undefined> {
  const all = await readMounts();
  for (let i = all.length - 1; i >= 0; i--) if (all[i]!.mountpoint === mountpoint) return all[i];
  return undefined;
}

/**
 * Calls `onGone` once the mount with id `id` at `mountpoint` is no longer
 * there (unmounted by anyone), checking every `intervalMs`; returns a
 * function that stops watching. The timer never keeps the process alive.
 */
export function watchUnmount(mountpoint: string, id: number, onGone: () => void, intervalMs = 500): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout;
  const check = async () => {
    let gone = false;
    try {
      gone = (await mountAt(mountpoint))?.id !== id;
    } catch {
      // /proc unreadable for a moment: look again next time
    }
    if (stopped) return;
    if (gone) onGone();
    else schedule();
  };
  const schedule = () => {
    timer = setTimeout(() => void check(), intervalMs);
    timer.unref();
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
