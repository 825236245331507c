/**
 * The tables of `npm run bench:sync`, one per measurement so that no measurement sees another's
 * rows, in one schema shared by the server and every client (as an app's would be).
 */
import { boolean, integer, schema, table, text, timestamp, uuid } from '../../src/index.js';

/** A todo-like row: a uuid key, a few short columns and a timestamp, as an app's rows look. */
const itemColumns = () => ({
  id: uuid().primaryKey(),
  ownerId: text('owner_id').notNull(),
  title: text().notNull(),
  done: boolean().notNull(),
  position: integer().notNull(),
  updatedAt: timestamp('updated_at').notNull(),
});

/**
 * Rows of the 100,000-row initial sync (seeded before the server starts).
 *
 * @example
 *   syncClient(db, { url, shapes: [{ table: items }] });
 */
export const items = table('items', itemColumns());

/**
 * Rows of the 1,000,000-row initial sync, the same columns as `items`.
 *
 * @example
 *   syncClient(db, { url, shapes: [{ table: itemsBig }] });
 */
export const itemsBig = table('items_big', itemColumns());

/**
 * A few rows the propagation-latency writes update and the clients' live queries watch.
 *
 * @example
 *   db.select().from(counters).watch().subscribe(render);
 */
export const counters = table('counters', {
  id: integer().primaryKey(),
  value: integer().notNull(),
});

/**
 * The change-throughput stream's rows for sync clients (inserted, then updated).
 *
 * @example
 *   await writer.query('UPDATE feed SET value = value + 1 WHERE id BETWEEN $1 AND $2', [1, 100]);
 */
export const feed = table('feed', {
  id: integer().primaryKey(),
  value: integer().notNull(),
  label: text().notNull(),
});

/**
 * The same stream, for raw socket clients in another process (the server's fan-out alone).
 *
 * @example
 *   await SocketProcess.start(url, 100, fanout.$name);
 */
export const fanout = table('fanout', {
  id: integer().primaryKey(),
  value: integer().notNull(),
  label: text().notNull(),
});

/**
 * The rows of the one big transaction.
 *
 * @example
 *   await openBenchClient(url, [{ table: bulk }]);
 */
export const bulk = table('bulk', {
  id: integer().primaryKey(),
  value: integer().notNull(),
  label: text().notNull(),
});

/**
 * Rows clients write locally and push (each client syncs only its own, by `clientNo`).
 *
 * @example
 *   syncClient(db, { url, shapes: [{ table: pushed, where: eq(pushed.clientNo, 3) }] });
 */
export const pushed = table('pushed', {
  id: uuid().primaryKey(),
  clientNo: integer('client_no').notNull(),
  seq: integer().notNull(),
  title: text().notNull(),
});

/**
 * The schema of the server and of every bench client.
 *
 * @example
 *   const db = await openDatabase(benchSchema, sqlite());
 */
export const benchSchema = schema({ items, itemsBig, counters, feed, fanout, bulk, pushed }, { version: 1 });

/**
 * The type of the bench schema, for `Database<BenchSchema>`.
 *
 * @example
 *   let db: Database<BenchSchema>;
 */
export type BenchSchema = typeof benchSchema;

/**
 * Tables with the columns of a synced one but no capture triggers: the raw baselines write the
 * same rows into them through the same connection. Created by `startBenchServer`.
 *
 * @example
 *   await writer.query(`TRUNCATE ${PLAIN_TABLES.bulk}`);
 */
export const PLAIN_TABLES = { feed: 'feed_plain', bulk: 'bulk_plain', pushed: 'pushed_plain' } as const;

/**
 * How many `counters` rows there are (ids 0 to COUNTER_ROWS - 1).
 *
 * @example
 *   const id = k % COUNTER_ROWS;
 */
export const COUNTER_ROWS = 10;
