/**
 * `npm run bench:live`: what a single-row write costs when many live queries watch one table.
 *
 * One table of 10,000 rows in 1,000 groups (10 rows each). For N = 1, 100 and 1,000 live queries,
 * each `select ... where group_id = g` with its own group, subscribed and settled, the run makes K
 * sequential single-row updates, each to a row in the group of one watched query (so exactly one
 * result changes), and times from the write's commit until that live query has re-emitted. It
 * counts the runs per write (the live queries' `runCount` deltas). The baseline, in the same run on
 * the same database: after each write, re-run all N queries by hand (awaited), as an app without
 * live queries would, and time the same span.
 *
 * Two kinds of live query are timed: the builder's `watch()`, which skips a write to a row its
 * filter matches neither before nor after (row-level: about 1 run per write), and the same queries
 * as raw SQL through `db.watch(sql, { tables })`, which re-run on every change to the table
 * (table-level: N runs per write).
 *
 * Drivers: better-sqlite3 (in memory) always; PGlite (in memory) unless BENCH_PGLITE=0, with fewer
 * writes for N = 1,000 to keep the whole run near two minutes.
 * Settings (environment): BENCH_WRITES (default 200), BENCH_PGLITE_WRITES (default 100; at most 50 at N = 1,000).
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import {
  type Database,
  type Driver,
  eq,
  index,
  integer,
  type LiveQuery,
  openDatabase,
  schema,
  sql,
  table,
  text,
} from '../../src/index.js';
import { formatRatio, formatTable, quantile } from '../support/measure.js';

const ROWS = 10_000;
const GROUPS = 1_000;
const COUNTS = [1, 100, 1_000] as const;
const writesSqlite = Number(process.env.BENCH_WRITES ?? 200);
const writesPglite = Number(process.env.BENCH_PGLITE_WRITES ?? 100);

const entries = table(
  'entries',
  {
    id: integer().primaryKey(),
    groupId: integer('group_id').notNull(),
    value: integer().notNull(),
    label: text().notNull(),
  },
  (t) => [index('entries_group_idx').on(t.groupId)],
);
const benchSchema = schema({ entries });
type Db = Database<typeof benchSchema>;
type Row = { id: number; value: number; label: string };

/** Values written so far: each write sets a new one, so it always changes one result. */
let written = 0;

/** Row `id` is in group `id % GROUPS`. */
const groupOf = (id: number) => id % GROUPS;

/** A small deterministic generator, so every run writes the same rows. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function fail(message: string): never {
  throw new Error(`bench: ${message}`);
}

function version(name: string): string {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(url, 'utf8')).version;
  } catch {
    return '?';
  }
}

const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
const collectGarbage = (globalThis as { gc?: () => void }).gc;

async function seed(db: Db): Promise<void> {
  const rows = Array.from({ length: ROWS }, (_, id) => ({
    id,
    groupId: groupOf(id),
    value: 0,
    label: `entry ${id}`,
  }));
  await db.transaction(async (tx) => {
    for (let i = 0; i < rows.length; i += 500) await tx.insert(entries).values(rows.slice(i, i + 500));
  });
}

const groupQuery = (db: Db, group: number) =>
  db
    .select({ id: entries.id, value: entries.value, label: entries.label })
    .from(entries)
    .where(eq(entries.groupId, group))
    .orderBy(entries.id);

/** The same query as raw SQL: syncline cannot look into it, so it re-runs on every change to the table. */
const rawGroupQuery = (db: Db, group: number) =>
  db.watch<Row>(
    sql`select ${entries.id} as id, ${entries.value} as value, ${entries.label} as label from ${entries}
        where ${entries.groupId} = ${group} order by ${entries.id}`,
    { tables: [entries] },
  );

type Watch = (db: Db, group: number) => LiveQuery<Row[]>;
const CONTENDERS: readonly { readonly label: string; readonly watch: Watch }[] = [
  { label: 'live, builder (row-level)', watch: (db, g) => groupQuery(db, g).watch() },
  { label: 'live, raw SQL (table-level)', watch: rawGroupQuery },
];

