import { quoteIdentifier } from '../../dialect/quote-identifier.js';
import { sqlitePhysicalType } from '../../dialect/sqlite/sqlite-types.js';
import { UsageError } from '../../errors.js';
import type { Column } from '../../schema/column.js';
import type { AnyTable } from '../../schema/table.js';

/** SQLite's clock in ms since the epoch, with ms precision (julianday keeps fractions of a day). */
const WALL_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
const CAPTURE_ON = '(SELECT enabled FROM _syncline_capture) = 1';

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * A column's value as the trigger stores it in JSON: as SQLite holds it, except blobs (hex, since
 * JSON cannot hold blobs) and 64-bit integers (text, since a JSON number would lose digits past
 * 2^53 when parsed). `outboxToWire` in table-codec.ts undoes both.
 */
function stored(column: Column<any, any, any, any>, image: string): string {
  const ref = `${image}.${quoteIdentifier(column.name)}`;
  if (column.type.kind === 'blob') return `CASE WHEN ${ref} IS NULL THEN NULL ELSE hex(${ref}) END`;
  if (column.type.kind === 'bigint') return `CAST(${ref} AS TEXT)`;
  // A custom type stored as an INTEGER may hold any 64-bit value: its integers go as text too.
  if (holdsInteger64(column))
    return `CASE WHEN typeof(${ref}) = 'integer' THEN CAST(${ref} AS TEXT) ELSE ${ref} END`;
  return ref;
}

/**
 * True for a custom type that SQLite stores as an INTEGER (a 64-bit value, past 2^53): the outbox
 * keeps its integers as text, as it does a bigint's, and `TableCodec` reads them back as bigints.
 *
 * @example
 *   holdsInteger64(ledger.amount); // true for customType({ sqlType: { sqlite: 'INTEGER', postgres: 'BIGINT' } })
 */
export function holdsInteger64(column: Column<any, any, any, any>): boolean {
  return column.type.kind === 'custom' && /^\s*(big)?int/i.test(sqlitePhysicalType(column.type).sqlType);
}

function jsonObject(columns: readonly Column<any, any, any, any>[], image: string): string {
  return `json_object(${columns.map((c) => `${literal(c.name)}, ${stored(c, image)}`).join(', ')})`;
}

function changed(column: Column<any, any, any, any>): string {
  const name = quoteIdentifier(column.name);
  return `OLD.${name} IS NOT NEW.${name}`;
}

function jsonPath(column: Column<any, any, any, any>): string {
  return literal(`$."${column.name}"`);
}

/**
 * The names of the capture triggers of a table, for dropping and re-creating them.
 *
 * @example
 *   outboxTriggerNames('todos'); // ['_syncline_todos_insert', ...]
 */
export function outboxTriggerNames(table: string): string[] {
  return ['insert', 'update', 'update_key', 'delete'].map((op) => `_syncline_${table}_${op}`);
}

/**
 * The statements that (re)create the outbox triggers of one synced table: AFTER INSERT writes the
 * whole new row, AFTER UPDATE only the columns whose value changed (`OLD.c IS NOT NEW.c`; an update
 * that changes nothing writes nothing), AFTER DELETE the key alone. An update that changes the
 * primary key is written as a delete of the old key and an insert of the new row, as the protocol
 * has no key change. Every trigger fires only while `_syncline_capture.enabled` is 1. Existing
 * triggers are dropped first, so a table whose columns changed gets triggers that match them.
 *
 * @example
 *   for (const statement of outboxTriggerSql(todos)) await run(statement);
 */
