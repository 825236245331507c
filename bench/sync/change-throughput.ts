/**
 * Change throughput: row changes streamed from the database to many connected clients. One writer
 * past the sync server commits N changes as fast as it can, in transactions of 100 rows: N/2
 * inserts, then an update of each of those rows; timed from the first write until every client
 * has them. Two kinds of clients, each on a table of its own:
 *
 * - raw WebSockets in a child process that parse every message and count the changes (the
 *   server's fan-out: reading the log, filtering, sending to every connection);
 * - sync clients in this process, each applying every change to its SQLite database
 *   (`caughtUp()` on each, then every client's rows checked). All of them share this one thread,
 *   so this figure is bounded by N × clients applies on one core, not by the server: it is shown
 *   for comparison (and fails only when a client had trouble); the target is the sockets' figure.
 *
 * Baseline in the same run: the same writer committing the same statements into a table without
 * capture, so the ratio says how the stream compares with the database's own write rate.
 */
import { performance } from 'node:perf_hooks';
import { closeAll, startFleet, troubleOf } from './bench-client.js';
import { fanout, feed, PLAIN_TABLES } from './bench-schema.js';
import type { BenchServer, SqlWriter } from './bench-server.js';
import { formatCount, formatMs, formatRate, type Outcome } from './outcome.js';
import { SocketProcess } from './socket-process.js';

const ROWS_PER_TRANSACTION = 100;

/** Inserts rows 1..rows, then updates each once, `ROWS_PER_TRANSACTION` rows per transaction. */
async function writeChanges(writer: SqlWriter, table: string, rows: number): Promise<void> {
  for (let from = 1; from <= rows; from += ROWS_PER_TRANSACTION) {
    const to = Math.min(rows, from + ROWS_PER_TRANSACTION - 1);
    await writer.query(
      `INSERT INTO ${table} (id, value, label) SELECT i, 0, 'feed row ' || i FROM generate_series($1::int, $2::int) AS i`,
      [from, to],
    );
  }
  for (let from = 1; from <= rows; from += ROWS_PER_TRANSACTION) {
    const to = Math.min(rows, from + ROWS_PER_TRANSACTION - 1);
    await writer.query(`UPDATE ${table} SET value = value + 1 WHERE id BETWEEN $1 AND $2`, [from, to]);
  }
}

/**
 * How many changes (rounded down to an even number) and clients of each kind.
 *
 * @example
 *   await measureChangeThroughput(bench, { changes: 20_000, clients: 100, sockets: 100, progress: console.log });
 */
export interface ChangeThroughputOptions {
  readonly changes: number;
  readonly clients: number;
  readonly sockets: number;
  readonly progress: (line: string) => void;
}

/**
 * Streams the changes to socket clients, then to sync clients, and returns a summary line for
 * each: changes/s until every client had them, against the raw write rate. Target 10,000/s.
 *
 * @example
 *   outcomes.push(...(await measureChangeThroughput(bench, options)));
 */
export async function measureChangeThroughput(
  bench: BenchServer,
  options: ChangeThroughputOptions,
): Promise<Outcome[]> {
  const { progress } = options;
  const rows = Math.max(1, Math.floor(options.changes / 2));
  const total = rows * 2;
  const writer = await bench.openWriter();
  try {
    const rawStarted = performance.now();
    await writeChanges(writer, PLAIN_TABLES.feed, rows);
    const rawMs = performance.now() - rawStarted;
    progress(
      `raw: the writer committed ${formatCount(total)} changes to an uncaptured table in ${formatMs(rawMs)} (${formatRate(total, rawMs)})`,
    );
    const line = (measurement: string, ms: number, trouble: string): Outcome => ({
      measurement,
      result: `${formatRate(total, ms)} (${formatCount(total)} in ${formatMs(ms)})`,
      baseline: `raw writes ${formatRate(total, rawMs)}`,
      ratio: `${(rawMs / ms).toFixed(3)}x raw rate`,
      target: '>= 10,000 changes/s',
      met: (total * 1000) / ms >= 10_000 && !trouble,
    });
    const timeoutMs = (clients: number) => Math.max(60_000, total * clients * 0.05);
    const outcomes: Outcome[] = [];

    const sockets = await SocketProcess.start(bench.url, options.sockets, fanout.$name);
    try {
      const started = performance.now();
      await writeChanges(writer, fanout.$name, rows);
      const writeMs = performance.now() - started;
      await sockets.expect(total, timeoutMs(options.sockets));
      const ms = performance.now() - started;
      progress(
        `${formatCount(total)} changes (writing them took ${formatMs(writeMs)}) reached all ${options.sockets} sockets ` +
          `in another process in ${formatMs(ms)}: ${formatRate(total, ms)}, ${formatRate(total * options.sockets, ms)} sent in all`,
      );
      outcomes.push(line(`change stream, ${formatCount(options.sockets)} socket clients`, ms, ''));
    } finally {
      await sockets.close();
    }

    progress(`starting ${formatCount(options.clients)} sync clients ...`);
    const fleet = await startFleet(bench.url, options.clients, () => [{ table: feed }]);
    try {
      const started = performance.now();
      await writeChanges(writer, feed.$name, rows);
      const writeMs = performance.now() - started;
      await Promise.all(
        fleet.map((c, i) =>
          c.caughtUp(timeoutMs(options.clients), `client ${i} to apply ${formatCount(total)} changes`),
        ),
      );
      const ms = performance.now() - started;
      for (const [i, client] of fleet.entries()) {
        const { n, sum } = client.handle
          .prepare('SELECT count(*) AS n, coalesce(sum(value), 0) AS sum FROM feed')
          .get() as { n: number; sum: number };
        if (n !== rows || sum !== rows) {
          throw new Error(
            `bench: client ${i} holds ${n} feed rows summing to ${sum}, not ${rows} summing to ${rows}`,
          );
        }
      }
      const trouble = troubleOf(fleet);
      progress(
        `${formatCount(total)} changes (writing them took ${formatMs(writeMs)}) applied by all ${options.clients} sync clients ` +
          `in ${formatMs(ms)}: ${formatRate(total, ms)} per client, ${formatRate(total * options.clients, ms)} applied in all` +
          (trouble ? `; ${trouble}` : ''),
      );
      // 100 devices' applies on one core: shown for comparison, the target is the server's (above).
      outcomes.push({
        ...line(`change stream, ${formatCount(options.clients)} sync clients (1 thread)`, ms, trouble),
        target: trouble ? 'no client trouble' : '(for comparison)',
        met: trouble ? false : undefined,
      });
    } finally {
      await closeAll(fleet);
    }
    return outcomes;
  } finally {
    await writer.close();
  }
}
