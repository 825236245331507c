/**
 * Cleanup when the harness is interrupted (Ctrl-C, SIGTERM): every registered cleanup runs (the
 * processes of a run are stopped, its database dropped), bounded in time, then every child
 * process still alive is killed and the process exits.
 */
import { killAllChildren } from './child.js';

const cleanups = new Set<() => Promise<void>>();
let installed = false;

/**
 * Registers `cleanup` to run on an interrupt; returns the function that unregisters it.
 *
 * @example
 *   const forget = onInterrupt(() => deployment.dispose());
 *   try { ... } finally { forget(); }
 */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/**
 * Installs the SIGINT and SIGTERM handlers (once per process).
 *
 * @example
 *   installInterruptCleanup();
 */
export function installInterruptCleanup(): void {
  if (installed) return;
  installed = true;
  const stop = async (signal: NodeJS.Signals) => {
    const timer = setTimeout(() => {
      killAllChildren();
      process.exit(130);
    }, 8000);
    timer.unref();
    await Promise.allSettled([...cleanups].map((cleanup) => cleanup()));
    killAllChildren();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
