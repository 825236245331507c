/**
 * Push throughput: several clients (100 by default), each syncing only its own rows, write K
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

/**
 * The baseline: `total` rows of `clients` clients (numbered from `base`) inserted by `writers`
 * writers past the sync server, one autocommit INSERT per row, into a table without capture.
 */
async function rawInserts(
  bench: BenchServer,
  writers: number,
  clients: number,
  perClient: number,
  base: number,
): Promise<number> {
  const opened = await Promise.all(Array.from({ length: writers }, () => bench.openWriter()));
  try {
    const started = performance.now();
    await Promise.all(
      opened.map(async (writer, w) => {
        for (let c = w; c < clients; c += writers) {
          for (let k = 0; k < perClient; k++) {
            await writer.query(
              `INSERT INTO ${PLAIN_TABLES.pushed} (id, client_no, seq, title) VALUES ($1, $2, $3, $4)`,
              [randomUUID(), base + c, k, `pushed row ${k} of client ${base + c}`],
            );
          }
        }
      }),
    );
    return performance.now() - started;
  } finally {
    await Promise.all(opened.map((writer) => writer.close()));
  }
}

/** Pushed rows the server holds of clients `base` to `base + clients - 1`. */
async function countPushed(bench: BenchServer, base: number, clients: number): Promise<number> {
  const writer = await bench.openWriter();
  try {
    const rows = await writer.query(
      'SELECT count(*)::int AS n FROM pushed WHERE client_no >= $1 AND client_no < $2',
      [base, base + clients],
    );
    return Number(rows[0]!.n);
  } finally {
    await writer.close();
  }
}

/** Client numbers already used in this run: each measurement takes its own, so counts stay apart. */
let nextClientNo = 0;

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
  const base = nextClientNo;
  nextClientNo += clients;
  // At most 10 writers: a connection each, and PostgreSQL allows 100 in all.
  const writers = Math.min(clients, 10);
  const rawMs = await rawInserts(bench, writers, clients, perClient, base);
  progress(
    `raw: ${writers} writers inserted ${formatCount(total)} rows, one per transaction, in ${formatMs(rawMs)} (${formatRate(total, rawMs)})`,
  );

  const fleet: BenchClient[] = await startFleet(bench.url, clients, (i) => [
    { table: pushed, where: eq(pushed.clientNo, base + i) },
  ]);
  const rejected: string[] = [];
  try {
    for (const client of fleet) client.sync.on('rejected', (event) => rejected.push(event.reason));
    const started = performance.now();
    await Promise.all(
      fleet.map(async (client, i) => {
        for (let k = 0; k < perClient; k++) {
          await client.db.insert(pushed).values({
            id: randomUUID(),
            clientNo: base + i,
            seq: k,
            title: `pushed row ${k} of client ${base + i}`,
          });
        }
        await within(
          client.sync.flush(),
          Math.max(60_000, total * 10),
          `client ${i} to flush ${perClient} mutations`,
        );
      }),
    );
    const ms = performance.now() - started;
    const onServer = await countPushed(bench, base, clients);
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
    const rate = (total * 1000) / ms;
    return {
      measurement: `push from ${clients} clients`,
      result: `${formatRate(total, ms)} (${formatCount(total)} in ${formatMs(ms)})`,
      baseline: `raw inserts ${formatRate(total, rawMs)}`,
      ratio: `${(rawMs / ms).toFixed(3)}x raw rate`,
      target: '>= 5,000/s',
      met: rate >= 5_000,
    };
  } finally {
    await closeAll(fleet);
  }
}

/**
 * One client back online: `mutations` single-row local transactions made while it was stopped
 * (after a first start, so it holds its cursor), then timed from `start()` until `flush()`
 * resolves, that is until the server has applied and acknowledged every one. Baseline in the same
 * run: the same rows inserted past the sync server by one writer, one autocommit INSERT per row,
 * into a table without capture.
 *
 * @example
 *   outcomes.push(await measureOfflineOutbox(bench, 10_000, console.log));
 */
export async function measureOfflineOutbox(
  bench: BenchServer,
  mutations: number,
  progress: (line: string) => void,
): Promise<Outcome> {
  const base = nextClientNo;
  nextClientNo += 1;
  const rawMs = await rawInserts(bench, 1, 1, mutations, base);
  progress(
    `raw: 1 writer inserted ${formatCount(mutations)} rows, one per transaction, in ${formatMs(rawMs)} (${formatRate(mutations, rawMs)})`,
  );
  const [client] = await startFleet(bench.url, 1, () => [
    { table: pushed, where: eq(pushed.clientNo, base) },
  ]);
  const rejected: string[] = [];
  try {
    client!.sync.on('rejected', (event) => rejected.push(event.reason));
    await client!.sync.stop();
    for (let k = 0; k < mutations; k++) {
      await client!.db
        .insert(pushed)
        .values({ id: randomUUID(), clientNo: base, seq: k, title: `pushed row ${k} of client ${base}` });
    }
    // The last commits' stamping pass (a macrotask after them) is not part of the time.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await client!.start();
    await within(
      client!.sync.flush(),
      Math.max(120_000, mutations * 20),
      `the client to flush ${mutations} mutations`,
    );
    const ms = performance.now() - started;
    const onServer = await countPushed(bench, base, 1);
    if (rejected.length > 0)
      throw new Error(`bench: the server rejected ${rejected.length} pushes (first: ${rejected[0]})`);
    if (onServer !== mutations)
      throw new Error(
        `bench: the server holds ${formatCount(onServer)} pushed rows, not ${formatCount(mutations)}`,
      );
    // stop() and start() count as a dropped connection: only errors are trouble here.
    const errors = client!.errors;
    const trouble = errors.length > 0 ? `${errors.length} client errors (first: ${errors[0]!.message})` : '';
    progress(
      `one client back online pushed ${formatCount(mutations)} offline transactions in ${formatMs(ms)} (${formatRate(mutations, ms)})${trouble ? `; ${trouble}` : ''}`,
    );
    return {
      measurement: `offline outbox, ${formatCount(mutations)} transactions`,
      result: `${formatMs(ms)} (${formatRate(mutations, ms)})`,
      baseline: `raw inserts ${formatMs(rawMs)}`,
      ratio: `${(ms / rawMs).toFixed(3)}x raw time`,
      target: `<= ${formatMs((mutations / 5_000) * 1000)} (>= 5,000/s)`,
      met: (mutations * 1000) / ms >= 5_000,
    };
  } finally {
    await closeAll([client!]);
  }
}
