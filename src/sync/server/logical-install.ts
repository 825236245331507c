import type { Database } from '../../database/database.js';
import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { UsageError } from '../../errors.js';
import { transactionRunner } from '../../migrations/sql-runner.js';
import type { AnyTable } from '../../schema/table.js';
import { ADVISORY_LOCK_CLASS, installCapture } from './capture.js';

/**
 * The publication and the replication slot of one database schema: the slot is PostgreSQL's
 * bookmark in the WAL for this schema's consumer, the publication the tables it decodes. Both
 * names hold the schema (and a hash of it), so schemas of one database never share them.
 *
 * @example
 *   const { slot, publication } = await logicalNames(db);
 */
export interface LogicalNames {
  readonly namespace: string;
  readonly slot: string;
  readonly publication: string;
}

/** The slot and publication names for the database's current schema. */
export async function logicalNames(db: Database): Promise<LogicalNames> {
  const { namespace } = (await one<{ namespace: string }>(db, 'SELECT current_schema() AS namespace'))!;
  let hash = 0x811c9dc5;
  for (let i = 0; i < namespace.length; i++) hash = Math.imul(hash ^ namespace.charCodeAt(i), 0x01000193);
  // Slot names take lower-case letters, digits and underscores, at most 63 of them.
  const base = `syncline_${namespace
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 36)}_${(hash >>> 0).toString(16)}`;
  return { namespace, slot: base, publication: base };
}

async function one<T>(db: Database, text: string, params: unknown[] = []): Promise<T | undefined> {
  const result = await db.run({ sql: text, params, arrayMode: false, needsBigInt: false });
  return result.rows[0] as T | undefined;
}

/**
 * The statement trigger that captures a TRUNCATE in logical mode: pgoutput tells a TRUNCATE
 * without its rows, so before the table is emptied its rows go into the WAL as logical messages
 * (500 rows each, numbers as text so no digit is lost), in the truncating transaction, and the
 * consumer logs them as deletes. Inserts, updates and deletes have no trigger in this mode.
 */
const TRUNCATE_FUNCTION = `CREATE OR REPLACE FUNCTION _syncline_logical_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
   DECLARE
     part jsonb;
   BEGIN
     FOR part IN EXECUTE format(
       'SELECT jsonb_agg(x.r) FROM (SELECT (SELECT jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = ''number''
            THEN to_jsonb(e.value #>> ''{}'') ELSE e.value END) FROM jsonb_each(to_jsonb(t.*)) e) AS r,
            (row_number() OVER () - 1) / 500 AS part_no FROM %I.%I t) x GROUP BY x.part_no', TG_TABLE_SCHEMA, TG_TABLE_NAME)
     LOOP
       PERFORM pg_logical_emit_message(true, 'syncline-truncate', jsonb_build_object('t', TG_TABLE_NAME, 'rows', part)::text);
     END LOOP;
     RETURN NULL;
   END
   $fn$`;

/** The trigger-mode triggers of a table, and this mode's, by name. */
const TRIGGER_MODE_TRIGGERS = [
  '_syncline_capture_insert',
  '_syncline_capture_delete',
  '_syncline_capture',
  '_syncline_capture_truncate',
  '_syncline_notify',
];
const TRUNCATE_TRIGGER = 'syncline_logical_truncate';

/**
 * Installs logical-replication capture (docs/design.md section 4, "Capture modes") on PostgreSQL
 * with `wal_level = logical`: the change log and the push side's tables as `installCapture` makes
 * them, but no capture triggers on the synced tables (those of the trigger mode are dropped),
 * REPLICA IDENTITY FULL on them (the WAL then holds the old values an update or delete needs), a
 * TRUNCATE trigger that puts the rows into the WAL, a publication of the synced tables, a slot
 * (created here, so the WAL is kept from now on even before a consumer runs) and the consumer's
 * state row. Safe to run again and from several servers at once.
 *
 * @example
 *   const names = await installLogicalCapture(db, appSchema.tableList);
 */
