/**
 * `npm run bench:sync`: the sync engine's benchmarks, each against a baseline measured in the same
 * run. The server runs on the real PostgreSQL server when DATABASE_URL is set (a fresh schema,
 * dropped at the end), on an in-memory PGlite otherwise; clients are in-memory better-sqlite3
 * databases with `syncClient`, over real WebSockets on 127.0.0.1, in this process or, where a
 * measurement says so, in child processes (sync-clients.ts, socket-clients.ts). Progress lines while it runs, then one summary table with the
 * targets; the process exits 1 when a measurement failed.
 *
 * Measurements, in this order (BENCH_SYNC_ONLY=a,b picks some; default all):
 *   idle     server memory per idle client, BENCH_SYNC_IDLE_CLIENTS raw sockets (idle-memory.ts)
 *   capture  client capture overhead: synced vs local table inserts (capture-overhead.ts)
 *   initial  initial sync of BENCH_SYNC_ROWS rows and of BENCH_SYNC_BIG_ROWS rows (initial-sync.ts)
 *   bulk     one BENCH_SYNC_BULK_ROWS-row transaction until a client holds it (bulk-transaction.ts)
 *   latency  write → live query on 1 client in a process of its own and on BENCH_SYNC_CLIENTS
 *            clients spread over one process per core; for comparison, on BENCH_SYNC_CLIENTS
 *            clients in one process of their own and in this one (propagation-latency.ts)
 *   stream   BENCH_SYNC_CHANGES changes to BENCH_SYNC_CLIENTS socket clients, then as many sync
 *            clients (change-throughput.ts)
 *   push     BENCH_SYNC_PUSH_CLIENTS clients pushing BENCH_SYNC_PUSH_MUTATIONS each, and one client back
 *            online with BENCH_SYNC_OFFLINE_MUTATIONS transactions made offline (push-throughput.ts)
 *
 * Sizes (environment, defaults in brackets): BENCH_SYNC_ROWS [100000], BENCH_SYNC_RUNS [3],
 * BENCH_SYNC_BIG_ROWS [1000000; 0 skips], BENCH_SYNC_BULK_ROWS [100000], BENCH_SYNC_WRITES [300],
 * BENCH_SYNC_CLIENTS [100], BENCH_SYNC_CHANGES [20000], BENCH_SYNC_PUSH_CLIENTS [100],
 * BENCH_SYNC_PUSH_MUTATIONS [100], BENCH_SYNC_OFFLINE_MUTATIONS [10000], BENCH_SYNC_IDLE_CLIENTS [1000], BENCH_SAMPLES [7] (capture).
 * About 2 minutes on PostgreSQL and 3 on PGlite on 2 cores.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { envCount } from '../support/env-count.js';
import { gcExposed } from '../support/memory-sampler.js';
import { type BenchClient, closeAll, startFleet } from './bench-client.js';
import { counters } from './bench-schema.js';
import { type BenchServer, startBenchServer } from './bench-server.js';
import { measureBulkTransaction } from './bulk-transaction.js';
import { measureCaptureOverhead } from './capture-overhead.js';
import { measureChangeThroughput } from './change-throughput.js';
import { measureIdleMemory } from './idle-memory.js';
import { measureInitialSync } from './initial-sync.js';
import { type LiveWatchers, SeenRecorder } from './live-watchers.js';
import { formatCount, formatOutcomes, type Outcome } from './outcome.js';
import {
  ClientProcesses,
  describePropagation,
  latencyOutcomes,
  measureLatencyBaselines,
  measurePropagation,
  type PropagationTimes,
} from './propagation-latency.js';
import { measureOfflineOutbox, measurePushThroughput } from './push-throughput.js';

const MEASUREMENTS = ['idle', 'capture', 'initial', 'bulk', 'latency', 'stream', 'push'] as const;
type Name = (typeof MEASUREMENTS)[number];

function selected(): ReadonlySet<Name> {
  const text = process.env.BENCH_SYNC_ONLY?.trim();
  if (!text) return new Set(MEASUREMENTS);
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!(MEASUREMENTS as readonly string[]).includes(name)) {
      throw new Error(
        `bench: BENCH_SYNC_ONLY names "${name}", which is not a measurement; use some of ${MEASUREMENTS.join(', ')}`,
      );
    }
  }
  return new Set(names as Name[]);
}

function readSettings() {
  return {
    rows: envCount('BENCH_SYNC_ROWS', 100_000, 1),
    runs: envCount('BENCH_SYNC_RUNS', 3, 1),
    bigRows: envCount('BENCH_SYNC_BIG_ROWS', 1_000_000, 0),
    bulkRows: envCount('BENCH_SYNC_BULK_ROWS', 100_000, 1),
    writes: envCount('BENCH_SYNC_WRITES', 300, 1),
    clients: envCount('BENCH_SYNC_CLIENTS', 100, 1),
    changes: envCount('BENCH_SYNC_CHANGES', 20_000, 2),
    pushClients: envCount('BENCH_SYNC_PUSH_CLIENTS', 100, 1),
    pushMutations: envCount('BENCH_SYNC_PUSH_MUTATIONS', 100, 1),
    offlineMutations: envCount('BENCH_SYNC_OFFLINE_MUTATIONS', 10_000, 1),
    idleClients: envCount('BENCH_SYNC_IDLE_CLIENTS', 1000, 1),
    samples: envCount('BENCH_SAMPLES', 7, 1),
  };
}

let settings: ReturnType<typeof readSettings>;

function version(name: string): string {
  try {
    return JSON.parse(
      readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8'),
    ).version;
  } catch {
    return '?';
  }
}

const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');

const progressOf = (section: string) => (line: string) => console.log(`[${section}] ${line}`);

/**
 * Write → live query on one client in a process of its own; then on `clients` spread over one
 * process per core (the target: together they use every core, as clients on devices of their own
 * would not queue behind each other), and, for comparison, on `clients` in one process of their
 * own and in this process, sharing the server's thread.
 */
