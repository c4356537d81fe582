/**
 * Which process owns a file: a tag made of the process id and its start time
 * (from /proc, so a recycled pid does not pass for the old process), and a
 * test of whether that process still runs. Used to tell a pack that another
 * live writer is still filling from one a crashed writer left behind.
 */
import * as fs from 'node:fs';

function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the ")" that ends the command name.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

let mine: string | undefined;

/** This process's tag: "PID-STARTTIME". */
export function ownerTag(): string {
  mine ??= `${process.pid}-${startTime(process.pid) ?? '0'}`;
  return mine;
}

/** True if the process that made `tag` still runs (unknown formats count as alive). */
export function ownerAlive(tag: string): boolean {
  const m = /^(\d+)-(\d+)$/.exec(tag);
  if (!m) return true;
  return startTime(Number(m[1])) === m[2];
}