export async function installLogicalCapture(
  db: Database,
  tables: readonly AnyTable[],
  options: { maxRowBytes?: number } = {},
): Promise<LogicalNames> {
  if (db.driver.name === 'pglite' || db.dialect.name !== 'postgres') {
    throw new UsageError(
      "capture: 'logical' needs a PostgreSQL server (wal_level = logical); PGlite has no logical replication: use capture: 'triggers'",
    );
  }
  const synced = tables.filter((t) => !t.$local);
  for (const table of synced) {
    if (table.$primaryKeyColumns.length === 0) {
      throw new UsageError(
        `installLogicalCapture(): the synced table "${table.$name}" has no primary key; give it one, or declare it with localTable()`,
      );
    }
  }
  const level = await one<{ level: string }>(db, "SELECT current_setting('wal_level') AS level");
  if (level?.level !== 'logical') {
    throw new UsageError(
      `capture: 'logical' needs wal_level = logical on the PostgreSQL server (it is ${level?.level}); set it in postgresql.conf and restart PostgreSQL, or use capture: 'triggers'`,
    );
  }
  await installCapture(db, [], options);
  const names = await logicalNames(db);
  await db.transaction(async (tx) => {
    const run = transactionRunner(tx);
    await run('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [ADVISORY_LOCK_CLASS]);
    await run(`SET LOCAL lock_timeout = '10s'`);
    await run(`CREATE TABLE IF NOT EXISTS _syncline_logical_state (
       slot text PRIMARY KEY,
       applied_lsn pg_lsn NOT NULL,
       updated_at timestamptz
     )`);
    await run(TRUNCATE_FUNCTION);
    const present = (await run(
      `SELECT c.relname AS table_name, t.tgname AS trigger, c.relreplident AS identity
         FROM pg_class c LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1::text[])`,
      [synced.map((t) => t.$name)],
    )) as { table_name: string; trigger: string | null; identity: string }[];
    for (const table of synced) {
      const name = quoteIdentifier(table.$name);
      const mine = present.filter((p) => p.table_name === table.$name);
      for (const trigger of TRIGGER_MODE_TRIGGERS) {
        if (mine.some((p) => p.trigger === trigger)) await run(`DROP TRIGGER ${trigger} ON ${name}`);
      }
      if (mine.some((p) => p.identity !== 'f')) await run(`ALTER TABLE ${name} REPLICA IDENTITY FULL`);
      if (!mine.some((p) => p.trigger === TRUNCATE_TRIGGER)) {
        await run(`CREATE TRIGGER ${TRUNCATE_TRIGGER} BEFORE TRUNCATE ON ${name}
           FOR EACH STATEMENT EXECUTE FUNCTION _syncline_logical_truncate()`);
      }
    }
    const listed = synced
      .map((t) => `${quoteIdentifier(names.namespace)}.${quoteIdentifier(t.$name)}`)
      .join(', ');
    const publication = (await run(
      `SELECT array(SELECT tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1) AS tables,
              EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) AS present`,
      [names.publication],
    )) as { tables: string[]; present: boolean }[];
    const wanted = synced.map((t) => t.$name).sort();
    if (!publication[0]!.present) {
      await run(
        `CREATE PUBLICATION ${quoteIdentifier(names.publication)} ${listed ? `FOR TABLE ${listed}` : ''} WITH (publish = 'insert, update, delete')`,
      );
    } else if (JSON.stringify(publication[0]!.tables) !== JSON.stringify(wanted) && listed) {
      await run(`ALTER PUBLICATION ${quoteIdentifier(names.publication)} SET TABLE ${listed}`);
    }
  });
  await ensureSlot(db, names);
  return names;
}

/**
 * Creates the slot when it is missing (a first install, or dropped past the WAL limit) and the
 * consumer's state row. The publication exists before the slot: pgoutput reads it as of each
 * change it decodes. Outside a transaction: PostgreSQL creates a slot on its own.
 */
export async function ensureSlot(db: Database, names: LogicalNames): Promise<void> {
  const found = await one(db, 'SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [names.slot]);
  if (!found) {
    try {
      await db.run({
        sql: "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
        params: [names.slot],
        arrayMode: false,
        needsBigInt: false,
      });
    } catch (error) {
      // Another server created it at the same moment.
      if ((error as { code?: string }).code !== '42710') throw error;
    }
  }
  await db.run({
    sql: `INSERT INTO _syncline_logical_state (slot, applied_lsn, updated_at) VALUES ($1, '0/0', now())
          ON CONFLICT (slot) DO NOTHING`,
    params: [names.slot],
    arrayMode: false,
    needsBigInt: false,
  });
}

/**
 * Takes logical capture off a database that goes back to the trigger mode: the slot (so the WAL
 * is no longer kept for it), the publication, the TRUNCATE triggers and the consumer's state.
 * Nothing when it was never installed (one catalog read). `installCapture` then puts the triggers
 * back.
 *
 * @example
 *   await removeLogicalCapture(db, appSchema.tableList);
 *   await installCapture(db, appSchema.tableList);
 */
export async function removeLogicalCapture(db: Database, tables: readonly AnyTable[]): Promise<void> {
  const state = await one<{ present: string | null }>(
    db,
    "SELECT to_regclass('_syncline_logical_state')::text AS present",
  );
  if (!state?.present) return;
  const names = await logicalNames(db);
  const slot = await one<{ pid: number | null }>(
    db,
    'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
    [names.slot],
  );
  if (slot) {
    if (slot.pid !== null) await one(db, 'SELECT pg_terminate_backend($1)', [slot.pid]);
    await dropSlot(db, names.slot);
  }
  await db.transaction(async (tx) => {
    const run = transactionRunner(tx);
    await run('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [ADVISORY_LOCK_CLASS]);
    await run(`DROP PUBLICATION IF EXISTS ${quoteIdentifier(names.publication)}`);
    for (const table of tables.filter((t) => !t.$local)) {
      await run(`DROP TRIGGER IF EXISTS ${TRUNCATE_TRIGGER} ON ${quoteIdentifier(table.$name)}`);
    }
    await run('DROP TABLE IF EXISTS _syncline_logical_state');
  });
}

/** Drops a slot, waiting (up to 5 s) for a terminated consumer's walsender to let go of it. */
export async function dropSlot(db: Database, slot: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await one(
        db,
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
        [slot],
      );
      return;
    } catch (error) {
      // 55006: still active (the terminated walsender has not exited yet).
      if ((error as { code?: string }).code !== '55006' || attempt >= 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
