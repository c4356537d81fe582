/** What a directory takes on disk: the apparent sizes of every file below it (repository size proofs). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function diskBytes(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const st = fs.lstatSync(path.join(dir, f));
    if (st.isFile()) n += st.size;
  }
  return n;
}
