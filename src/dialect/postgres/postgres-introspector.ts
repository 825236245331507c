import { type CanonicalSql, type LiveTable, liveTableDrafts } from '../../migrations/live-schema.js';
import type { SqlRunner } from '../../migrations/sql-runner.js';
import type { ReferenceAction } from '../../schema/column-builder.js';
import {
  rewriteUnquoted,
  stringLiteral,
  stringLiteralValue,
  stripOuterParentheses,
  tidyUnquoted,
} from '../canonical-sql-text.js';

// Ordinary and partitioned tables of the current schema (a partition is part of its parent).
const TABLES = `c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`;

/** The names of the columns `keys` (an int2[] of attribute numbers) of the relation `rel`, in order. */
const columnNames = (rel: string, keys: string) =>
  `ARRAY(SELECT a.attname::text FROM unnest(${keys}) WITH ORDINALITY AS key(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = key.attnum ORDER BY key.ord)`;

const COLUMNS = `SELECT c.relname AS table_name, a.attname AS name,
    format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
    CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS default_sql,
    COALESCE(array_position(pk.conkey, a.attnum), 0) AS pk_position
  FROM pg_class c
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
  LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
  WHERE ${TABLES} ORDER BY c.relname, a.attnum`;

// Indexes that back a PRIMARY KEY, UNIQUE or EXCLUDE constraint belong to the constraint.
const INDEXES = `SELECT c.relname AS table_name, i.relname AS name, x.indisunique AS is_unique,
    x.indpred IS NOT NULL AS partial,
    ARRAY(SELECT CASE WHEN k.attnum = 0
                      THEN '(' || pg_get_indexdef(x.indexrelid, k.ord::int, true) || ')'
                      ELSE a.attname::text END
      FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
      LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
      WHERE k.ord <= x.indnkeyatts ORDER BY k.ord) AS columns
  FROM pg_index x
  JOIN pg_class c ON c.oid = x.indrelid
  JOIN pg_class i ON i.oid = x.indexrelid
  WHERE ${TABLES} AND NOT EXISTS (SELECT 1 FROM pg_constraint con
    WHERE con.conrelid = x.indrelid AND con.conindid = x.indexrelid AND con.contype IN ('p', 'u', 'x'))
  ORDER BY c.relname, i.relname`;

const UNIQUE_CONSTRAINTS = `SELECT c.relname AS table_name, k.conname AS name,
    ${columnNames('k.conrelid', 'k.conkey')} AS columns
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
  WHERE ${TABLES} AND k.contype = 'u' ORDER BY c.relname, k.conname`;

// A constraint with a parent is a copy PostgreSQL made for a partition; the parent stands for it.
const FOREIGN_KEYS = `SELECT c.relname AS table_name, k.conname AS name,
    ${columnNames('k.conrelid', 'k.conkey')} AS columns,
    CASE WHEN tn.nspname = current_schema() THEN t.relname::text
         ELSE tn.nspname || '.' || t.relname END AS target_table,
    ${columnNames('k.confrelid', 'k.confkey')} AS target_columns,
    k.confdeltype::text AS on_delete, k.confupdtype::text AS on_update
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_class t ON t.oid = k.confrelid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
  WHERE ${TABLES} AND k.contype = 'f' AND k.conparentid = 0 ORDER BY c.relname, k.conname`;

const ACTIONS: Record<string, ReferenceAction> = {
  a: 'no action',
  r: 'restrict',
  c: 'cascade',
  n: 'set null',
  d: 'set default',
};

/**
 * Reads the tables of the current schema (`current_schema()`) from pg_catalog. Types come from
 * `format_type`, defaults from `pg_get_expr`, so they are PostgreSQL's own spelling.
 */
export async function introspectPostgres(run: SqlRunner): Promise<LiveTable[]> {
  const tables = liveTableDrafts();
  for (const row of await run(COLUMNS)) {
    // A table without columns (CREATE TABLE t ()) comes as one row with no column.
    const table = tables.table(String(row.table_name));
    if (row.name === null) continue;
    table.columns.push({
      name: String(row.name),
      type: String(row.type),
      notNull: row.not_null === true,
      default:
        row.default_sql === null || row.default_sql === undefined ? undefined : String(row.default_sql),
      primaryKeyPosition: Number(row.pk_position),
    });
  }
  for (const row of await run(INDEXES)) {
    tables.table(String(row.table_name)).indexes.push({
      name: String(row.name),
      columns: textArray(row.columns),
      unique: row.is_unique === true,
      partial: row.partial === true,
    });
  }
  for (const row of await run(UNIQUE_CONSTRAINTS)) {
    tables.table(String(row.table_name)).uniqueConstraints.push({
      name: String(row.name),
      columns: textArray(row.columns),
    });
  }
  for (const row of await run(FOREIGN_KEYS)) {
    tables.table(String(row.table_name)).foreignKeys.push({
      name: String(row.name),
      columns: textArray(row.columns),
      targetTable: String(row.target_table),
      targetColumns: textArray(row.target_columns),
      onDelete: ACTIONS[String(row.on_delete)] ?? 'no action',
      onUpdate: ACTIONS[String(row.on_update)] ?? 'no action',
    });
  }
  return tables.list();
}

