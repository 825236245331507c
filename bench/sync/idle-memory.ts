/**
 * Server memory per idle client: a child process (`socket-clients.ts`) opens 1,000 raw WebSockets,
 * each sending a `hello` with one small shape (the 10-row `counters` table) and then idling; this
 * process, the server's, is measured after a full garbage collection before they connect and once
 * all are live (each time after a collection and a pause, see `settledMemory`). Heap and RSS
 * growth divided by the number of connections. RSS moves in large steps (freed memory is reused
 * before the process grows, and handed back to the OS late), so run this early, before big syncs.
 */
import { until } from '../support/bounded-wait.js';
import { formatBytes, settledMemory } from '../support/memory-sampler.js';
import { counters } from './bench-schema.js';
import type { BenchServer } from './bench-server.js';
import { formatCount, type Outcome } from './outcome.js';
import { SocketProcess } from './socket-process.js';

/**
 * Connects `count` idle sockets from a child process and returns the summary line: the server's
 * heap and RSS growth per connection.
 *
 * @example
 *   outcomes.push(await measureIdleMemory(bench, 1000, console.log));
 */
export async function measureIdleMemory(
  bench: BenchServer,
  count: number,
  progress: (line: string) => void,
): Promise<Outcome> {
  // Clients of earlier measurements leave the count once their connection's work is over.
  await until(() => bench.server.connections === 0, 10_000, 'the earlier connections to close');
  const before = await settledMemory();
  const sockets = await SocketProcess.start(bench.url, count, counters.$name);
  try {
    await until(
      () => bench.server.connections >= count,
      10_000,
      `the server to count ${formatCount(count)} connections`,
    );
    const after = await settledMemory();
    const heap = (after.heapUsed - before.heapUsed) / count;
    const rssGrowth = after.rss - before.rss;
    // A fall means memory freed by earlier work went back to the OS meanwhile: no reading then.
    const rss = rssGrowth < 0 ? `n/a (RSS fell ${formatBytes(-rssGrowth)})` : formatBytes(rssGrowth / count);
    progress(
      `${formatCount(count)} idle connections: server heap +${formatBytes(after.heapUsed - before.heapUsed)}, ` +
        `RSS ${rssGrowth < 0 ? '' : '+'}${formatBytes(rssGrowth)}; per connection heap ${formatBytes(heap)}, RSS ${rss}`,
    );
    return {
      measurement: `server memory per idle client (${formatCount(count)})`,
      result: `heap ${formatBytes(heap)}, RSS ${rss}`,
      baseline: `server before: heap ${formatBytes(before.heapUsed)}, RSS ${formatBytes(before.rss)}`,
      ratio: '—',
      target: '—',
      met: undefined,
    };
  } finally {
    await sockets.close();
    await until(() => bench.server.connections === 0, 10_000, 'the idle connections to close').catch(
      () => {},
    );
  }
}
