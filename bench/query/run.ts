/**
 * `npm run bench:query`: syncline against the raw drivers, Drizzle and Kysely on the same tables,
 * in one run, on better-sqlite3 (in memory) and on PostgreSQL (DATABASE_URL, or the local server;
 * skipped with a message when unreachable). Prints progress, then a table per dialect with the
 * median µs per operation, each library's ratio to raw, and syncline's targets.
 *
 * Settings (environment): DATABASE_URL, BENCH_SAMPLES (default 9), BENCH_SAMPLE_MS (default 150),
 * BENCH_POSTGRES=0 to run the SQLite table only.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import {
  formatMicros,
  formatRatio,
  formatTable,
  type Measurement,
  measureAll,
  type Operation,
  withinNoise,
} from '../support/measure.js';
import { openDrizzlePostgres, openDrizzleSqlite } from './drizzle.js';
import { type Contender, createFixture, type Fixture, INSERTED_TODOS, JOIN_LIMIT } from './fixture.js';
import { openKyselyPostgres, openKyselySqlite } from './kysely.js';
import { benchPool, openRawPostgres, openRawSqlite, seedPostgres, seedSqlite } from './raw.js';
import { openSynclinePostgres, openSynclineSqlite } from './syncline.js';

const LIBRARIES = ['raw', 'syncline', 'drizzle', 'kysely'] as const;
type Library = (typeof LIBRARIES)[number];
type Contenders = Record<Library, Contender>;

interface Case {
  readonly label: string;
  /** syncline's allowed ratio to raw on this row. */
  readonly limit: number;
  /** A tighter limit on SQLite, where nothing but the library stands between the call and the engine. */
  readonly sqliteLimit?: number;
  operation(contender: Contender, fixture: Fixture, reset: () => unknown): Operation;
}

const CASES: readonly Case[] = [
  {
    label: 'point select by id, prepared',
    limit: 1.3,
    operation: (c, f) => ({ run: (i) => c.selectPrepared(f.todoIds[i % f.todoIds.length]!) }),
  },
  {
    label: 'point select by id, built per call',
    limit: 3,
    operation: (c, f) => ({ run: (i) => c.selectFresh(f.todoIds[i % f.todoIds.length]!) }),
  },
  {
    label: `insert ${INSERTED_TODOS.toLocaleString('en-US')} rows, 1 transaction`,
    limit: 1.3,
    sqliteLimit: 1.1,
    operation: (c, f, reset) => ({ run: () => c.insertAll(f.newTodos), beforeEach: reset }),
  },
  {
    label: `join + filter + order, limit ${JOIN_LIMIT}, prepared`,
    limit: 1.3,
    operation: (c, f) => ({ run: (i) => c.recentForOwner(f.owners[i % f.owners.length]!) }),
  },
];

const samples = Number(process.env.BENCH_SAMPLES ?? 9);
const sampleMs = Number(process.env.BENCH_SAMPLE_MS ?? 150);
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function version(name: string): string {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(url, 'utf8')).version;
  } catch {
    return '?';
  }
}