async function latency(bench: BenchServer): Promise<Outcome[]> {
  const progress = progressOf('latency');
  const baselines = await measureLatencyBaselines(bench, settings.writes);
  progress(
    `baselines measured (${settings.writes} NOTIFY→LISTEN deliveries, ${settings.writes} WebSocket round trips)`,
  );
  const phases: PropagationTimes[] = [];
  const measure = async (watchers: LiveWatchers, target: boolean) => {
    phases.push(await measurePropagation(bench, watchers, settings.writes, target));
    progress(describePropagation(phases.at(-1)!));
  };
  const cores = Math.min(availableParallelism(), settings.clients);
  const own = ClientProcesses.start(bench.url);
  try {
    await own.grow(1);
    await measure(own, true);
    if (settings.clients > 1) {
      progress(`starting ${formatCount(settings.clients - 1)} more clients in their process ...`);
      await own.grow(settings.clients - 1);
      await measure(own, cores === 1);
    }
  } finally {
    await own.close();
  }
  if (settings.clients > 1 && cores > 1) {
    progress(`starting ${formatCount(settings.clients)} clients in ${cores} processes (one per core) ...`);
    const spread = ClientProcesses.start(bench.url, cores);
    try {
      await spread.grow(settings.clients);
      await measure(spread, true);
    } finally {
      await spread.close();
    }
  }
  if (settings.clients > 1) {
    progress(`starting ${formatCount(settings.clients)} clients in this process ...`);
    const fleet: BenchClient[] = [];
    try {
      fleet.push(...(await startFleet(bench.url, settings.clients, () => [{ table: counters }])));
      const watchers = new SeenRecorder('server process');
      await watchers.watch(fleet);
      try {
        await measure(watchers, false);
      } finally {
        await watchers.close();
      }
    } finally {
      await closeAll(fleet);
    }
  }
  return latencyOutcomes(phases, baselines);
}