export function outboxTriggerSql(table: AnyTable): string[] {
  const keys = table.$primaryKeyColumns;
  if (keys.length === 0) {
    throw new UsageError(
      `syncClient: table "${table.$name}" has no primary key, and a synced table needs one to identify its rows on every replica; add .primaryKey() to a column (or primaryKey({ columns }) to the table), or declare it with localTable() if it should stay on this device`,
    );
  }
  const columns = table.$columnList;
  for (const column of columns) {
    if (column.name.includes('"')) {
      throw new UsageError(
        `syncClient: column "${column.name}" of table "${table.$name}" has a double quote in its name, which the capture triggers cannot address in JSON; rename the column`,
      );
    }
  }
  const name = literal(table.$name);
  const target = quoteIdentifier(table.$name);
  const [insertName, updateName, keyName, deleteName] = outboxTriggerNames(table.$name).map(quoteIdentifier);
  const into = 'INSERT INTO _syncline_outbox (table_name, op, pk, "row", wall_ms) VALUES';
  const sameKey = keys.map((k) => `OLD.${quoteIdentifier(k.name)} IS NEW.${quoteIdentifier(k.name)}`);
  const values = columns.filter((c) => !keys.includes(c));
  const statements = outboxTriggerNames(table.$name).map(
    (trigger) => `DROP TRIGGER IF EXISTS ${quoteIdentifier(trigger)}`,
  );
  statements.push(
    `CREATE TRIGGER ${insertName} AFTER INSERT ON ${target} WHEN ${CAPTURE_ON} BEGIN
       ${into} (${name}, 'insert', ${jsonObject(keys, 'NEW')}, ${jsonObject(columns, 'NEW')}, ${WALL_MS});
     END`,
    `CREATE TRIGGER ${keyName} AFTER UPDATE ON ${target} WHEN ${CAPTURE_ON} AND NOT (${sameKey.join(' AND ')}) BEGIN
       ${into} (${name}, 'delete', ${jsonObject(keys, 'OLD')}, NULL, ${WALL_MS});
       ${into} (${name}, 'insert', ${jsonObject(keys, 'NEW')}, ${jsonObject(columns, 'NEW')}, ${WALL_MS});
     END`,
    `CREATE TRIGGER ${deleteName} AFTER DELETE ON ${target} WHEN ${CAPTURE_ON} BEGIN
       ${into} (${name}, 'delete', ${jsonObject(keys, 'OLD')}, NULL, ${WALL_MS});
     END`,
  );
  if (values.length > 0) {
    // json_remove drops the unchanged columns; a changed one points it at `$[0]`, which an object
    // never has, so that one call with a fixed argument list serves every combination.
    const unchanged = values.map((c) => `CASE WHEN ${changed(c)} THEN '$[0]' ELSE ${jsonPath(c)} END`);
    statements.push(
      `CREATE TRIGGER ${updateName} AFTER UPDATE ON ${target}
       WHEN ${CAPTURE_ON} AND ${sameKey.join(' AND ')} AND (${values.map(changed).join(' OR ')}) BEGIN
         ${into} (${name}, 'update', ${jsonObject(keys, 'NEW')}, json_remove(${jsonObject(values, 'NEW')}, ${unchanged.join(', ')}), ${WALL_MS});
       END`,
    );
  }
  return statements;
}

/**
 * Statements that drop the capture triggers of a table, for a table that is local (never synced).
 *
 * @example
 *   for (const statement of dropOutboxTriggerSql('drafts')) await run(statement);
 */
export function dropOutboxTriggerSql(table: string): string[] {
  return outboxTriggerNames(table).map((trigger) => `DROP TRIGGER IF EXISTS ${quoteIdentifier(trigger)}`);
}

/**
 * The statement that writes every row a synced table holds now into the outbox as an insert, the
 * way the insert trigger would have: for rows written before the capture triggers existed (a
 * database used offline before sync was first set up), so they reach the server instead of being
 * pruned by the first snapshot. The caller runs it once, when it installs the triggers for the
 * first time, in the same transaction.
 *
 * @example
 *   await run(outboxBackfillSql(todos));
 */
export function outboxBackfillSql(table: AnyTable): string {
  const source = quoteIdentifier(table.$name);
  const keys = table.$primaryKeyColumns;
  return `INSERT INTO _syncline_outbox (table_name, op, pk, "row", wall_ms)
    SELECT ${literal(table.$name)}, 'insert', ${jsonObject(keys, source)}, ${jsonObject(table.$columnList, source)}, ${WALL_MS}
    FROM ${source}`;
}
