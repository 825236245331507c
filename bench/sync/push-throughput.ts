/**
 * Push throughput: several clients (10 by default), each syncing only its own rows, write K
 * single-row local transactions with the query builder as fast as they can (each one a mutation,
 * captured into the outbox and pushed while the client keeps writing), then `flush()`. Timed from
 * the first local write until every client's flush resolved, that is until the server has applied
 * and acknowledged every mutation. Baseline in the same run: as many writers past the sync server
 * (one connection each on PostgreSQL) inserting the same rows, one autocommit INSERT per row, into
 * a table without capture.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { eq } from '../../src/index.js';
import { within } from '../support/bounded-wait.js';
import { type BenchClient, closeAll, startFleet, troubleOf } from './bench-client.js';
import { PLAIN_TABLES, pushed } from './bench-schema.js';
import type { BenchServer } from './bench-server.js';
import { formatCount, formatMs, formatRate, type Outcome } from './outcome.js';

async function rawInserts(bench: BenchServer, writers: number, perWriter: number): Promise<number> {
  const opened = await Promise.all(Array.from({ length: writers }, () => bench.openWriter()));
  try {
    const started = performance.now();
    await Promise.all(
      opened.map(async (writer, w) => {
        for (let k = 0; k < perWriter; k++) {
          await writer.query(
            `INSERT INTO ${PLAIN_TABLES.pushed} (id, client_no, seq, title) VALUES ($1, $2, $3, $4)`,
            [randomUUID(), w, k, `pushed row ${k} of client ${w}`],
          );
        }
      }),
    );
    return performance.now() - started;
  } finally {
    await Promise.all(opened.map((writer) => writer.close()));
  }
}

/**
 * Measures `clients` clients pushing `perClient` mutations each and returns the summary line:
 * mutations/s applied on the server, against the raw insert rate.
 *
 * @example
 *   outcomes.push(await measurePushThroughput(bench, 10, 200, console.log));
 */
export async function measurePushThroughput(
  bench: BenchServer,
  clients: number,
  perClient: number,
  progress: (line: string) => void,
): Promise<Outcome> {
  const total = clients * perClient;
  const rawMs = await rawInserts(bench, clients, perClient);
  progress(
    `raw: ${clients} writers inserted ${formatCount(total)} rows, one per transaction, in ${formatMs(rawMs)} (${formatRate(total, rawMs)})`,
  );

  const fleet: BenchClient[] = await startFleet(bench.url, clients, (i) => [
    { table: pushed, where: eq(pushed.clientNo, i) },
  ]);
  const rejected: string[] = [];
  try {
    for (const client of fleet) client.sync.on('rejected', (event) => rejected.push(event.reason));
    const started = performance.now();
    await Promise.all(
      fleet.map(async (client, i) => {
        for (let k = 0; k < perClient; k++) {
          await client.db
            .insert(pushed)
            .values({ id: randomUUID(), clientNo: i, seq: k, title: `pushed row ${k} of client ${i}` });
        }
        await within(
          client.sync.flush(),
          Math.max(60_000, total * 10),
          `client ${i} to flush ${perClient} mutations`,
        );
      }),
    );
    const ms = performance.now() - started;
    const writer = await bench.openWriter();
    let onServer: number;
    try {
      onServer = Number((await writer.query('SELECT count(*)::int AS n FROM pushed'))[0]!.n);
    } finally {
      await writer.close();
    }
    if (rejected.length > 0)
      throw new Error(`bench: the server rejected ${rejected.length} pushes (first: ${rejected[0]})`);
    if (onServer !== total)
      throw new Error(
        `bench: the server holds ${formatCount(onServer)} pushed rows, not ${formatCount(total)}`,
      );
    const trouble = troubleOf(fleet);
    progress(
      `${clients} clients pushed ${formatCount(total)} mutations in ${formatMs(ms)} (${formatRate(total, ms)})${trouble ? `; ${trouble}` : ''}`,
    );
    return {
      measurement: `push from ${clients} clients`,
      result: `${formatRate(total, ms)} (${formatCount(total)} in ${formatMs(ms)})`,
      baseline: `raw inserts ${formatRate(total, rawMs)}`,
      ratio: `${(rawMs / ms).toFixed(3)}x raw rate`,
      target: '—',
      met: undefined,
    };
  } finally {
    await closeAll(fleet);
  }
}
