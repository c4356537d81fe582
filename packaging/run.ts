/** Runs external programs for the packaging scripts: stdout back, a clear error on failure. */
import { spawnSync, SpawnSyncOptions } from 'node:child_process';

export class CommandFailed extends Error {}

/** Runs `cmd args...` and returns its stdout; throws CommandFailed with its stderr if it fails. */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions & { input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts });
  if (r.error) throw new CommandFailed(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const why = `${String(r.stderr ?? '')}${String(r.stdout ?? '')}`.trim().split('\n').slice(-15).join('\n');
    throw new CommandFailed(`${cmd} ${args.join(' ')}: exit ${r.status ?? r.signal}\n${why}`);
  }
  return String(r.stdout ?? '');
}
