/**
 * `npx tsx bench/sync/trigger-capture.ts`: what trigger capture costs a backend's own writes, with
 * nothing else running (no sync server reading the log, no clients): the same statements into a
 * synced table (capture installed) and into a table with the same columns and no triggers, through
 * one connection, in turns, each figure the median of BENCH_TRIGGER_RUNS [5] runs and printed as a
 * ratio of the uncaptured one. On PostgreSQL at DATABASE_URL (a fresh schema, dropped at the end),
 * else on an in-memory PGlite. Between runs (untimed) both tables, the change log and the stamps
 * are emptied with triggers off.
 *
 * Cases: bulk insert (BENCH_TRIGGER_ROWS [100000] rows, 1,000 a statement, one transaction); the
 * stream writer of bench:sync (BENCH_TRIGGER_CHANGES [20000] changes: half inserts, then an update
 * of each row, 100 rows a transaction), with its updates timed apart; one UPDATE of every bulk row.
 */
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { type Driver, integer, openDatabase, schema, table, text } from '../../src/index.js';
import { installCapture } from '../../src/sync/server/index.js';
import { envCount } from '../support/env-count.js';
import { median } from '../support/measure.js';

const columns = () => ({ id: integer().primaryKey(), value: integer().notNull(), label: text().notNull() });
const captured = table('captured', columns());
const benchSchema = schema({ captured }, { version: 1 });

type Query = (sql: string, params?: unknown[]) => Promise<void>;

interface Target {
  readonly label: string;
  readonly driver: () => Driver;
  readonly query: Query;
  close(): Promise<void>;
}

async function onPostgres(url: string): Promise<Target> {
  const name = `bench_trigger_${process.pid}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`CREATE SCHEMA ${name}`);
  await client.query(`SET search_path = ${name}`);
  const { rows } = await client.query('SELECT version() AS v');
  return {
    label: String(rows[0].v).split(' on ')[0]!,
    driver: () => postgres({ connectionString: url, schema: name }),
    query: async (sql, params) => void (await client.query(sql, params)),
    async close() {
      await client.query(`DROP SCHEMA ${name} CASCADE`);
      await client.end();
    },
  };
}

async function onPglite(): Promise<Target> {
  const instance = new PGlite();
  await instance.waitReady;
  return {
    label: 'PGlite (in memory)',
    driver: () => pglite({ instance }),
    query: async (sql, params) => void (await instance.query(sql, params)),
    close: () => instance.close(),
  };
}

function writes(query: Query, name: string) {
  return {
    async bulk(rows: number) {
      await query('BEGIN');
      for (let from = 1; from <= rows; from += 1000) {
        const to = Math.min(rows, from + 999);
        const params: unknown[] = [];
        const values: string[] = [];
        for (let id = from; id <= to; id++) {
          params.push(id, id % 1000, `bulk row ${id}`);
          values.push(`($${params.length - 2}, $${params.length - 1}, $${params.length})`);
        }
        await query(`INSERT INTO ${name} (id, value, label) VALUES ${values.join(', ')}`, params);
      }
      await query('COMMIT');
    },
    async streamInserts(rows: number) {
      for (let from = 1; from <= rows; from += 100) {
        await query(
          `INSERT INTO ${name} (id, value, label) SELECT i, 0, 'feed row ' || i FROM generate_series($1::int, $2::int) AS i`,
          [from, Math.min(rows, from + 99)],
        );
      }
    },
    async streamUpdates(rows: number) {
      for (let from = 1; from <= rows; from += 100) {
        await query(`UPDATE ${name} SET value = value + 1 WHERE id BETWEEN $1 AND $2`, [
          from,
          Math.min(rows, from + 99),
        ]);
      }
    },
    async updateAll() {
      await query(`UPDATE ${name} SET value = value + 1`);
    },
  };
}

async function main(): Promise<void> {
  const runs = envCount('BENCH_TRIGGER_RUNS', 5, 1);
  const rows = envCount('BENCH_TRIGGER_ROWS', 100_000, 1);
  const changes = envCount('BENCH_TRIGGER_CHANGES', 20_000, 2);
  const url = process.env.DATABASE_URL || undefined;
  const target = url ? await onPostgres(url) : await onPglite();
  try {
    const db = await openDatabase(benchSchema, target.driver());
    await installCapture(db, benchSchema.tableList);
    await db.close();
    const { query } = target;
    await query('CREATE TABLE plain (LIKE captured INCLUDING ALL)');
    const empty = async () => {
      await query('SET session_replication_role = replica');
      await query('TRUNCATE captured, plain, _syncline_changes, _syncline_stamps, _syncline_ticks');
      await query('SET session_replication_role = DEFAULT');
    };
    const times = new Map<string, number[]>();
    const time = async (label: string, work: () => Promise<void>) => {
      const started = performance.now();
      await work();
      const ms = performance.now() - started;
      times.set(label, [...(times.get(label) ?? []), ms]);
    };
    const half = Math.floor(changes / 2);
    console.log(
      `trigger capture on ${target.label}: ${runs} runs, ${rows.toLocaleString('en-US')} bulk rows, ${changes.toLocaleString('en-US')} stream changes`,
    );
    for (let run = 0; run < runs; run++) {
      for (const name of run % 2 === 0 ? ['plain', 'captured'] : ['captured', 'plain']) {
        const w = writes(query, name);
        await empty();
        await time(`bulk insert/${name}`, () => w.bulk(rows));
        await time(`update every bulk row/${name}`, () => w.updateAll());
        await empty();
        await time(`stream inserts/${name}`, () => w.streamInserts(half));
        await time(`stream updates/${name}`, () => w.streamUpdates(half));
      }
    }
    for (const label of ['bulk insert', 'update every bulk row', 'stream inserts', 'stream updates']) {
      const plain = median(times.get(`${label}/plain`)!);
      const withCapture = median(times.get(`${label}/captured`)!);
      console.log(
        `${label.padEnd(22)} captured ${withCapture.toFixed(0).padStart(6)} ms, uncaptured ${plain.toFixed(0).padStart(6)} ms: ${(withCapture / plain).toFixed(2)}x`,
      );
    }
  } finally {
    await target.close();
  }
}

await main();