/** Times, in ms, from each write's commit until it was fully seen; and runs made per write. */
interface Phase {
  readonly times: number[];
  runsPerWrite: number;
  emitsPerWrite: number;
}

/**
 * The moment of each commit: a table-change listener subscribed before any live query, so it hears
 * the commit first, before any re-run starts.
 */
function commitClock(db: Db): { readonly at: () => number; stop(): void } {
  let at = Number.NaN;
  const stop = db.onTablesChanged([entries], () => {
    at = performance.now();
  });
  return { at: () => at, stop };
}

/** Waits until no live query has a run in flight or queued: the run counts stay put across a full turn. */
async function settle(db: Db, lives: readonly LiveQuery<Row[]>[]): Promise<void> {
  const total = () => lives.reduce((sum, live) => sum + live.runCount, 0);
  for (;;) {
    const before = total();
    // Queries queue behind each other on one connection: a query sent now returns after them.
    await db.select({ id: entries.id }).from(entries).where(eq(entries.id, 0));
    await nextMacrotask();
    if (total() === before) return;
  }
}

async function livePhase(
  db: Db,
  watch: Watch,
  n: number,
  writes: number,
  random: () => number,
): Promise<Phase> {
  const clock = commitClock(db);
  const lives: LiveQuery<Row[]>[] = [];
  const stops: (() => void)[] = [];
  let emissions = 0;
  /** The group whose live query the current write must reach, and when it did. */
  let awaited: { group: number; id: number; value: number; resolve: (at: number) => void } | undefined;
  let firstEmissions = 0;
  for (let g = 0; g < n; g++) {
    const live = watch(db, g);
    let first = true;
    stops.push(
      live.subscribe(
        (rows) => {
          const now = performance.now();
          if (first) {
            first = false;
            firstEmissions++;
            return;
          }
          emissions++;
          if (awaited?.group === g && rows.some((r) => r.id === awaited!.id && r.value === awaited!.value)) {
            const done = awaited;
            awaited = undefined;
            done.resolve(now);
          }
        },
        (error) => fail(`live query for group ${g} failed: ${(error as Error).message}`),
      ),
    );
    lives.push(live);
  }
  const deadline = Date.now() + 60_000;
  while (firstEmissions < n) {
    if (Date.now() > deadline) fail(`only ${firstEmissions} of ${n} live queries emitted a first result`);
    await nextMacrotask();
  }
  await settle(db, lives);

  const times: number[] = [];
  const runsBefore = lives.reduce((sum, live) => sum + live.runCount, 0);
  const emissionsBefore = emissions;
  for (let k = 0; k < writes; k++) {
    const group = Math.floor(random() * n);
    const id = group + GROUPS * Math.floor(random() * (ROWS / GROUPS));
    const value = ++written;
    const seen = new Promise<number>((resolve) => {
      awaited = { group, id, value, resolve };
    });
    await db.update(entries).set({ value }).where(eq(entries.id, id));
    let timer: NodeJS.Timeout | undefined;
    const emittedAt = await Promise.race([
      seen,
      new Promise<number>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`write ${k} never reached group ${group}`)), 30_000);
      }),
    ]).finally(() => clearTimeout(timer));
    times.push(emittedAt - clock.at());
    await settle(db, lives);
  }
  const runs = lives.reduce((sum, live) => sum + live.runCount, 0) - runsBefore;
  const phase = { times, runsPerWrite: runs / writes, emitsPerWrite: (emissions - emissionsBefore) / writes };
  for (const stop of stops) stop();
  clock.stop();
  return phase;
}

async function manualPhase(db: Db, n: number, writes: number, random: () => number): Promise<Phase> {
  const clock = commitClock(db);
  const queries = Array.from({ length: n }, (_, g) => groupQuery(db, g));
  for (const query of queries) await query; // compiled and warm, as the live queries are
  const times: number[] = [];
  for (let k = 0; k < writes; k++) {
    const group = Math.floor(random() * n);
    const id = group + GROUPS * Math.floor(random() * (ROWS / GROUPS));
    const value = ++written;
    await db.update(entries).set({ value }).where(eq(entries.id, id));
    let affected: Row[] | undefined;
    for (let g = 0; g < n; g++) {
      const rows = await queries[g]!;
      if (g === group) affected = rows;
    }
    times.push(performance.now() - clock.at());
    if (!affected?.some((r) => r.id === id && r.value === value)) fail(`manual re-run missed write ${k}`);
  }
  clock.stop();
  return { times, runsPerWrite: n, emitsPerWrite: Number.NaN };
}

