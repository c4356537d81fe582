/**
 * bin/obnam for the test suite: the same command line, with one hook, the
 * cheap scrypt cost of new key slots (helpers/kdf.ts). helpers/cli.ts runs
 * this unless a test asks for bin/obnam itself.
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
const { runCli } = await import('../../cli/main.js');
const { TEST_KDF } = await import('./kdf.js');
runCli({ newKeyKdf: TEST_KDF });