function load(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

function fail(message: string): never {
  throw new Error(`bench: ${message}`);
}

function firstRow(result: unknown): Record<string, unknown> | undefined {
  return (Array.isArray(result) ? result[0] : result) as Record<string, unknown> | undefined;
}

/** Checks once, before timing, that every contender returns the right rows and inserts every row. */
async function verify(
  dialect: string,
  contenders: Contenders,
  fixture: Fixture,
  countInserted: () => Promise<number>,
  reset: () => unknown,
): Promise<void> {
  const id = fixture.todoIds[0]!;
  const owner = fixture.owners[0]!;
  const expected = (await contenders.raw.recentForOwner(owner)) as Record<string, unknown>[];
  for (const name of LIBRARIES) {
    const c = contenders[name];
    for (const [what, result] of [
      ['prepared select', await c.selectPrepared(id)],
      ['fresh select', await c.selectFresh(id)],
    ] as const) {
      if (firstRow(result)?.id !== id) fail(`${dialect}/${name}: ${what} did not return todo ${id}`);
    }
    const recent = (await c.recentForOwner(owner)) as Record<string, unknown>[];
    const ids = recent.map((r) => r.id).join();
    if (recent.length !== JOIN_LIMIT || ids !== expected.map((r) => r.id).join()) {
      fail(`${dialect}/${name}: the join returned other rows than the raw driver`);
    }
    await reset();
    await c.insertAll(fixture.newTodos);
    const inserted = await countInserted();
    if (inserted !== INSERTED_TODOS)
      fail(`${dialect}/${name}: inserted ${inserted} rows, not ${INSERTED_TODOS}`);
  }
  await reset();
}

type Results = Record<Library, Measurement>[];

async function runCases(dialect: string, contenders: Contenders, fixture: Fixture, reset: () => unknown) {
  const results: Results = [];
  for (const testCase of CASES) {
    process.stdout.write(`[${dialect}] ${testCase.label} ...`);
    const started = performance.now();
    const operations = {} as Record<Library, Operation>;
    for (const name of LIBRARIES) operations[name] = testCase.operation(contenders[name], fixture, reset);
    const measured = await measureAll(operations, { samples, sampleMs });
    results.push(measured);
    const summary = LIBRARIES.map((name) => `${name} ${formatMicros(measured[name].medianUs)}`).join(', ');
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(` ${summary} µs/op (${seconds} s)\n`);
  }
  return results;
}

function report(dialect: string, results: Results): string {
  const rows = CASES.map((testCase, i) => {
    const m = results[i]!;
    const raw = m.raw.medianUs;
    const cell = (name: Library) =>
      `${formatMicros(m[name].medianUs)} (${formatRatio(m[name].medianUs / raw)})`;
    const ratio = m.syncline.medianUs / raw;
    const limit = (dialect.startsWith('better-sqlite3') ? testCase.sqliteLimit : undefined) ?? testCase.limit;
    const misses: string[] = [];
    // A miss by less than the samples' spread is flagged, since another run may not repeat it.
    const noise = (other: Library) => (withinNoise(m.syncline, m[other]) ? ', within noise' : '');
    if (ratio > limit) {
      const near = ratio / limit - 1 <= Math.max(m.syncline.spread, m.raw.spread);
      misses.push(`${formatRatio(ratio)} of raw${near ? ', within noise' : ''}`);
    }
    for (const other of ['drizzle', 'kysely'] as const) {
      if (m.syncline.medianUs > m[other].medianUs) {
        misses.push(`${formatRatio(m.syncline.medianUs / m[other].medianUs)} of ${other}${noise(other)}`);
      }
    }
    return [
      testCase.label,
      formatMicros(raw),
      cell('syncline'),
      cell('drizzle'),
      cell('kysely'),
      `<= ${limit}x raw`,
      misses.length === 0 ? 'PASS' : `MISS (${misses.join('; ')})`,
    ];
  });
  return formatTable(
    [dialect, 'raw µs', 'syncline µs', 'drizzle µs', 'kysely µs', 'syncline target', 'result'],
    rows,
  );
}

async function closeAll(contenders: Partial<Contenders>): Promise<void> {
  for (const c of Object.values(contenders)) await c?.close();
}

async function benchSqlite(fixture: Fixture): Promise<string> {
  // One in-memory database shared by all four libraries: the same data, pages and pragmas for each.
  const handle = new BetterSqlite3(':memory:');
  const contenders: Partial<Contenders> = {};
  try {
    contenders.syncline = await openSynclineSqlite(handle); // creates the tables
    seedSqlite(handle, fixture.lists, fixture.todos);
    contenders.raw = openRawSqlite(handle);
    contenders.drizzle = openDrizzleSqlite(handle);
    contenders.kysely = openKyselySqlite(handle);
    const all = contenders as Contenders;
    const reset = () => handle.exec('DELETE FROM inserted_todos');
    const count = async () =>
      (handle.prepare('SELECT count(*) AS n FROM inserted_todos').get() as { n: number }).n;
    await verify('sqlite', all, fixture, count, reset);
    return report('better-sqlite3 (in memory)', await runCases('sqlite', all, fixture, reset));
  } finally {
    await closeAll(contenders);
    handle.close();
  }
}

async function serverVersion(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query('SHOW server_version');
    return rows[0].server_version as string;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}

async function benchPostgres(fixture: Fixture, pgSchema: string): Promise<string> {
  const admin = benchPool(databaseUrl, pgSchema);
  const contenders: Partial<Contenders> = {};
  try {
    contenders.syncline = await openSynclinePostgres(databaseUrl, pgSchema); // creates schema and tables
    await seedPostgres(databaseUrl, pgSchema, fixture.lists, fixture.todos);
    contenders.raw = openRawPostgres(databaseUrl, pgSchema);
    contenders.drizzle = openDrizzlePostgres(databaseUrl, pgSchema);
    contenders.kysely = openKyselyPostgres(databaseUrl, pgSchema);
    const all = contenders as Contenders;
    const reset = () => admin.query('TRUNCATE inserted_todos');
    const count = async () =>
      Number((await admin.query('SELECT count(*) AS n FROM inserted_todos')).rows[0].n);
    await verify('postgres', all, fixture, count, reset);
    return report('postgres (node-postgres)', await runCases('postgres', all, fixture, reset));
  } finally {
    await closeAll(contenders);
    await admin.query(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`).catch((error) => {
      console.error(`bench: could not drop schema ${pgSchema}: ${(error as Error).message}`);
    });
    await admin.end();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(
    `bench:query: node ${process.version}, better-sqlite3 ${version('better-sqlite3')}, pg ${version('pg')}, ` +
      `drizzle-orm ${version('drizzle-orm')}, kysely ${version('kysely')}; ` +
      `${samples} samples of ~${sampleMs} ms each, median per op${globalThis.gc ? ', gc between samples' : ''}`,
  );
  console.log(
    'raw better-sqlite3 is called synchronously, as its users call it; syncline, Drizzle and Kysely are awaited.',
  );
  console.log(
    `${cpus().length} cores, load average ${load()} before the run (other processes make numbers noisy).`,
  );
  const fixture = createFixture();
  const tables: string[] = [];

  tables.push(await benchSqlite(fixture));

  const server = process.env.BENCH_POSTGRES === '0' ? undefined : await serverVersion();
  if (process.env.BENCH_POSTGRES === '0') console.log('\n[postgres] skipped: BENCH_POSTGRES=0');
  else if (!server) {
    const shown = databaseUrl.replace(/\/\/[^@/]*@/, '//…@');
    console.log(
      `\n[postgres] SKIPPED: no PostgreSQL server answers at ${shown}. Start one ` +
        '(pg_ctlcluster --skip-systemctl-redirect <version> main start) or set DATABASE_URL.',
    );
  } else {
    console.log(`[postgres] server ${server}`);
    const pgSchema = `bench_query_${process.pid}_${Date.now().toString(36)}`;
    tables.push(await benchPostgres(fixture, pgSchema));
  }

  const total = ((performance.now() - started) / 1000).toFixed(0);
  console.log(
    `\nMedian µs per operation (ratio to raw). Total time ${total} s; load average after ${load()}.\n`,
  );
  console.log(tables.join('\n\n'));
  console.log(
    '\nsyncline targets: within 1.3x of raw on the prepared rows (prepared select, insert, join; the insert' +
      ' within 1.1x on SQLite), within 3x' +
      ' unprepared, and no slower than Drizzle or Kysely on any row. "within noise": the miss is smaller' +
      ' than the spread (interquartile range) of the samples, so another run may not repeat it.',
  );
}

await main();
