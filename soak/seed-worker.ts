/**
 * A process that runs seeds for `npm run soak -- --parallel N`: the CLI forks N of them and asks
 * each for one seed at a time (`run`), hearing its progress lines as events. On SIGTERM it stops
 * its processes and removes its database before exiting.
 */
import { emit, serveParent } from './child.js';
import { installInterruptCleanup } from './interrupt.js';
import type { SoakOptions } from './options.js';
import { runAndShrink } from './run-and-shrink.js';

installInterruptCleanup();
serveParent({
  run: ({ options, seed }: { options: SoakOptions; seed: number }) =>
    runAndShrink(options, seed, (line) => emit('progress', line)),
});
emit('ready', { pid: process.pid });
