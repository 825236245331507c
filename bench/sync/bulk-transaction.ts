/**
 * One big transaction: 100,000 rows inserted in one transaction past the sync server (client-sent
 * rows, 1,000 per statement, through the raw driver), timed until a connected client holds every
 * row (`caughtUp()`, then the client's rows counted). Baseline in the same run: the same insert
 * into a table without capture, through the same connection.
 */
import { performance } from 'node:perf_hooks';
import { median } from '../support/measure.js';
import { openBenchClient, troubleOf } from './bench-client.js';
import { bulk, PLAIN_TABLES } from './bench-schema.js';
import type { BenchServer, SqlWriter } from './bench-server.js';
import { formatCount, formatMs, type Outcome } from './outcome.js';

const ROWS_PER_STATEMENT = 1000;
const RAW_RUNS = 3;

async function insertAll(writer: SqlWriter, table: string, rows: number): Promise<void> {
  await writer.transaction(async (query) => {
    for (let from = 0; from < rows; from += ROWS_PER_STATEMENT) {
      const n = Math.min(ROWS_PER_STATEMENT, rows - from);
      const params: unknown[] = [];
      const values: string[] = [];
      for (let i = 0; i < n; i++) {
        const id = from + i + 1;
        params.push(id, id % 1000, `bulk row ${id}`);
        values.push(`($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`);
      }
      await query(`INSERT INTO ${table} (id, value, label) VALUES ${values.join(', ')}`, params);
    }
  });
}

/**
 * Commits `rows` rows in one transaction and times until one client holds them all. Returns the
 * summary line; target under 2 s from the commit.
 *
 * @example
 *   outcomes.push(await measureBulkTransaction(bench, 100_000, console.log));
 */
export async function measureBulkTransaction(
  bench: BenchServer,
  rows: number,
  progress: (line: string) => void,
): Promise<Outcome> {
  const writer = await bench.openWriter();
  const client = await openBenchClient(bench.url, [{ table: bulk }]);
  try {
    const rawTimes: number[] = [];
    for (let run = 0; run < RAW_RUNS; run++) {
      await writer.query(`TRUNCATE ${PLAIN_TABLES.bulk}`);
      const started = performance.now();
      await insertAll(writer, PLAIN_TABLES.bulk, rows);
      rawTimes.push(performance.now() - started);
    }
    const rawMs = median(rawTimes);
    progress(
      `raw insert of ${formatCount(rows)} rows into an uncaptured table: ${formatMs(rawMs)} (median of ${RAW_RUNS})`,
    );

    await client.start();
    await client.caughtUp(30_000, 'the bulk client to start');
    const started = performance.now();
    await insertAll(writer, 'bulk', rows);
    const committed = performance.now();
    await client.caughtUp(Math.max(60_000, rows), `the client to receive ${formatCount(rows)} rows`);
    const done = performance.now();
    const held = client.count('bulk');
    if (held !== rows)
      throw new Error(`bench: the client holds ${formatCount(held)} bulk rows, not ${formatCount(rows)}`);
    const fromCommit = done - committed;
    const insertMs = committed - started;
    const trouble = troubleOf([client]);
    progress(
      `insert with capture ${formatMs(insertMs)}; commit → client holds all ${formatMs(fromCommit)}; ` +
        `from the start of the insert ${formatMs(done - started)}${trouble ? `; ${trouble}` : ''}`,
    );
    return {
      measurement: `${formatCount(rows)}-row transaction → client`,
      result: `${formatMs(fromCommit)} after commit (${formatMs(done - started)} in all)`,
      baseline: `raw insert ${formatMs(rawMs)} (${formatMs(insertMs)} with capture)`,
      ratio: `${((done - started) / rawMs).toFixed(1)}x raw time`,
      target: '< 2 s after commit',
      met: fromCommit < 2000 && !trouble,
    };
  } finally {
    await client.close();
    await writer.close();
  }
}
