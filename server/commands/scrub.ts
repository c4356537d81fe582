/**
 * obnam-server scrub [--client NAME]: verifies every stored object against
 * its SHA-256 digest without client keys; prints each damaged object and
 * exits 1 if there is any.
 */
import { checkServerDir, resolveServerDir } from '../layout.js';
import { scrub } from '../scrub.js';

export interface ScrubArgs {
  dir?: string;
  config?: string;
  client?: string;
  json?: boolean;
}

export async function scrubCommand(args: ScrubArgs): Promise<number> {
  const d = resolveServerDir(args);
  await checkServerDir(d);
  const report = await scrub(d, {
    client: args.client,
    onProblem: (p) => {
      if (!args.json) process.stdout.write(`damaged: client ${p.client}${p.kind ? ` ${p.kind} ${p.id}` : ''} in ${p.file}: ${p.message}\n`);
    },
  });
  const ok = report.problems.length === 0;
  if (args.json) {
    process.stdout.write(JSON.stringify({ ok, ...report }) + '\n');
  } else {
    process.stdout.write(
      `scrubbed ${report.objects} objects of ${report.namespaces} clients: ` +
        `${ok ? 'no damage found' : `${report.problems.length} damaged`}\n`,
    );
  }
  return ok ? 0 : 1;
}
