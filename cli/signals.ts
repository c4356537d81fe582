/**
 * SIGINT and SIGTERM cancel the running command through an AbortSignal, so
 * it stops cleanly (no snapshot is written for an interrupted backup); a
 * second signal exits at once.
 */
const controller = new AbortController();
let installed = false;

export function cancelSignal(): AbortSignal {
  if (!installed) {
    installed = true;
    const onSignal = (sig: NodeJS.Signals) => {
      if (controller.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
      process.stderr.write(`\nobnam: ${sig}: stopping\n`);
      controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  return controller.signal;
}
