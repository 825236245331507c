import type { Database } from '../../database/database.js';
import type { QueryScope } from '../../database/query-scope.js';
import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { is } from '../../entity.js';
import { DatabaseError, UsageError } from '../../errors.js';
import { transactionRunner } from '../../migrations/sql-runner.js';
import type { AnyColumn } from '../../schema/column.js';
import type { AnyTable } from '../../schema/table.js';
import { Backoff } from '../client/backoff.js';
import { MAX_ROW_BYTES } from '../protocol/message-size.js';
import { rowSizeCheck, rowSizeEstimate, rowSizeRaise } from './row-size-guard.js';

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
 * The columns of a ticked change as the reader takes them (`t` the ticks, `c` the log): ids as
 * text (JavaScript numbers would lose digits), JSON as text (the reader parses it), the time as
 * epoch ms.
 *
 * @example
 *   const sql = `SELECT ${CHANGE_COLUMNS} FROM _syncline_ticks t JOIN _syncline_changes c ON c.id = t.change_id`;
 */
export const CHANGE_COLUMNS = `t.tick::text AS tick, c.id::text AS id, c.txid::text AS txid, c.table_name,
  c.op::text AS op, c.pk::text AS pk, c.old_pk::text AS old_pk, c."row"::text AS "row",
  c.old_values::text AS old_values, c.hlc, c.origin, c.mutation_id::text AS mutation_id,
  (extract(epoch FROM c.changed_at) * 1000)::float8 AS changed_ms`;

/** The stamp of rows logged before stamps existed: older than every real stamp. */
const OLDEST_STAMP = '0000000000000-00000-postgres';

/** PostgreSQL's clock as a stamp's wall part: 13 digits of epoch milliseconds (SQL text). */
const DB_WALL = "lpad(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint::text, 13, '0')";

/**
 * The statement a push runs before it commits (a CTE of `writeStamps` in apply-push.ts) to keep
 * `_syncline_clock` at the highest stamp written that is not behind PostgreSQL's clock, `$n` its
 * newest stamp: the row is locked and written only when that stamp is, so pushes from clients with
 * sound clocks never touch it.
 *
 * @example
 *   const sql = `WITH clock AS (${raiseClockHigh('$4')}) SELECT 1`;
 */
export function raiseClockHigh(param: string): string {
  return `UPDATE _syncline_clock SET high = ${param} WHERE id = 1 AND high COLLATE "C" < ${param}
     AND left(${param}, 13) >= ${DB_WALL}`;
}

/**
 * The trigger functions name every app column through its row (`n."col"`, `OLD."col"`), so an
 * unqualified name in their SQL is always one of their own variables, whatever the app's columns
 * are called (a column named `stamp` or `origin` would otherwise make the name ambiguous).
 */
const VARIABLE_CONFLICT = '#variable_conflict use_variable';

/**
 * Who is writing, in every trigger function: a push names its stamp, client and batch in
 * transaction-local settings (apply-push.ts); without them the write is a direct one, stamped
 * from PostgreSQL's clock. A mutator run for a push (`syncline.mutator` set) writes as a direct
 * write does, the trigger keeping the stamps of every row, but with the mutation's stamp and
 * logged as the client's: its writes are ordered with that client's other batches by their stamps.
 */
const WRITER_VARIABLES = `stamp text := NULLIF(current_setting('syncline.hlc', true), '');
     direct boolean := stamp IS NULL OR coalesce(current_setting('syncline.mutator', true), '') <> '';
     origin text;
     mutation bigint;
     writers jsonb := NULLIF(current_setting('syncline.writers', true), '')::jsonb;`;
const WRITER_SETUP = `IF stamp IS NULL THEN
       stamp := _syncline_db_stamp();
     ELSE
       origin := NULLIF(current_setting('syncline.origin', true), '');
       mutation := NULLIF(current_setting('syncline.mutation', true), '')::bigint;
     END IF;`;

