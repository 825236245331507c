/**
 * Initial sync: a fresh client syncs a whole table of N rows (100,000 by default, and 1,000,000
 * unless skipped), timed from `sync.start()` until `caughtUp()` resolves (the snapshot applied and
 * the cursor stored). Baseline: a raw better-sqlite3 bulk insert of the same rows into the same
 * table definition (one transaction, one prepared statement). Memory: the process's peak heap and
 * RSS above a post-gc baseline while the sync runs (server and client share the process), from a
 * memory run of each size that also forces a collection every second, whose highest post-collection
 * heap is the live heap: flat means the 1,000,000-row sync holds at most 16 MB more than the
 * 100,000-row one (the 900,000 extra rows themselves would be over 100 MB). The 1,000,000-row time comes from its memory run (the forced collections cost it a little).
 */
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { median } from '../support/measure.js';
import { formatBytes, gcExposed, type MemoryPeak, MemorySampler } from '../support/memory-sampler.js';
import { type BenchClient, openBenchClient, troubleOf } from './bench-client.js';
import { items, itemsBig } from './bench-schema.js';
import type { BenchServer } from './bench-server.js';
import { describeStages, measureSnapshotStages } from './initial-sync-stages.js';
import { formatCount, formatMs, formatRate, type Outcome } from './outcome.js';

/**
 * How big and how often: `rows` synced `runs` times (the median is reported), then `bigRows`
 * once (0 skips it).
 *
 * @example
 *   await measureInitialSync(bench, { rows: 100_000, bigRows: 1_000_000, runs: 3, progress: console.log });
 */
export interface InitialSyncOptions {
  readonly rows: number;
  readonly bigRows: number;
  readonly runs: number;
  readonly progress: (line: string) => void;
}

interface SyncRun {
  readonly ms: number;
  readonly memory: MemoryPeak;
  /** The client database's own size (its pages), which RSS growth necessarily includes. */
  readonly dbBytes: number;
}

const RAW_RUNS = 5;

/** Forced collections while a memory run syncs, to see its live heap apart from garbage. */
const GC_EVERY_MS = 500;
/** How much more live heap the big sync may hold and still count as flat. */
const FLAT_SLACK_BYTES = 16 * 1024 * 1024;

async function syncOnce(
  bench: BenchServer,
  table: typeof items | typeof itemsBig,
  expected: number,
  forceGc = false,
): Promise<{ run: SyncRun; client: BenchClient }> {
  const client = await openBenchClient(bench.url, [{ table }]);
  try {
    // Generous: far slower than this is a failure to report, not a result.
    const timeoutMs = Math.max(60_000, expected / 5);
    const sampler = MemorySampler.start(forceGc ? { gcEveryMs: GC_EVERY_MS } : {});
    const started = performance.now();
    await client.start(timeoutMs);
    await client.caughtUp(timeoutMs, `the initial sync of ${formatCount(expected)} ${table.$name} rows`);
    const ms = performance.now() - started;
    const memory = sampler.stop();
    const held = client.count(table.$name);
    if (held !== expected) {
      throw new Error(
        `bench: the client holds ${formatCount(held)} ${table.$name} rows, not ${formatCount(expected)}`,
      );
    }
    const trouble = troubleOf([client]);
    if (trouble) throw new Error(`bench: the initial sync converged only after trouble: ${trouble}`);
    const pages = client.handle.pragma('page_count', { simple: true }) as number;
    const pageSize = client.handle.pragma('page_size', { simple: true }) as number;
    return { run: { ms, memory, dbBytes: pages * pageSize }, client };
  } catch (error) {
    await client.close();
    throw error;
  }
}

/**
 * The raw baseline: the rows the client now holds, inserted with one prepared statement in one
 * transaction into a fresh in-memory database with the same table definition; median of runs.
 */
function rawInsertMs(client: BenchClient, table: string): number {
  const ddl = client.handle
    .prepare(
      "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('table', 'index') AND sql IS NOT NULL",
    )
    .pluck()
    .all(table) as string[];
  const rows = client.handle.prepare(`SELECT * FROM "${table}"`).raw(true).all() as unknown[][];
  const times: number[] = [];
  for (let run = 0; run < RAW_RUNS; run++) {
    const raw = new BetterSqlite3(':memory:');
    try {
      for (const statement of ddl) raw.exec(statement);
      const insert = raw.prepare(`INSERT INTO "${table}" VALUES (${rows[0]!.map(() => '?').join(', ')})`);
      const insertAll = raw.transaction((all: unknown[][]) => {
        for (const row of all) insert.run(row);
      });
      const started = performance.now();
      insertAll(rows);
      times.push(performance.now() - started);
    } finally {
      raw.close();
    }
  }
  return median(times);
}

