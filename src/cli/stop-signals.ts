/**
 * Calls `stop` once, on SIGINT or SIGTERM, or when the process that started this one exits
 * without passing the signal on. `npm run` and `npx` start commands through `sh -c`, and a
 * SIGTERM to npm ends that shell but not the command under it, which is left running with a new
 * parent: so the parent is watched too (its id is checked twice a second, on a timer that does not
 * keep the process alive). Returns a function that stops listening.
 *
 * @example
 *   onStopSignal((why) => void server.close().then(() => process.exit(0)));
 */
export function onStopSignal(stop: (why: string) => void): () => void {
  const parent = process.ppid;
  let stopped = false;
  const once = (why: string) => {
    if (stopped) return;
    stopped = true;
    off();
    stop(why);
  };
  const onSigint = () => once('SIGINT');
  const onSigterm = () => once('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  const watch = setInterval(() => {
    if (process.ppid !== parent) once('the parent process exited');
  }, 500);
  watch.unref();
  const off = () => {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    clearInterval(watch);
  };
  return off;
}