async function main(): Promise<void> {
  const started = performance.now();
  settings = readSettings();
  const run = selected();
  const databaseUrl = process.env.DATABASE_URL || undefined;
  console.log(
    `bench:sync: node ${process.version}, better-sqlite3 ${version('better-sqlite3')}, pg ${version('pg')}, ` +
      `@electric-sql/pglite ${version('@electric-sql/pglite')}, ws ${version('ws')}; ${cpus().length} cores, ` +
      `load average ${load()}${gcExposed ? '' : '; run with --expose-gc (npm run bench:sync) for memory baselines after gc'}.`,
  );
  console.log(`measurements: ${[...run].join(', ')}; settings ${JSON.stringify(settings)}`);
  const seed = run.has('initial')
    ? { items: settings.rows, itemsBig: settings.bigRows }
    : { items: 0, itemsBig: 0 };
  const bench = await startBenchServer({ databaseUrl, seed, progress: progressOf('setup') });
  // Ctrl-C still drops the bench schema and closes every socket.
  const interrupted = () => {
    console.log('\n[bench] interrupted: closing the server and dropping what the run created ...');
    void bench.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  console.log(
    `[setup] sync server on ${bench.label} at ${bench.url} (${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  const outcomes: Outcome[] = [];
  const failures: string[] = [];
  const section = async (names: readonly Name[], work: () => Promise<Outcome[]>) => {
    if (!names.some((n) => run.has(n))) return;
    const label = names.filter((n) => run.has(n)).join(' + ');
    const at = performance.now();
    console.log(`[${label}] ...`);
    try {
      outcomes.push(...(await work()));
      console.log(`[${label}] done in ${((performance.now() - at) / 1000).toFixed(1)} s`);
    } catch (error) {
      const message = (error as Error).message;
      failures.push(`${label}: ${message}`);
      outcomes.push({
        measurement: label,
        result: `FAILED: ${message}`,
        baseline: '',
        ratio: '',
        target: '',
        met: false,
      });
      console.log(`[${label}] FAILED: ${(error as Error).stack ?? message}`);
    }
  };
  try {
    // First: RSS is least disturbed before the big syncs.
    await section(['idle'], async () => [
      await measureIdleMemory(bench, settings.idleClients, progressOf('idle')),
    ]);
    await section(['capture'], () =>
      measureCaptureOverhead({ samples: settings.samples, progress: progressOf('capture') }),
    );
    await section(['initial'], () =>
      measureInitialSync(bench, { ...settings, progress: progressOf('initial') }),
    );
    await section(['bulk'], async () => [
      await measureBulkTransaction(bench, settings.bulkRows, progressOf('bulk')),
    ]);
    await section(['latency'], () => latency(bench));
    await section(['stream'], () =>
      measureChangeThroughput(bench, {
        changes: settings.changes,
        clients: settings.clients,
        sockets: settings.clients,
        progress: progressOf('stream'),
      }),
    );
    await section(['push'], async () => [
      await measurePushThroughput(bench, settings.pushClients, settings.pushMutations, progressOf('push')),
      await measureOfflineOutbox(bench, settings.offlineMutations, progressOf('push')),
    ]);
  } finally {
    process.off('SIGINT', interrupted);
    await bench.close();
  }
  const total = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`\nServer: ${bench.label}. Total time ${total} s; load average after ${load()}.\n`);
  console.log(formatOutcomes(outcomes));
  console.log(
    [
      '',
      'Ratios compare with a baseline measured in the same run: the raw better-sqlite3 insert of the same rows',
      '(initial sync), PostgreSQL NOTIFY→LISTEN on the same database from the same writer (latency), the same',
      'writes through the raw driver into a table without capture (bulk, stream, push), a local table (capture).',
      '"raw time": how many times longer than the baseline (lower is better); "raw rate": the fraction of the',
      "baseline's rate (higher is better).",
      'Latency: from sending the write until the live query re-emitted; p50/p99 over every client and write.',
      'The 1,000,000-row sync is timed in its memory run, which forces a collection every 500 ms.',
      'Writers past the sync server run in this process too: while the server is busy they are slowed with it.',
      'Memory: server and sync clients share this process (socket clients run in a child process); peak above a',
      'post-gc baseline. Sync clients in this process share one thread: with 100 of them, their applies bound',
      'the stream; the socket clients show what the server alone sustains. The latency targets are measured',
      'with the sync clients in processes of their own (as on devices of their own): 1 client in one, 100',
      'spread over one process per core, so that no client waits for the applies of clients on another core.',
      'For comparison: the 100 clients in one process (each waits for the applies of those before it) and in',
      "this process (there each client's apply also delays the server's sends to the others).",
      'Anchors from others: initial sync of 100k rows, Zero ~2.5 s, PowerSync ~3.2 s; latency p50 Zero 8.5 ms,',
      'PowerSync 13.7 ms, Electric ~6 ms; change stream Electric 4,000-6,000/s; capture cr-sqlite 2.5x.',
    ].join('\n'),
  );
  const problems = bench.problems.filter((p) => p.level === 'error' || p.event !== 'connection.too_slow');
  if (bench.problems.length > 0) {
    console.log(
      `\nThe server logged ${bench.problems.length} warnings/errors (${problems.length} besides slow clients).`,
    );
  }
  if (failures.length > 0) {
    console.log(`\n${failures.length} measurement(s) failed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
    process.exitCode = 1;
  }
}

await main().catch((error) => {
  // Our own messages say what to do; anything else gets its stack.
  const message = (error as Error).message ?? String(error);
  console.error(
    `bench:sync failed: ${message.startsWith('bench:') ? message : ((error as Error).stack ?? message)}`,
  );
  process.exitCode = 1;
});