/**
 * The log tables and the trigger functions. The change log holds one row per changed row; its
 * `txid` is what the reader's snapshot arithmetic works on (docs/design.md section 4). The ticks table
 * maps the reader's gap-free positions to change ids, kept apart so that the log itself is only
 * ever appended to. The reader state row holds the last tick and the snapshot it was read at.
 * `_syncline_stamps`, `_syncline_clients` and `_syncline_rejections` are the push side's
 * (docs/sync-internals.md).
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
     old_values jsonb,
     hlc text NOT NULL,
     origin text,
     mutation_id bigint,
     changed_at timestamptz NOT NULL DEFAULT now()
   )`,
  // Logs made by an older version lack the stamp columns. ALTER TABLE takes an exclusive lock even
  // when there is nothing to add, which would stall every writer behind the longest open
  // transaction on each server start, so the catalog is asked first.
  `DO $upgrade$ BEGIN
     IF (SELECT count(*) FROM pg_attribute WHERE attrelid = '_syncline_changes'::regclass AND NOT attisdropped
           AND attname IN ('old_values', 'hlc', 'origin', 'mutation_id')) < 4 THEN
       ALTER TABLE _syncline_changes
         ADD COLUMN IF NOT EXISTS old_values jsonb,
         ADD COLUMN IF NOT EXISTS hlc text NOT NULL DEFAULT '${OLDEST_STAMP}',
         ADD COLUMN IF NOT EXISTS origin text,
         ADD COLUMN IF NOT EXISTS mutation_id bigint;
       ALTER TABLE _syncline_changes ALTER COLUMN hlc DROP DEFAULT;
     END IF;
   END $upgrade$`,
  'CREATE INDEX IF NOT EXISTS _syncline_changes_txid_idx ON _syncline_changes (txid)',
  // No index on change_id: nothing looks a tick up by its change, and the reader ticks each change
  // once by construction (one reader at a time, each taking what the previous snapshot did not
  // see). A second index took about a third of the time ticking a 100,000-row transaction takes.
  `CREATE TABLE IF NOT EXISTS _syncline_ticks (
     tick bigint PRIMARY KEY,
     change_id bigint NOT NULL
   )`,
  // Installs made before that have change_id UNIQUE: drop it (the catalog is asked first, as above).
  `DO $upgrade$ DECLARE unique_name name; BEGIN
     FOR unique_name IN SELECT conname FROM pg_constraint
         WHERE conrelid = '_syncline_ticks'::regclass AND contype = 'u' LOOP
       EXECUTE format('ALTER TABLE _syncline_ticks DROP CONSTRAINT %I', unique_name);
     END LOOP;
   END $upgrade$`,
  `CREATE TABLE IF NOT EXISTS _syncline_reader_state (
     id int PRIMARY KEY CHECK (id = 1),
     last_tick bigint NOT NULL,
     snapshot pg_snapshot
   )`,
  'INSERT INTO _syncline_reader_state (id, last_tick, snapshot) VALUES (1, 0, NULL) ON CONFLICT (id) DO NOTHING',
  `CREATE TABLE IF NOT EXISTS _syncline_stamps (
     table_name text NOT NULL,
     pk jsonb NOT NULL,
     cols jsonb NOT NULL DEFAULT '{}',
     created text,
     deleted text,
     image jsonb,
     PRIMARY KEY (table_name, pk)
   )`,
  // Stamps made by an older version lack the image of deleted rows (asked first, as above).
  `DO $upgrade$ BEGIN
     IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '_syncline_stamps'::regclass
           AND attname = 'image' AND NOT attisdropped) THEN
       ALTER TABLE _syncline_stamps ADD COLUMN IF NOT EXISTS image jsonb;
     END IF;
   END $upgrade$`,
  `CREATE TABLE IF NOT EXISTS _syncline_clients (
     client_id text PRIMARY KEY,
     last_mutation_id bigint NOT NULL,
     user_id text,
     updated_at timestamptz
   )`,
  `CREATE TABLE IF NOT EXISTS _syncline_rejections (
     client_id text NOT NULL,
     mutation_id bigint NOT NULL,
     reason text NOT NULL,
     PRIMARY KEY (client_id, mutation_id)
   )`,
  // The highest stamp a committed push wrote that was not behind PostgreSQL's clock when it
  // committed (apply-push.ts moves it; a rejected batch rolls its move back). A client whose clock
  // runs ahead (the server allows up to a minute) stamps its writes in the future, and a direct
  // write stamped from PostgreSQL's clock alone would lose to writes it came after: its update
  // overwritten again by a late push of an older change, its delete undone by a client that kept
  // the row. Only pushes ahead of the clock move it, so others never wait on this row.
  `CREATE TABLE IF NOT EXISTS _syncline_clock (
     id int PRIMARY KEY CHECK (id = 1),
     high text NOT NULL
   )`,
  `INSERT INTO _syncline_clock (id, high) VALUES (1, '${OLDEST_STAMP}') ON CONFLICT (id) DO NOTHING`,
  // A direct write's stamp, in encodeHlc's form (13 digits of wall ms, a 5-hex-digit counter, node
  // id "postgres"): PostgreSQL's clock, or just after the clock's high mark when that is not
  // behind it, as a hybrid logical clock would (the counter carries into the next millisecond, it
  // never overflows). Two direct writes may share a stamp; that only matters between direct
  // writes, which are ordered by their locks anyway.
  `CREATE OR REPLACE FUNCTION _syncline_db_stamp() RETURNS text LANGUAGE sql VOLATILE AS $fn$
     SELECT CASE
         WHEN c.high IS NULL OR left(c.high, 13) < w.wall THEN w.wall || '-00000-postgres'
         WHEN substr(c.high, 15, 5) < 'fffff' THEN left(c.high, 14)
           || lpad(to_hex(('x' || lpad(substr(c.high, 15, 5), 8, '0'))::bit(32)::int + 1), 5, '0') || '-postgres'
         ELSE lpad((left(c.high, 13)::bigint + 1)::text, 13, '0') || '-00000-postgres'
       END
       FROM (SELECT ${DB_WALL} AS wall) w LEFT JOIN _syncline_clock c ON c.id = 1
   $fn$`,
  // The reader's whole step in one statement, so one round trip (ChangeLogReader.readNew): under
  // the advisory lock, tick every change whose transaction is visible in the current snapshot and
  // was not in the previous read's, move the state on, and return one row with the batch's first
  // and last tick followed by the first `page` changes (all of them for NULL). Each statement of a
  // function takes a fresh snapshot, so the state read after the lock sees the previous reader's
  // commit. The tick INSERT is planned for its values (EXECUTE), as a statement sent by a client
  // would be: a generic plan knows no snapshot bounds and could scan the whole log.
  `CREATE OR REPLACE FUNCTION _syncline_read_new(page bigint)
     RETURNS TABLE (batch_from text, batch_to text, tick text, id text, txid text, table_name text,
       op text, pk text, old_pk text, "row" text, old_values text, hlc text, origin text,
       mutation_id text, changed_ms float8)
     LANGUAGE plpgsql VOLATILE AS $fn$
   #variable_conflict use_column
   DECLARE
     first_tick bigint;
     previous pg_snapshot;
     current_snapshot pg_snapshot;
     ticked bigint;
   BEGIN
     PERFORM pg_advisory_xact_lock(${ADVISORY_LOCK_CLASS}, hashtext(current_schema() || '/ticks'));
     SELECT s.last_tick, s.snapshot INTO first_tick, previous FROM _syncline_reader_state s WHERE s.id = 1;
     IF NOT FOUND THEN
       RAISE EXCEPTION 'the change log is not installed; call installCapture() first' USING ERRCODE = '55000';
     END IF;
     current_snapshot := pg_current_snapshot();
     IF previous IS NULL THEN
       EXECUTE 'INSERT INTO _syncline_ticks (tick, change_id)
          SELECT $1 + row_number() OVER (ORDER BY c.txid, c.id), c.id FROM _syncline_changes c
           WHERE c.txid < pg_snapshot_xmax($2) AND pg_visible_in_snapshot(c.txid, $2)'
         USING first_tick, current_snapshot;
     ELSE
       EXECUTE 'INSERT INTO _syncline_ticks (tick, change_id)
          SELECT $1 + row_number() OVER (ORDER BY c.txid, c.id), c.id FROM _syncline_changes c
           WHERE c.txid < pg_snapshot_xmax($2) AND pg_visible_in_snapshot(c.txid, $2)
             AND c.txid >= pg_snapshot_xmin($3) AND NOT pg_visible_in_snapshot(c.txid, $3)'
         USING first_tick, current_snapshot, previous;
     END IF;
     GET DIAGNOSTICS ticked = ROW_COUNT;
     UPDATE _syncline_reader_state SET last_tick = first_tick + ticked, snapshot = current_snapshot WHERE id = 1;
     batch_from := first_tick::text;
     batch_to := (first_tick + ticked)::text;
     RETURN NEXT;
     IF ticked > 0 AND (page IS NULL OR page > 0) THEN
       RETURN QUERY SELECT NULL::text, NULL::text, ${CHANGE_COLUMNS}
         FROM _syncline_ticks t JOIN _syncline_changes c ON c.id = t.change_id
        WHERE t.tick > first_tick ORDER BY t.tick LIMIT least(ticked, page);
     END IF;
   END
   $fn$`,
  `CREATE OR REPLACE FUNCTION _syncline_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $fn$
   BEGIN
     PERFORM pg_notify('${CHANGES_CHANNEL}', '');
     RETURN NULL;
   END
   $fn$`,
];

/** bigint and numeric (also under a custom type): JSON numbers would lose digits in JavaScript. */
const EXACT_DECIMAL = /^\s*(bigint|int8|numeric|decimal)\b/i;