const ms = (value: number) =>
  value < 1 ? value.toFixed(3) : value < 100 ? value.toFixed(2) : value.toFixed(0);

async function benchDriver(label: string, makeDriver: () => Driver, writesFor: (n: number) => number) {
  const db = await openDatabase(benchSchema, makeDriver());
  try {
    await seed(db);
    const rows: string[][] = [];
    for (const n of COUNTS) {
      const writes = writesFor(n);
      const count = n.toLocaleString('en-US');
      process.stdout.write(`[${label}] N=${count}, ${writes} writes:`);
      const started = performance.now();
      const phases: { label: string; phase: Phase }[] = [];
      for (const [i, contender] of CONTENDERS.entries()) {
        process.stdout.write(` ${contender.label} ...`);
        collectGarbage?.();
        phases.push({
          label: contender.label,
          phase: await livePhase(db, contender.watch, n, writes, generator(n + i)),
        });
      }
      process.stdout.write(' manual ...');
      collectGarbage?.();
      const manual = await manualPhase(db, n, writes, generator(n + CONTENDERS.length));
      phases.push({ label: 'manual re-run of all N', phase: manual });
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      process.stdout.write(` (${seconds} s)\n`);
      const manualP50 = quantile(manual.times, 0.5);
      for (const { label: contender, phase } of phases) {
        const p50 = quantile(phase.times, 0.5);
        rows.push([
          count,
          contender,
          ms(p50),
          ms(quantile(phase.times, 0.99)),
          phase.runsPerWrite.toFixed(2),
          Number.isNaN(phase.emitsPerWrite) ? '—' : phase.emitsPerWrite.toFixed(2),
          phase === manual ? '1.00x' : formatRatio(manualP50 / p50),
        ]);
      }
    }
    return formatTable(
      [`${label}: N`, 'how', 'p50 ms', 'p99 ms', 're-runs/write', 'emits/write', 'manual p50 / p50'],
      rows,
    );
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(
    `bench:live: node ${process.version}, better-sqlite3 ${version('better-sqlite3')}, ` +
      `@electric-sql/pglite ${version('@electric-sql/pglite')}; ${cpus().length} cores, load average ${load()}` +
      `${collectGarbage ? ', gc between phases' : ''}.`,
  );
  console.log(
    `${ROWS.toLocaleString('en-US')} rows in ${GROUPS.toLocaleString('en-US')} groups; N live queries, one ` +
      'group each; sequential single-row updates, each changing the result of exactly one live query.',
  );
  const tables = [
    await benchDriver(
      'better-sqlite3',
      () => sqlite(),
      () => writesSqlite,
    ),
  ];
  if (process.env.BENCH_PGLITE === '0') {
    console.log('[pglite] SKIPPED (BENCH_PGLITE=0)');
  } else {
    const pgliteWrites = (n: number) => (n >= 1_000 ? Math.min(50, writesPglite) : writesPglite);
    tables.push(await benchDriver('pglite', () => pglite(), pgliteWrites));
  }
  const total = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`\nTotal time ${total} s; load average after ${load()}.\n`);
  console.log(tables.join('\n\n'));
  console.log(
    [
      '',
      "p50 / p99: ms from the write's commit until it was seen. Live: until the one live query whose result",
      'changed re-emitted. Manual: until all N queries, re-run by hand and awaited one after another, returned.',
      "re-runs/write: queries run per write (sum of the live queries' runCount deltas). Row-level invalidation",
      'runs only the query whose filter the changed row matches (~1); table-level runs all N.',
      'emits/write: emissions per write (1.00: only the changed result is emitted).',
      'manual p50 / p50: how many times faster than re-running every query by hand (higher is better).',
    ].join('\n'),
  );
}

await main();
