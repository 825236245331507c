import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import type { Run } from './client-transaction.js';
import { dropOutboxTriggerSql, outboxTriggerSql } from './outbox-triggers.js';

/**
 * The client's own tables (docs/sync-internals.md, "Client tables"). `seq` is the rowid without
 * AUTOINCREMENT (cheaper per captured write): a new row always gets the largest seq plus one, and
 * only stamped rows are ever deleted, so the unstamped rows are always the tail of the outbox.
 */
const TABLES = [
  `CREATE TABLE IF NOT EXISTS _syncline_outbox (
     seq INTEGER PRIMARY KEY,
     table_name TEXT NOT NULL,
     op TEXT NOT NULL,
     pk TEXT NOT NULL,
     "row" TEXT,
     wall_ms INTEGER NOT NULL,
     mutation_id INTEGER,
     hlc TEXT
   )`,
  'CREATE TABLE IF NOT EXISTS _syncline_state (key TEXT PRIMARY KEY, value TEXT)',
  'CREATE TABLE IF NOT EXISTS _syncline_capture (enabled INTEGER NOT NULL)',
  'INSERT INTO _syncline_capture (enabled) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM _syncline_capture)',
  // A crash cannot leave capture off (the flag is set back inside the same transaction), but a
  // database copied mid-transaction by other tools could: start with capture on.
  'UPDATE _syncline_capture SET enabled = 1',
];

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
 * pending-writes.ts), `_syncline_state`, `_syncline_capture` and the capture triggers of every synced table, in the transaction `run`
 * belongs to. Triggers are re-created every time, so they follow the table's current columns after
 * a migration.
 *
 * @example
 *   await clientTransaction(db, false, (run) => installClientTables(run, appSchema));
 */
export async function installClientTables(run: Run, schema: Schema): Promise<void> {
  for (const statement of clientTablesSql(schema)) await run(statement);
}