/**
 * `columns` of the row `row` (an alias in SQL) as a JSON object in the change log's form: bigint
 * and numeric as strings, everything else as `to_jsonb` writes it. For reading values an update
 * left out of its logged row (UNCHANGED_LOGGED_BYTES) from the table itself.
 *
 * @example
 *   const sql = `SELECT ${loggedColumnsSql(db, [todos.note], 't')}::text FROM todos t`;
 */
export function loggedColumnsSql(db: QueryScope, columns: readonly AnyColumn[], row: string): string {
  const isDecimal = (c: AnyColumn) => EXACT_DECIMAL.test(db.dialect.physicalType(c.type).sqlType);
  const pairs = columns.map(
    (c) => `${literal(c.name)}, to_jsonb(${row}.${quoteIdentifier(c.name)}${isDecimal(c) ? '::text' : ''})`,
  );
  return `jsonb_build_object(${pairs.join(', ')})`;
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * A name for one of the table's own capture functions (`_syncline_capture_` for inserts, deletes
 * and TRUNCATE, `_syncline_update_` for updates), within PostgreSQL's 63-byte identifiers.
 */
function captureFunctionName(table: AnyTable, prefix = '_syncline_capture_'): string {
  const name = table.$name;
  if (name.length <= 40 && /^[\x20-\x7e]*$/.test(name)) return `${prefix}${name}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return `${prefix}${name.replace(/[^\w]/g, '').slice(0, 24)}_${(hash >>> 0).toString(16)}`;
}

/**
 * The tombstone a delete leaves, whoever made it: the later of the stored one and `stamp` (SQL
 * text for `ON CONFLICT ... DO UPDATE SET deleted = ...`).
 */
const LATER_TOMBSTONE = `CASE WHEN s.deleted COLLATE "C" > excluded.deleted THEN s.deleted ELSE excluded.deleted END`;

/**
 * The `cols` of a row written whole by a direct write: every column stamped `stamp` (a variable of
 * the trigger body), built from a JSON template of the column names.
 */
function stampedWholeRow(table: AnyTable): string {
  const template = JSON.stringify(Object.fromEntries(table.$columnList.map((c) => [c.name, '@'])));
  return `replace(${literal(template)}, '"@"', '"' || stamp || '"')::jsonb`;
}

/** `CREATE OR REPLACE FUNCTION name() RETURNS trigger` with the plpgsql `body`. */
function triggerFunction(name: string, body: string): string {
  const tag = dollarTag(body);
  return `CREATE OR REPLACE FUNCTION ${quoteIdentifier(name)}() RETURNS trigger
    LANGUAGE plpgsql AS ${tag}${body}${tag}`;
}

/** A dollar-quote tag that `body` does not contain (names end up in bodies). */
function dollarTag(body: string): string {
  let tag = '$fn$';
  for (let i = 1; body.includes(tag); i++) tag = `$fn${i}$`;
  return tag;
}

/**
 * The largest unchanged value an update logs again: an update logs the columns it changed, and of
 * the others only those up to this size (in bytes, as `unchangedValueBytes` estimates it), so a
 * small change to a row holding a 900 KB document logs a few hundred bytes, not the document.
 * Key columns, fixed-width types and every column of a key change are always logged. Whoever
 * needs an omitted value reads it from the table: a shape testing that column
 * (shape-filter.ts), a client that must create the row (it fetches it whole).
 *
 * @example
 *   const logged = await db.execute(sql`SELECT "row" FROM _syncline_changes WHERE op = 'U'`); // no big unchanged values
 */
export const UNCHANGED_LOGGED_BYTES = 1024;

/** Types whose values are always small: logged whether they changed or not. */
const FIXED_WIDTH =
  /^\s*(smallint|integer|int|int2|int4|int8|bigint|serial|bigserial|boolean|bool|real|double precision|float4|float8|numeric|decimal|date|time|timestamp|timestamptz|uuid)\b/i;

/**
 * A value's size in SQL, read from its header without detoasting it: the raw length of text, json
 * and bytea, the stored size of anything else (jsonb, arrays, custom types).
 */
function unchangedValueBytes(c: AnyColumn, type: string, row: string): string {
  const cell = `${row}.${quoteIdentifier(c.name)}`;
  if (/^\s*bytea\b/i.test(type)) return `octet_length(${cell})`;
  if (/^\s*(text|varchar|character varying|char|character|bpchar|citext|json)\b/i.test(type))
    return `octet_length(${cell}::text)`;
  return `pg_column_size(${cell})`;
}

/**
 * The transaction-local setting through which a statement's key changes reach its statement-level
 * update capture: the id of the first change the statement's move trigger logged, under a name of
 * the table's own and of the trigger depth (SQL text), so a statement run by a trigger of another
 * (deeper) never takes an outer statement's moves, nor one table's statement another's.
 */
function movedSetting(table: AnyTable): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < table.$name.length; i++) hash = Math.imul(hash ^ table.$name.charCodeAt(i), 0x01000193);
  return `'syncline.moved_${(hash >>> 0).toString(16)}_' || pg_trigger_depth()`;
}

/** SQL of the update capture functions: a column's JSON as the log holds it, and the key's. */
function updateSql(isDecimal: (c: AnyColumn) => boolean) {
  const json = (row: string, c: AnyColumn) =>
    `to_jsonb(${row}.${quoteIdentifier(c.name)}${isDecimal(c) ? '::text' : ''})`;
  const object = (row: string, columns: readonly AnyColumn[]) =>
    `jsonb_build_object(${columns.map((c) => `${literal(c.name)}, ${json(row, c)}`).join(', ')})`;
  return { json, object };
}

/**
 * Whether an update changed the row's key, as the trigger's WHEN tests it: a key column whose JSON
 * value changed (the same test that finds the changed columns).
 */
function keyChangedSql(table: AnyTable, isDecimal: (c: AnyColumn) => boolean): string {
  const { json } = updateSql(isDecimal);
  return table.$primaryKeyColumns
    .map((c) => `${json('OLD', c)} IS DISTINCT FROM ${json('NEW', c)}`)
    .join(' OR ');
}

/**
 * Updates are captured per statement from its transition tables, set-based as inserts are: one
 * statement logs every changed row and stamps it, so an UPDATE of many rows costs a few joins,
 * not a function call and three statements per row. Old and new rows are paired by key, which is
 * right for every row whose key stayed (old keys are unique, new keys are unique, so no other row
 * can take or leave a key that stayed); rows whose key changed cannot be paired so (two rows may
 * swap keys), and are captured per row by `moveCaptureDdl`, which names the first change it logs
 * in `movedSetting` so that this function leaves their keys out. It logs the new row (without
 * unchanged values over UNCHANGED_LOGGED_BYTES), the old values of the columns that changed
 * (rows where none did are not logged); a direct write, and a row a push changes without naming
 * it (a foreign key's action), also stamps the changed columns in `_syncline_stamps`. A column
 * changed when its JSON value did, as the log holds it (bigint and numeric as strings, so no digit
 * is lost on the way to JavaScript). Generated names (`c0`, `o0`, `b0`, ...) stand for the
 * columns inside the statement, so no column name can collide with them.
 */
function updateCaptureDdl(
  table: AnyTable,
  isDecimal: (c: AnyColumn) => boolean,
  sqlType: (c: AnyColumn) => string,
  maxRowBytes: number,
): string {
  const { json, object } = updateSql(isDecimal);
  const columns = table.$columnList;
  const keys = table.$primaryKeyColumns;
  const keyNames = new Set(keys.map((c) => c.name));
  const omissible = (c: AnyColumn) => !keyNames.has(c.name) && !FIXED_WIDTH.test(sqlType(c));
  const decimals = columns.filter(isDecimal);
  const image = decimals.length === 0 ? 'to_jsonb(n.*)' : `to_jsonb(n.*) || ${object('n', decimals)}`;
  const name = literal(table.$name);
  const each = (f: (c: AnyColumn, i: number) => string, list = columns) =>
    list.map((c) => f(c, columns.indexOf(c))).join(', ');
  const names = (f: (c: AnyColumn, i: number) => string, list = columns) =>
    `array_remove(ARRAY[${each((c, i) => `CASE WHEN ${f(c, i)} THEN ${literal(c.name)} END`, list)}]::text[], NULL)`;
  const big = columns.filter(omissible);
  // One pass over the pairs (OFFSET 0 keeps each column's test from being computed again where it
  // is used), then the changed rows: their old values and the names of what did not change.
  const changes = (exclude: string) => `WITH d AS MATERIALIZED (
       SELECT p.k, p.img, p.bytes,
         jsonb_build_object(${each((c, i) => `${literal(c.name)}, CASE WHEN p.c${i} THEN to_jsonb(p.o${i}${isDecimal(c) ? '::text' : ''}) END`)})
           - ${names((_, i) => `NOT p.c${i}`)} AS old_values,
         ${names((_, i) => `NOT p.c${i}`)} AS unchanged,
         ${big.length === 0 ? `'{}'::text[]` : names((_, i) => `NOT p.c${i} AND p.b${i}`, big)} AS omitted
       FROM (SELECT ${object('n', keys)} AS k, ${image} AS img,
               ${rowSizeEstimate(table, 'n', sqlType)} AS bytes,
               ${each((c, i) => `${json('o', c)} IS DISTINCT FROM ${json('n', c)} AS c${i}`)},
               ${each((c, i) => `o.${quoteIdentifier(c.name)} AS o${i}`)}
               ${big.map((c) => `, ${unchangedValueBytes(c, sqlType(c), 'n')} > ${UNCHANGED_LOGGED_BYTES} AS b${columns.indexOf(c)}`).join('')}
             FROM old_rows AS o JOIN new_rows AS n ON ${object('o', keys)} = ${object('n', keys)}${exclude}
             OFFSET 0) AS p
       WHERE ${columns.map((_, i) => `p.c${i}`).join(' OR ')}),
     stamped AS (
       INSERT INTO _syncline_stamps AS s (table_name, pk, cols)
         SELECT ${name}, d.k, jsonb_build_object(${each((c) => `${literal(c.name)}, stamp`)}) - d.unchanged FROM d WHERE stamps_here
         ON CONFLICT (table_name, pk) DO UPDATE SET cols = s.cols || excluded.cols),
     logged AS (
       INSERT INTO _syncline_changes (table_name, op, pk, "row", old_values, hlc, origin, mutation_id)
         SELECT ${name}, 'U', d.k, CASE WHEN d.omitted = '{}' THEN d.img ELSE d.img - d.omitted END,
           d.old_values, stamp, origin, mutation FROM d)
     SELECT max(d.bytes) FILTER (WHERE d.bytes > ${maxRowBytes}) FROM d`;
  // The keys this statement's move trigger logged (see movedSetting).
  const moved = `
               WHERE NOT EXISTS (SELECT 1 FROM _syncline_changes AS m
                 WHERE m.id >= moved_from AND m.txid = pg_current_xact_id() AND m.table_name = ${name}
                   AND m.old_pk IS NOT NULL AND m.pk = ${object('n', keys)})`;
  const body = `
   ${VARIABLE_CONFLICT}
   DECLARE
     ${WRITER_VARIABLES}
     stamps_here boolean;
     moved_from bigint := NULLIF(current_setting(${movedSetting(table)}, true), '')::bigint;
     too_big bigint;
   BEGIN
     ${WRITER_SETUP}
     -- A push stamps the rows it updates itself (it names the table in syncline.updating while it
     -- does); rows it changes without naming them (a foreign key's ON UPDATE CASCADE or ON DELETE
     -- SET NULL, an app's trigger) are stamped here with its stamp, as direct writes are.
     stamps_here := direct OR current_setting('syncline.updating', true) IS DISTINCT FROM ${name};
     IF moved_from IS NULL THEN
       ${changes('')} INTO too_big;
     ELSE
       PERFORM set_config(${movedSetting(table)}, '', true);
       ${changes(moved)} INTO too_big;
     END IF;
     IF too_big IS NOT NULL THEN
       ${rowSizeRaise('too_big', maxRowBytes)}
     END IF;
     RETURN NULL;
   END
   `;
  return triggerFunction(captureFunctionName(table, '_syncline_update_'), body);
}

/**
 * An update that changes a row's key is captured per row (its trigger fires only then): a new key
 * is a new row. It logs the whole new row, the old values of the columns that changed and the old
 * key; a direct write, and a row a push changes without naming it, leaves a tombstone and the
 * image for the old key and stamps the new one whole. It names its first change in `movedSetting`
 * for the statement's set-based capture (`updateCaptureDdl`), which leaves these rows to it.
 */
function moveCaptureDdl(table: AnyTable, isDecimal: (c: AnyColumn) => boolean, sizeCheck: string): string {
  const { json, object } = updateSql(isDecimal);
  const decimals = table.$columnList.filter(isDecimal);
  const image = (row: 'OLD' | 'NEW') =>
    decimals.length === 0 ? `to_jsonb(${row})` : `to_jsonb(${row}) || ${object(row, decimals)}`;
  const keys = table.$primaryKeyColumns;
  const name = literal(table.$name);
  const body = `
   ${VARIABLE_CONFLICT}
   DECLARE
     changed jsonb := '{}';
     key jsonb := ${object('NEW', keys)};
     old_key jsonb := ${object('OLD', keys)};
     logged bigint;
     taken boolean;
     ${WRITER_VARIABLES}
   BEGIN
     ${WRITER_SETUP}
     ${table.$columnList
       .map(
         (c) => `IF ${json('OLD', c)} IS DISTINCT FROM ${json('NEW', c)} THEN
       changed := changed || jsonb_build_object(${literal(c.name)}, ${json('OLD', c)});
     END IF;`,
       )
       .join('\n     ')}
     ${sizeCheck}
     -- A push stamps the rows it updates itself (see updateCaptureDdl).
     IF direct OR current_setting('syncline.updating', true) IS DISTINCT FROM ${name} THEN
       -- The old key is deleted (its image kept as a delete keeps it), unless another row of the
       -- statement took it (two rows swapped keys: that row's move stamps it whole); the new key
       -- was written whole.
       EXECUTE format(${literal(`SELECT EXISTS (SELECT 1 FROM %I.%I WHERE ${keys.map((c, i) => `${quoteIdentifier(c.name).replaceAll('%', '%%')} = $${i + 1}`).join(' AND ')})`)},
         TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO taken USING ${keys.map((c) => `OLD.${quoteIdentifier(c.name)}`).join(', ')};
       IF NOT taken THEN
         INSERT INTO _syncline_stamps AS s (table_name, pk, deleted, image) VALUES (${name}, old_key, stamp, ${image('OLD')})
           ON CONFLICT (table_name, pk) DO UPDATE SET deleted = ${LATER_TOMBSTONE}, image = excluded.image;
       END IF;
       INSERT INTO _syncline_stamps AS s (table_name, pk, cols, created, deleted, image)
         VALUES (${name}, key, ${stampedWholeRow(table)}, stamp, NULL, NULL)
         ON CONFLICT (table_name, pk) DO UPDATE SET cols = excluded.cols, created = excluded.created, deleted = NULL, image = NULL;
     END IF;
     INSERT INTO _syncline_changes AS c (table_name, op, pk, old_pk, "row", old_values, hlc, origin, mutation_id)
       VALUES (${name}, 'U', key, old_key, ${image('NEW')}, changed, stamp, origin, mutation) RETURNING c.id INTO logged;
     IF current_setting(${movedSetting(table)}, true) IS NULL OR current_setting(${movedSetting(table)}, true) = '' THEN
       PERFORM set_config(${movedSetting(table)}, logged::text, true);
     END IF;
     RETURN NULL;
   END
   `;
  return triggerFunction(captureFunctionName(table, '_syncline_move_'), body);
}

/**
 * Inserts and deletes are captured per statement from its transition table: two set-based
 * statements instead of two statements per row, which is what keeps a bulk insert fast (a delete
 * logs and leaves its tombstones in one). Each table gets its own function so that PostgreSQL
 * plans those statements once per session (a shared function would need dynamic SQL, planned on
 * every write). A push sets syncline.hlc and stamps the rows it inserts itself; without it the
 * write is a direct one, stamped here. Deleted rows get their tombstone and image here whoever
 * deleted them, a push included (its cascades are rows it never named).
 */
function statementCaptureDdl(
  table: AnyTable,
  isDecimal: (c: AnyColumn) => boolean,
  sizeCheck: string,
): string {
  const cell = (c: AnyColumn) => `n.${quoteIdentifier(c.name)}${isDecimal(c) ? '::text' : ''}`;
  const pairs = (columns: readonly AnyColumn[]) =>
    columns.map((c) => `${literal(c.name)}, ${cell(c)}`).join(', ');
  const decimals = table.$columnList.filter(isDecimal);
  const key = `jsonb_build_object(${pairs(table.$primaryKeyColumns)})`;
  // `n.*`, not `n`: in a table with a column named n, a bare `n` is that column, not the row.
  const image =
    decimals.length === 0 ? 'to_jsonb(n.*)' : `to_jsonb(n.*) || jsonb_build_object(${pairs(decimals)})`;
  // Who wrote, as the trigger body names it; dynamic SQL (TRUNCATE, below) passes it as parameters.
  const WRITER = { stamp: 'stamp', origin: 'origin', mutation: 'mutation' };
  // A push that writes rows of several of its batches in one statement names each row's batch
  // and stamp in syncline.writers ([{ t, k, h, m }]: table, key, stamp, mutation id), which the
  // body turns into `named_writers`, an object by key text, once per statement. Each row looks
  // its writer up there: a join with the list would let PostgreSQL reorder the statement's rows
  // (a hash join), and the log must keep them in the order they were written.
  const log = (op: 'I' | 'D', source: string, w = WRITER) => {
    const named = w === WRITER;
    const writer = `named_writers -> ((${key})::text)`;
    const stamp = named ? `coalesce(${writer} ->> 0, ${w.stamp})` : w.stamp;
    const mutation = named ? `coalesce((${writer} ->> 1)::bigint, ${w.mutation})` : w.mutation;
    return `INSERT INTO _syncline_changes AS c (table_name, op, pk, "row", hlc, origin, mutation_id)
       SELECT ${literal(table.$name)}, '${op}', ${key}, ${image}, ${stamp}, ${w.origin}, ${mutation} FROM ${source} AS n`;
  };
  // Every delete, whoever made it (a push, a direct write, a foreign key's cascade, TRUNCATE),
  // leaves a tombstone with the deleting write's stamp and the row's image: the row as logged,
  // built once for the log and the stamps both (docs/sync-internals.md, "Stamps and conflicts").
  const removed = (source: string, w = WRITER) =>
    `WITH logged AS (${log('D', source, w)} RETURNING c.pk, c."row", c.hlc)
       INSERT INTO _syncline_stamps AS s (table_name, pk, deleted, image)
         SELECT ${literal(table.$name)}, logged.pk, logged.hlc, logged."row" FROM logged
         ON CONFLICT (table_name, pk) DO UPDATE SET deleted = ${LATER_TOMBSTONE}, image = excluded.image`;
  // TRUNCATE has no transition table: its BEFORE trigger reads the rows about to go from the
  // table itself. Dynamic SQL names the table and the log through the trigger's schema (the log
  // lives beside the tables, and the session's search_path may lack it).
  const ROWS = '\u0000rows\u0000';
  const fromTable = (statement: (source: string, w: typeof WRITER) => string) => {
    const text = statement(ROWS, { stamp: '$1', origin: '$2', mutation: '$3' })
      .replaceAll('%', '%%')
      .replace(ROWS, '%1$I.%2$I')
      .replace(/\b_syncline_(changes|stamps)\b/g, '%1$I._syncline_$1');
    return `EXECUTE format(${literal(text)}, TG_TABLE_SCHEMA, TG_TABLE_NAME) USING stamp, origin, mutation;`;
  };
  const body = `
   ${VARIABLE_CONFLICT}
   DECLARE
     ${WRITER_VARIABLES}
     named_writers jsonb;
   BEGIN
     ${WRITER_SETUP}
     IF writers IS NOT NULL THEN
       SELECT jsonb_object_agg(pw.k::text, jsonb_build_array(pw.h, pw.m)) INTO named_writers
         FROM jsonb_to_recordset(writers) AS pw(t text, k jsonb, h text, m bigint)
        WHERE pw.t = ${literal(table.$name)};
     END IF;
     IF TG_OP = 'INSERT' THEN
       ${sizeCheck}
       ${log('I', 'new_rows')};
       -- Under READ COMMITTED no other transaction can be writing stamps of these keys now: any
       -- writer of a key (its insert, delete, update or a push of it) holds or waits for the row
       -- this statement just inserted, and each statement here sees what committed before it. So
       -- when no key has stamps yet (a tombstone), they are inserted plainly: ON CONFLICT's
       -- speculative insert costs about as much again per row. The test probes the key index row
       -- by row (a scalar subquery, never turned into a join that reads every stamp of the
       -- table). Other isolation levels see no later commits, and take ON CONFLICT (a
       -- serialization failure, not a duplicate key, when a deleter committed meanwhile).
       IF direct AND current_setting('transaction_isolation') = 'read committed' AND NOT EXISTS (
           SELECT 1 FROM new_rows AS n
            WHERE (SELECT true FROM _syncline_stamps AS s WHERE s.table_name = ${literal(table.$name)} AND s.pk = ${key})) THEN
         INSERT INTO _syncline_stamps (table_name, pk, cols, created, deleted)
           SELECT ${literal(table.$name)}, ${key}, ${stampedWholeRow(table)}, stamp, NULL FROM new_rows AS n;
       ELSIF direct THEN
         INSERT INTO _syncline_stamps AS s (table_name, pk, cols, created, deleted)
           SELECT ${literal(table.$name)}, ${key}, ${stampedWholeRow(table)}, stamp, NULL
             FROM new_rows AS n
           ON CONFLICT (table_name, pk) DO UPDATE SET cols = excluded.cols, created = excluded.created, deleted = NULL, image = NULL;
       END IF;
     ELSIF TG_OP = 'DELETE' THEN
       ${removed('old_rows')};
     ELSE
       -- TRUNCATE: every row goes, as if deleted; a push never truncates, so this is a direct write.
       ${fromTable(removed)}
     END IF;
     RETURN NULL;
   END
   `;
  return triggerFunction(captureFunctionName(table), body);
}

function triggerDdl(db: Database, table: AnyTable, maxRowBytes: number): string[] {
  const keys = table.$primaryKeyColumns;
  if (keys.length === 0) {
    throw new UsageError(
      `installCapture(): the synced table "${table.$name}" has no primary key; give it one, or declare it with localTable()`,
    );
  }
  const sqlType = (c: AnyColumn) => db.dialect.physicalType(c.type).sqlType;
  const isDecimal = (c: AnyColumn) => EXACT_DECIMAL.test(sqlType(c));
  const name = quoteIdentifier(table.$name);
  const fn = quoteIdentifier(captureFunctionName(table));
  return [
    statementCaptureDdl(table, isDecimal, rowSizeCheck(table, 'new_rows', sqlType, maxRowBytes)),
    updateCaptureDdl(table, isDecimal, sqlType, maxRowBytes),
    moveCaptureDdl(table, isDecimal, rowSizeCheck(table, undefined, sqlType, maxRowBytes)),
    `CREATE OR REPLACE TRIGGER _syncline_capture_insert AFTER INSERT ON ${name}
       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
    `CREATE OR REPLACE TRIGGER _syncline_capture_delete AFTER DELETE ON ${name}
       REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
    `CREATE OR REPLACE TRIGGER _syncline_capture AFTER UPDATE ON ${name}
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION ${quoteIdentifier(captureFunctionName(table, '_syncline_update_'))}()`,
    // Only rows whose key changed; the WHEN is tested as each row is updated, so other updates
    // queue nothing for it.
    `CREATE OR REPLACE TRIGGER _syncline_capture_move AFTER UPDATE ON ${name}
       FOR EACH ROW WHEN (${keyChangedSql(table, isDecimal)})
       EXECUTE FUNCTION ${quoteIdentifier(captureFunctionName(table, '_syncline_move_'))}()`,
    `CREATE OR REPLACE TRIGGER _syncline_capture_truncate BEFORE TRUNCATE ON ${name}
       FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
    `CREATE OR REPLACE TRIGGER _syncline_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${name}
       FOR EACH STATEMENT EXECUTE FUNCTION _syncline_notify_changes()`,
  ];
}

/**
 * Names the log tables and the stamp function in a trigger function's body with their schema, so
 * a write made from a session whose search_path does not hold that schema (`INSERT INTO
 * app.todos ...` from a plain connection) still finds them.
 */
function qualifyFunctionBody(statement: string, schema: string): string {
  const start = statement.indexOf('$fn$');
  if (!statement.startsWith('CREATE OR REPLACE FUNCTION') || start < 0) return statement;
  const body = statement
    .slice(start)
    .replace(
      /(?<![\w."])_syncline_(changes|stamps|db_stamp|ticks|reader_state|clock)\b/g,
      `${quoteIdentifier(schema)}._syncline_$1`,
    );
  return statement.slice(0, start) + body;
}

/**
 * Installs server-side change capture (docs/sync-internals.md) in the database's current schema:
 * the change log `_syncline_changes`, the tick map `_syncline_ticks`, the reader state, the push
 * side's `_syncline_stamps`, `_syncline_clients` and `_syncline_rejections`, the function
 * `_syncline_db_stamp()`, and on every synced table (local tables are skipped) triggers that log
 * each inserted, deleted and updated row (set-wise, per statement, from its transition tables;
 * an update only when a column changed, with the old values of the changed columns, and per row
 * when its key changed), plus a
 * statement trigger that calls `pg_notify('syncline_changes', '')`.
 * Triggers see every writer: a write made straight to PostgreSQL is logged too, and stamped from
 * PostgreSQL's clock in `_syncline_stamps`, while a push names its stamp, client and batch through
 * the transaction settings `syncline.hlc`, `syncline.origin` and `syncline.mutation`. Safe to run
 * again, on an older install (it adds what is missing), and from several processes at once (one
 * transaction under an advisory lock); PostgreSQL 14 or newer.
 *
 * @example
 *   const db = await openDatabase(appSchema, postgres({ connectionString }));
 *   await installCapture(db, appSchema.tableList);
 */
export async function installCapture(
  db: Database,
  tables: readonly AnyTable[],
  options: InstallCaptureOptions = {},
): Promise<void> {
  if (db.dialect.name !== 'postgres') {
    throw new UsageError(
      'installCapture() works on PostgreSQL (or PGlite); SQLite clients capture into their outbox',
    );
  }
  const attempts = options.attempts ?? 20;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new UsageError(
      `installCapture(): attempts must be a whole number of at least 1, got ${String(attempts)}`,
    );
  }
  const maxRowBytes = options.maxRowBytes ?? MAX_ROW_BYTES;
  const synced = tables.filter((t) => !t.$local);
  const triggers = synced.map((t) => triggerDdl(db, t, maxRowBytes));
  const statements = [...LOG_DDL, ...triggers.flat()];
  const mark = `syncline capture ${fingerprint(statements)}`;
  // Re-creating the triggers locks every synced table and the log, and would deadlock with
  // writers that hold a table and wait for the log: skip it when this very install is in place.
  const triggerCount = statements.filter((s) => s.startsWith('CREATE OR REPLACE TRIGGER')).length;
  if (await installed(db, mark, triggerCount)) return;
  // Gives the writers we were in the way of time to finish: up to 50 ms, doubling to 1.6 s.
  const backoff = new Backoff({ initialMs: 50, maxMs: 1600 });
  for (let attempt = 1; ; attempt++) {
    try {
      await db.transaction(async (tx) => {
        const run = transactionRunner(tx);
        await run('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [ADVISORY_LOCK_CLASS]);
        // Each CREATE TRIGGER locks its table until commit, one table after the other. A writer
        // that holds a later table and then writes an earlier one would deadlock with us, and
        // PostgreSQL might pick the writer as the victim: waiting briefly and giving way (below)
        // means an app's transaction is never aborted because a sync server started.
        await run(`SET LOCAL lock_timeout = '${INSTALL_LOCK_TIMEOUT_MS}ms'`);
        const [{ schema }] = (await run('SELECT current_schema() AS schema')) as [{ schema: string }];
        for (const statement of statements) await run(qualifyFunctionBody(statement, schema));
        await run(`COMMENT ON TABLE _syncline_changes IS ${literal(mark)}`);
      });
      return;
    } catch (error) {
      if (!isLockConflict(error)) throw error;
      if (attempt >= attempts) {
        throw new DatabaseError(
          `installCapture(): the synced tables stayed locked by other transactions through ${attempts} attempts; ` +
            'end long-running transactions on them (pg_stat_activity shows them) and start again',
          (error as DatabaseError).code,
          { cause: error },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, backoff.next()));
    }
  }
}

/** How long the install waits for one table's lock before it gives way and tries again. */
const INSTALL_LOCK_TIMEOUT_MS = 250;
/**
 * How hard `installCapture` tries: `attempts` (default 20: at most about 30 s of giving way to writers)
 * before it fails with a DatabaseError naming the cause; and `maxRowBytes`, the largest synced row.
 *
 * @example
 *   await installCapture(db, appSchema.tableList, { attempts: 5 });
 */
export interface InstallCaptureOptions {
  readonly attempts?: number;
  /**
   * The largest row a synced table may hold, in bytes as sync carries it (estimated cheaply, see
   * `rowSizeEstimate`); a write that makes a row bigger fails with SQLSTATE 22001, and a push that
   * does is rejected. Default `MAX_ROW_BYTES` (16 MiB).
   */
  readonly maxRowBytes?: number;
}

/** lock_timeout ran out (55P03), or PostgreSQL chose this transaction as a deadlock's victim (40P01). */
function isLockConflict(error: unknown): boolean {
  return is(error, DatabaseError) && (error.code === '55P03' || error.code === '40P01');
}

/** Two FNV-1a hashes of the install's statements: what the comment on the log records. */
function fingerprint(statements: readonly string[]): string {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (const statement of statements) {
    for (let i = 0; i < statement.length; i++) {
      const unit = statement.charCodeAt(i);
      a = Math.imul(a ^ unit, 0x01000193) >>> 0;
      b = Math.imul(b ^ unit, 0x811c9dc5) >>> 0;
    }
  }
  return `${a.toString(16).padStart(8, '0')}${b.toString(16).padStart(8, '0')}`;
}

/**
 * True when the log carries this install's mark and every trigger it creates is there (a table
 * dropped and created again by a migration has lost its triggers). Reads the catalog only.
 */
async function installed(db: Database, mark: string, triggerCount: number): Promise<boolean> {
  const result = await db.run({
    sql: `SELECT obj_description(to_regclass('_syncline_changes'), 'pg_class') AS mark,
            (SELECT count(*)::int FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
              WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
                AND t.tgname LIKE '\\_syncline\\_%') AS triggers`,
    params: [],
    arrayMode: false,
    needsBigInt: false,
  });
  const row = result.rows[0] as { mark: string | null; triggers: number } | undefined;
  return row?.mark === mark && row.triggers === triggerCount;
}
