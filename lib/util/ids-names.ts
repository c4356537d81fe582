/**
 * User and group names for numeric ids, read once from /etc/passwd and
 * /etc/group (Node has no getpwuid). Names are recorded in snapshots for
 * people to read; restores use the numeric ids, as restic and tar do.
 */
import * as fs from 'node:fs/promises';

export class IdNames {
  private constructor(
    private readonly users: Map<number, string>,
    private readonly groups: Map<number, string>,
  ) {}

  static async load(): Promise<IdNames> {
    return new IdNames(await readIdFile('/etc/passwd'), await readIdFile('/etc/group'));
  }

  user(uid: number): string | undefined {
    return this.users.get(uid);
  }

  group(gid: number): string | undefined {
    return this.groups.get(gid);
  }
}

async function readIdFile(path: string): Promise<Map<number, string>> {
  const m = new Map<number, string>();
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch {
    return m;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3) continue;
    const id = Number(f[2]);
    if (Number.isInteger(id) && !m.has(id)) m.set(id, f[0]!);
  }
  return m;
}