/** A text[] as the driver gave it: an array, or (a driver that does not parse arrays) its literal. */
function textArray(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  const text = String(value ?? '{}');
  if (text === '{}') return [];
  return text
    .slice(1, -1)
    .split(',')
    .map((part) => (part.startsWith('"') ? part.slice(1, -1).replace(/\\(.)/g, '$1') : part));
}

/** Other names PostgreSQL accepts for the types `format_type` reports. */
const TYPE_ALIASES: Record<string, string> = {
  int: 'integer',
  int4: 'integer',
  int2: 'smallint',
  int8: 'bigint',
  float: 'double precision',
  float8: 'double precision',
  float4: 'real',
  bool: 'boolean',
  decimal: 'numeric',
  varchar: 'character varying',
  char: 'character',
  bpchar: 'character',
  varbit: 'bit varying',
  timestamptz: 'timestamp with time zone',
  timestamp: 'timestamp without time zone',
  timetz: 'time with time zone',
  time: 'time without time zone',
};

/** A type as `format_type` spells it: `TIMESTAMPTZ(3)` is `timestamp(3) with time zone`. */
function canonicalType(sqlType: string): string {
  let text = sqlType.trim().toLowerCase().replace(/\s+/g, ' ');
  const arraySuffix = /(\s*\[\s*\d*\s*\])+$/.exec(text)?.[0] ?? '';
  text = text.slice(0, text.length - arraySuffix.length);
  const modifier = /\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/.exec(text);
  let typmod = '';
  if (modifier) {
    typmod = modifier[2] === undefined ? `(${modifier[1]})` : `(${modifier[1]},${modifier[2]})`;
    text = `${text.slice(0, modifier.index)} ${text.slice(modifier.index + modifier[0].length)}`
      .trim()
      .replace(/\s+/g, ' ');
  }
  const base = TYPE_ALIASES[text] ?? text;
  const withModifier =
    typmod && /^(timestamp|time) with/.test(base) ? base.replace(/^(\w+)/, `$1${typmod}`) : base + typmod;
  return withModifier + '[]'.repeat((arraySuffix.match(/\[/g) ?? []).length);
}

// `::type` casts PostgreSQL adds when it prints an expression, multi-word type names included.
const CAST =
  /::\s*[a-z_][a-z0-9_]*(?:\s+(?:with|without|time|zone|precision|varying))*(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\s+(?:with|without|time|zone))*(?:\s*\[\s*\d*\s*\])*/gi;

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const TIMESTAMP_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(z|[+-]\d{2}(:?\d{2})?)$/i;

/**
 * A default as one text whether the schema wrote it or PostgreSQL printed it: casts dropped
 * (`'low'::text` is `'low'`), a quoted number unquoted (`'5'::bigint` is `5`), a JSON literal with
 * its keys sorted and no spaces (jsonb reorders them), a timestamp literal in ISO form at UTC.
 */
function canonicalDefault(sql: string | undefined): string | undefined {
  if (sql === undefined) return undefined;
  const text = stripOuterParentheses(tidyUnquoted(rewriteUnquoted(sql, (part) => part.replace(CAST, ''))));
  if (text === 'null') return undefined;
  const value = stringLiteralValue(text);
  if (value === undefined) return text;
  if (NUMBER.test(value)) return value;
  if (/^[[{]/.test(value)) {
    try {
      return stringLiteral(JSON.stringify(sortKeys(JSON.parse(value))));
    } catch {
      return text;
    }
  }
  if (TIMESTAMP_WITH_ZONE.test(value)) {
    const iso = value.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00');
    const time = Date.parse(iso);
    if (!Number.isNaN(time)) return stringLiteral(new Date(time).toISOString());
  }
  return text;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
  );
}

/** PostgreSQL's canonical spellings (see `canonicalType` and `canonicalDefault`). */
export const postgresCanonicalSql: CanonicalSql = { type: canonicalType, default: canonicalDefault };
