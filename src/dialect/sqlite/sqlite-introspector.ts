import {
  type CanonicalSql,
  type LiveForeignKey,
  type LiveTable,
  liveTableDrafts,
} from '../../migrations/live-schema.js';
import type { SqlRunner } from '../../migrations/sql-runner.js';
import type { ReferenceAction } from '../../schema/column-builder.js';
import { stripOuterParentheses, tidyUnquoted } from '../canonical-sql-text.js';

// The pragmas as table-valued functions, joined to sqlite_master: one query per kind of object for
// the whole database instead of one per table. SQLite's own tables (sqlite_sequence, sqlite_stat1)
// are left out.
const TABLES = "m.type = 'table' AND m.name NOT LIKE 'sqlite!_%' ESCAPE '!'";

const COLUMNS = `SELECT m.name AS table_name, c.name, c.type, c."notnull" AS not_null, c.dflt_value, c.pk
  FROM sqlite_master m JOIN pragma_table_info(m.name) c WHERE ${TABLES} ORDER BY m.name, c.cid`;

const INDEX_COLUMNS = `SELECT m.name AS table_name, l.name AS index_name, l."unique" AS is_unique, l.origin,
    l.partial, i.name AS column_name
  FROM sqlite_master m JOIN pragma_index_list(m.name) l JOIN pragma_index_info(l.name) i
  WHERE ${TABLES} ORDER BY m.name, l.name, i.seqno`;

const FOREIGN_KEYS = `SELECT m.name AS table_name, f.id, f."table" AS target_table, f."from" AS from_column,
    f."to" AS to_column, f.on_update, f.on_delete
  FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE ${TABLES} ORDER BY m.name, f.id, f.seq`;

/**
 * Reads the tables of a SQLite database with `sqlite_master` and the pragmas `table_info`,
 * `index_list`, `index_info` and `foreign_key_list`. Indexes SQLite made for a PRIMARY KEY are left
 * out, and those it made for a UNIQUE constraint (`sqlite_autoindex_*`) become unique constraints.
 */
export async function introspectSqlite(run: SqlRunner): Promise<LiveTable[]> {
  const tables = liveTableDrafts();
  for (const row of await run(COLUMNS)) {
    tables.table(String(row.table_name)).columns.push({
      name: String(row.name),
      type: String(row.type ?? ''),
      notNull: Number(row.not_null) === 1,
      default: row.dflt_value === null || row.dflt_value === undefined ? undefined : String(row.dflt_value),
      primaryKeyPosition: Number(row.pk),
    });
  }
  for (const table of tables.list()) {
    // A lone INTEGER PRIMARY KEY is the rowid, which is never NULL however the column was declared.
    const key = table.columns.filter((c) => c.primaryKeyPosition > 0);
    if (key.length === 1 && key[0]!.type.toUpperCase() === 'INTEGER') {
      table.columns[table.columns.indexOf(key[0]!)] = { ...key[0]!, notNull: true };
    }
  }

  const indexes = new Map<
    string,
    { table: string; origin: string; columns: string[]; unique: boolean; partial: boolean }
  >();
  for (const row of await run(INDEX_COLUMNS)) {
    const name = String(row.index_name);
    let index = indexes.get(name);
    if (!index) {
      index = {
        table: String(row.table_name),
        origin: String(row.origin),
        columns: [],
        unique: Number(row.is_unique) === 1,
        partial: Number(row.partial) === 1,
      };
      indexes.set(name, index);
    }
    // pragma index_info names no column for an expression; its text is only in the CREATE INDEX.
    index.columns.push(row.column_name === null ? '(expression)' : String(row.column_name));
  }
  for (const [name, { table, origin, columns, unique, partial }] of indexes) {
    if (origin === 'c') tables.table(table).indexes.push({ name, columns, unique, partial });
    else if (origin === 'u') tables.table(table).uniqueConstraints.push({ name: undefined, columns });
  }

  const foreignKeys = new Map<
    string,
    LiveForeignKey & { table: string; columns: string[]; targetColumns: string[] }
  >();
  for (const row of await run(FOREIGN_KEYS)) {
    const id = `${row.table_name}\u0000${row.id}`;
    let key = foreignKeys.get(id);
    if (!key) {
      key = {
        table: String(row.table_name),
        name: undefined,
        columns: [],
        targetTable: String(row.target_table),
        targetColumns: [],
        onDelete: referenceAction(row.on_delete),
        onUpdate: referenceAction(row.on_update),
      };
      foreignKeys.set(id, key);
    }
    key.columns.push(String(row.from_column));
    if (row.to_column !== null) key.targetColumns.push(String(row.to_column));
  }
  for (const { table, ...key } of foreignKeys.values()) {
    // `REFERENCES parent` without columns means the parent's primary key.
    const targetColumns =
      key.targetColumns.length > 0
        ? key.targetColumns
        : (tables.get(key.targetTable)?.columns ?? [])
            .filter((c) => c.primaryKeyPosition > 0)
            .sort((a, b) => a.primaryKeyPosition - b.primaryKeyPosition)
            .map((c) => c.name);
    tables.table(table).foreignKeys.push({ ...key, targetColumns });
  }
  return tables.list();
}

function referenceAction(value: unknown): ReferenceAction {
  return String(value ?? 'NO ACTION').toLowerCase() as ReferenceAction;
}

/**
 * SQLite keeps a column's type and default as the CREATE TABLE text wrote them, so both only
 * need their case and spacing evened out (and `DEFAULT (x)` is reported as `x`).
 */
export const sqliteCanonicalSql: CanonicalSql = {
  type: (sqlType) =>
    sqlType
      .trim()
      .toUpperCase()
      .replace(/\s+/g, ' ')
      .replace(/\s*\(\s*/g, '(')
      .replace(/\s*\)/g, ')')
      .replace(/\s*,\s*/g, ', '),
  default: (sql) => {
    if (sql === undefined) return undefined;
    const text = tidyUnquoted(stripOuterParentheses(sql));
    return text === 'null' ? undefined : text;
  },
};