function describe(run: SyncRun, rows: number): string {
  const { growth, retained } = run.memory;
  const live = retained === undefined ? '' : `live heap +${formatBytes(retained)}, `;
  return (
    `${formatMs(run.ms)} (${formatRate(rows, run.ms)}); ${live}peak heap +${formatBytes(growth.heapUsed)}, ` +
    `RSS +${formatBytes(growth.rss)} (client database ${formatBytes(run.dbBytes)})`
  );
}

/**
 * Runs the initial-sync measurements and returns their summary lines: the 100,000-row time against
 * the raw insert, the 1,000,000-row time, and whether memory stayed flat from one to the other.
 *
 * @example
 *   outcomes.push(...(await measureInitialSync(bench, options)));
 */
export async function measureInitialSync(
  bench: BenchServer,
  options: InitialSyncOptions,
): Promise<Outcome[]> {
  const { rows, bigRows, runs, progress } = options;
  const small: SyncRun[] = [];
  let rawMs = Number.NaN;
  for (let i = 0; i < runs; i++) {
    const { run, client } = await syncOnce(bench, items, rows);
    try {
      small.push(run);
      progress(`run ${i + 1} of ${runs}: ${formatCount(rows)} rows in ${describe(run, rows)}`);
      if (i === runs - 1) rawMs = rawInsertMs(client, items.$name);
    } finally {
      await client.close();
    }
  }
  progress(
    `raw better-sqlite3 insert of the same ${formatCount(rows)} rows: ${formatMs(rawMs)} (median of ${RAW_RUNS})`,
  );
  const ms = median(small.map((r) => r.ms));
  for (const line of describeStages(await measureSnapshotStages(bench, items), ms, rawMs)) progress(line);
  const outcomes: Outcome[] = [
    {
      measurement: `initial sync, ${formatCount(rows)} rows`,
      result: `${formatMs(ms)} (${formatRate(rows, ms)})`,
      baseline: `raw insert ${formatMs(rawMs)} (${formatRate(rows, rawMs)})`,
      ratio: `${(ms / rawMs).toFixed(1)}x raw time`,
      target: '>= 300,000 rows/s, <= 1.6x raw',
      met: (rows * 1000) / ms >= 300_000 && ms / rawMs <= 1.6,
    },
  ];
  if (bigRows <= 0) {
    progress('1,000,000-row sync SKIPPED (BENCH_SYNC_BIG_ROWS=0)');
    return outcomes;
  }
  // Memory runs: a collection forced every second shows the live heap apart from garbage.
  const memory = await syncOnce(bench, items, rows, true);
  await memory.client.close();
  progress(`memory run: ${formatCount(rows)} rows in ${describe(memory.run, rows)}`);
  const { run: big, client } = await syncOnce(bench, itemsBig, bigRows, true);
  let bigRawMs: number;
  try {
    progress(`memory run: ${formatCount(bigRows)} rows in ${describe(big, bigRows)}`);
    bigRawMs = rawInsertMs(client, itemsBig.$name);
  } finally {
    await client.close();
  }
  progress(`raw better-sqlite3 insert of the same ${formatCount(bigRows)} rows: ${formatMs(bigRawMs)}`);
  const extra = big.memory.retained! - memory.run.memory.retained!;
  const bytes = (run: SyncRun) =>
    `live heap +${formatBytes(run.memory.retained!)}, peak heap +${formatBytes(run.memory.growth.heapUsed)}, ` +
    `RSS +${formatBytes(run.memory.growth.rss)} (db ${formatBytes(run.dbBytes)})`;
  outcomes.push(
    {
      measurement: `initial sync, ${formatCount(bigRows)} rows`,
      result: `${formatMs(big.ms)} (${formatRate(bigRows, big.ms)})`,
      baseline: `raw insert ${formatMs(bigRawMs)} (${formatRate(bigRows, bigRawMs)})`,
      ratio: `${(big.ms / bigRawMs).toFixed(1)}x raw time`,
      target: '>= 250,000 rows/s',
      met: (bigRows * 1000) / big.ms >= 250_000,
    },
    {
      measurement: `initial sync memory, ${formatCount(bigRows)} rows`,
      result: bytes(big),
      baseline: `${formatCount(rows)} rows: ${bytes(memory.run)}`,
      ratio: `live heap ${extra < 0 ? '' : '+'}${formatBytes(extra)}`,
      target: `live heap +< ${formatBytes(FLAT_SLACK_BYTES)} (flat)`,
      met: gcExposed ? extra < FLAT_SLACK_BYTES : undefined,
    },
  );
  return outcomes;
}
