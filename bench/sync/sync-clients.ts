/**
 * A child process of `npm run bench:sync` holding sync clients (in-memory SQLite, `syncClient`,
 * live queries on `counters`), so that their CPU is not the sync server's, as when clients run on
 * devices of their own: argv gives the server URL. Messages (IPC):
 *   `{ grow: n }`     start n more clients on `counters`; replies `{ ready: total }` once their
 *                     live queries have emitted a first result
 *   `{ await: v }`    replies `{ seen: v, at: [...] }` once every client's live query showed the
 *                     value v (absolute times, see live-watchers.ts)
 *   `{ close: true }` closes the clients and exits
 * A failure is reported as `{ failed }`.
 */
import { type BenchClient, closeAll, startFleet, troubleOf } from './bench-client.js';
import { counters } from './bench-schema.js';
import { SeenRecorder } from './live-watchers.js';

const [url] = process.argv.slice(2);
const clients: BenchClient[] = [];
const recorder = new SeenRecorder('own process');

function report(message: object): void {
  process.send?.(message);
}

function fail(error: unknown): void {
  const trouble = troubleOf(clients);
  report({ failed: `${(error as Error).message}${trouble ? ` (${trouble})` : ''}` });
}

async function grow(n: number): Promise<void> {
  const fleet = await startFleet(url!, n, () => [{ table: counters }]);
  clients.push(...fleet);
  await recorder.watch(fleet);
  report({ ready: clients.length });
}

process.on('message', (message: { grow?: number; await?: number; close?: boolean }) => {
  if (message.grow !== undefined) grow(message.grow).catch(fail);
  if (message.await !== undefined) {
    const value = message.await;
    recorder.seen(value).then((at) => report({ seen: value, at }), fail);
  }
  if (message.close) {
    recorder.stop();
    void closeAll(clients).finally(() => process.exit(0));
  }
});
// The parent gone means nobody will say close.
process.on('disconnect', () => process.exit(0));
if (!url) {
  report({ failed: 'sync-clients.ts: pass the server URL' });
  process.exit(1);
}
