import type { Database } from '../../database/database.js';
import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { UsageError } from '../../errors.js';
import { transactionRunner } from '../../migrations/sql-runner.js';
import type { AnyTable } from '../../schema/table.js';

/**
 * The channel the capture triggers notify on (empty payload, so PostgreSQL folds the
 * notifications of one transaction into one). A sync server LISTENs here and then calls
 * `ChangeLogReader.readNew()`.
 *
 * @example
 *   const stop = await db.driver.listen!(CHANGES_CHANNEL, () => void reader.readNew());
 */
export const CHANGES_CHANNEL = 'syncline_changes';

/**
 * The key space of syncline's advisory locks: the first key of PostgreSQL's two-key form, the
 * second being a hash of the schema (and purpose), so databases in different schemas of one
 * server never wait on each other.
 *
 * @example
 *   await run('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [ADVISORY_LOCK_CLASS]);
 */
export const ADVISORY_LOCK_CLASS = 0x5c1e;

/**
 * The log tables and the trigger functions. The change log holds one row per changed row; its
 * `txid` is what the reader's snapshot arithmetic works on (DESIGN.md section 4). The ticks table
 * maps the reader's gap-free positions to change ids, kept apart so that the log itself is only
 * ever appended to. The reader state row holds the last tick and the snapshot it was read at.
 */
const LOG_DDL = [
  `CREATE TABLE IF NOT EXISTS _syncline_changes (
     id bigserial PRIMARY KEY,
     txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
     table_name text NOT NULL,
     op char(1) NOT NULL CHECK (op IN ('I', 'U', 'D')),
     pk jsonb NOT NULL,
     old_pk jsonb,
     "row" jsonb NOT NULL,
     changed_at timestamptz NOT NULL DEFAULT now()
   )`,
  'CREATE INDEX IF NOT EXISTS _syncline_changes_txid_idx ON _syncline_changes (txid)',
  `CREATE TABLE IF NOT EXISTS _syncline_ticks (
     tick bigint PRIMARY KEY,
     change_id bigint NOT NULL UNIQUE
   )`,
  `CREATE TABLE IF NOT EXISTS _syncline_reader_state (
     id int PRIMARY KEY CHECK (id = 1),
     last_tick bigint NOT NULL,
     snapshot pg_snapshot
   )`,
  'INSERT INTO _syncline_reader_state (id, last_tick, snapshot) VALUES (1, 0, NULL) ON CONFLICT (id) DO NOTHING',
  // One function for every table: the trigger's arguments are the primary key's column names.
  // The old key is kept only when an update changed it, so the old row can be removed downstream.
  `CREATE OR REPLACE FUNCTION _syncline_capture_row() RETURNS trigger LANGUAGE plpgsql AS $fn$
   DECLARE
     image jsonb;
     key jsonb;
     old_key jsonb;
   BEGIN
     IF TG_OP = 'DELETE' THEN image := to_jsonb(OLD); ELSE image := to_jsonb(NEW); END IF;
     SELECT jsonb_object_agg(k, image -> k) INTO key FROM unnest(TG_ARGV) AS k;
     IF TG_OP = 'UPDATE' THEN
       SELECT jsonb_object_agg(k, to_jsonb(OLD) -> k) INTO old_key FROM unnest(TG_ARGV) AS k;
       IF old_key = key THEN old_key := NULL; END IF;
     END IF;
     INSERT INTO _syncline_changes (table_name, op, pk, old_pk, "row")
       VALUES (TG_TABLE_NAME, left(TG_OP, 1), key, old_key, image);
     RETURN NULL;
   END
   $fn$`,
  `CREATE OR REPLACE FUNCTION _syncline_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $fn$
   BEGIN
     PERFORM pg_notify('${CHANGES_CHANNEL}', '');
     RETURN NULL;
   END
   $fn$`,
];

function triggerDdl(table: AnyTable): string[] {
  const keys = table.$primaryKeyColumns.map((c) => c.name);
  if (keys.length === 0) {
    throw new UsageError(
      `installCapture(): the synced table "${table.$name}" has no primary key; give it one, or declare it with localTable()`,
    );
  }
  const name = quoteIdentifier(table.$name);
  const args = keys.map((k) => `'${k.replaceAll("'", "''")}'`).join(', ');
  return [
    `CREATE OR REPLACE TRIGGER _syncline_capture AFTER INSERT OR UPDATE OR DELETE ON ${name}
       FOR EACH ROW EXECUTE FUNCTION _syncline_capture_row(${args})`,
    `CREATE OR REPLACE TRIGGER _syncline_notify AFTER INSERT OR UPDATE OR DELETE ON ${name}
       FOR EACH STATEMENT EXECUTE FUNCTION _syncline_notify_changes()`,
  ];
}

/**
 * Installs server-side change capture (DESIGN.md section 4) in the database's current schema: the
 * change log `_syncline_changes`, the tick map `_syncline_ticks`, the reader state, and on every
 * synced table (local tables are skipped) a row trigger that logs each insert, update and delete
 * (the new row, or the old one for a delete) plus a statement trigger that calls
 * `pg_notify('syncline_changes', '')`. Triggers see every writer, so writes other programs make
 * straight to PostgreSQL are captured too. Safe to run again (and from several processes at
 * once: it runs in one transaction under an advisory lock); PostgreSQL 14 or newer.
 *
 * @example
 *   const db = await openDatabase(appSchema, postgres({ connectionString }));
 *   await installCapture(db, appSchema.tableList);
 */
export async function installCapture(db: Database, tables: readonly AnyTable[]): Promise<void> {
  if (db.dialect.name !== 'postgres') {
    throw new UsageError(
      'installCapture() works on PostgreSQL (or PGlite); SQLite clients capture into their outbox',
    );
  }
  const synced = tables.filter((t) => !t.$local);
  const statements = [...LOG_DDL, ...synced.flatMap(triggerDdl)];
  await db.transaction(async (tx) => {
    const run = transactionRunner(tx);
    await run('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [ADVISORY_LOCK_CLASS]);
    for (const statement of statements) await run(statement);
  });
}
