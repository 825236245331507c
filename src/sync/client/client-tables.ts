import type { DriverQuery, DriverResult } from '../../database/driver.js';
import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import type { Run } from './client-transaction.js';
import { dropOutboxTriggerSql, outboxTriggerSql } from './outbox-triggers.js';

/** The outbox's first or last seq (one probe of its rowid); the row holds null when it is empty. */
export const OUTBOX_SEQ = {
  min: { sql: 'SELECT min(seq) FROM _syncline_outbox', params: [], arrayMode: true, needsBigInt: false },
  max: { sql: 'SELECT max(seq) FROM _syncline_outbox', params: [], arrayMode: true, needsBigInt: false },
} satisfies Record<string, DriverQuery>;

/** The seq an `OUTBOX_SEQ` query read, or undefined for an empty outbox. */
export function seqOf(result: DriverResult): number | undefined {
  const seq = (result.rows[0] as unknown[] | undefined)?.[0];
  return seq === null || seq === undefined ? undefined : Number(seq);
}

/**
 * The client's own tables (docs/sync-internals.md, "Client tables"). `seq` is the rowid without
 * AUTOINCREMENT (cheaper per captured write): a new row always gets the largest seq plus one, and
 * only stamped rows are ever deleted (a batch's rows with its batch), so the unstamped rows are
 * always the tail of the outbox, after the last batch's `last_seq`. A batch (one local
 * transaction, or a part of one) is a row of `_syncline_batches` naming its seq range, its
 * mutation id and its stamp: stamping writes one row per transaction instead of updating every
 * outbox row.
 */
const TABLES = [
  `CREATE TABLE IF NOT EXISTS _syncline_outbox (
     seq INTEGER PRIMARY KEY,
     table_name TEXT NOT NULL,
     op TEXT NOT NULL,
     pk TEXT NOT NULL,
     "row" TEXT,
     wall_ms INTEGER NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS _syncline_batches (
     last_seq INTEGER PRIMARY KEY,
     first_seq INTEGER NOT NULL,
     mutation_id INTEGER NOT NULL UNIQUE,
     hlc TEXT NOT NULL
   )`,
  'CREATE TABLE IF NOT EXISTS _syncline_state (key TEXT PRIMARY KEY, value TEXT)',
  // The row every remote transaction writes first and last (RemoteStart): the capture switch, and
  // the cursor and the last stamp the transaction moves on.
  'CREATE TABLE IF NOT EXISTS _syncline_capture (enabled INTEGER NOT NULL, cursor TEXT, last_hlc TEXT)',
  'INSERT INTO _syncline_capture (enabled) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM _syncline_capture)',
  // A crash cannot leave capture off (the flag is set back inside the same transaction), but a
  // database copied mid-transaction by other tools could: start with capture on.
  'UPDATE _syncline_capture SET enabled = 1',
];

/**
 * An outbox made before `_syncline_batches` kept each row's mutation id and stamp in columns of
 * its own: its stamped rows become batches (once; the columns are then left empty).
 */
async function moveStampsToBatches(run: Run): Promise<void> {
  const { rows } = await run(
    "SELECT 1 FROM pragma_table_info('_syncline_outbox') WHERE name = 'mutation_id'",
    [],
    { arrayMode: true },
  );
  if (rows.length === 0) return;
  await run(`INSERT INTO _syncline_batches (last_seq, first_seq, mutation_id, hlc)
    SELECT max(seq), min(seq), mutation_id, max(hlc) FROM _syncline_outbox
    WHERE mutation_id IS NOT NULL GROUP BY mutation_id`);
  await run('UPDATE _syncline_outbox SET mutation_id = NULL, hlc = NULL WHERE mutation_id IS NOT NULL');
}

/**
 * Databases made by older versions keep the cursor in `_syncline_state` and have a capture row of
 * one column: the row gets its columns, and the cursor moves into it (the last stamp stays where it
 * is, and the greater of the two counts).
 */
async function moveCursorToCaptureRow(run: Run): Promise<void> {
  const { rows } = await run(
    "SELECT 1 FROM pragma_table_info('_syncline_capture') WHERE name = 'cursor'",
    [],
    { arrayMode: true },
  );
  if (rows.length > 0) return;
  await run('ALTER TABLE _syncline_capture ADD COLUMN cursor TEXT');
  await run('ALTER TABLE _syncline_capture ADD COLUMN last_hlc TEXT');
  await run("UPDATE _syncline_capture SET cursor = (SELECT value FROM _syncline_state WHERE key = 'cursor')");
  await run("DELETE FROM _syncline_state WHERE key = 'cursor'");
}

/**
 * The tables of a schema that sync: every table not declared with `localTable()`.
 *
 * @example
 *   syncedTables(appSchema).map((t) => t.$name); // ['lists', 'todos']
 */
export function syncedTables(schema: Schema): AnyTable[] {
  return schema.tableList.filter((table) => !table.$local);
}

/**
 * The statements `installClientTables` runs, checked before anything is run: a synced table without
 * a primary key throws `UsageError` here.
 *
 * @example
 *   const statements = clientTablesSql(appSchema);
 */
export function clientTablesSql(schema: Schema): string[] {
  const statements = [...TABLES];
  for (const table of schema.tableList) {
    statements.push(...(table.$local ? dropOutboxTriggerSql(table.$name) : outboxTriggerSql(table)));
  }
  return statements;
}

/**
 * Creates (idempotently) `_syncline_outbox` (its key index comes once it is long, see
 * pending-writes.ts), `_syncline_batches`, `_syncline_state`, `_syncline_capture` and the capture triggers of every synced table, in the transaction `run`
 * belongs to. Triggers are re-created every time, so they follow the table's current columns after
 * a migration.
 *
 * @example
 *   await clientTransaction(db, false, (run) => installClientTables(run, appSchema));
 */
export async function installClientTables(run: Run, schema: Schema): Promise<void> {
  for (const statement of clientTablesSql(schema)) await run(statement);
  await moveStampsToBatches(run);
  await moveCursorToCaptureRow(run);
}
