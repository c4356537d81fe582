/**
 * Worker-thread entry point of the engines' pool: registers the worker
 * handlers each engine exports and serves them. The only module that knows
 * every engine's tasks at once.
 */
import { backupHandlers } from '../backup/worker-tasks.js';
import { fsckHandlers } from '../fsck/worker-tasks.js';
import { fsviewHandlers } from '../fsview/worker-tasks.js';
import { restoreHandlers } from '../restore/worker-tasks.js';
import { serveTasks } from '../workers/serve.js';
import type { EngineTasks } from './start.js';

serveTasks<EngineTasks>({ ...backupHandlers(), ...restoreHandlers(), ...fsckHandlers(), ...fsviewHandlers() });
