import type { Database } from '../database/database.js';
import { orderByReferences } from '../dialect/ddl-compiler.js';
import { ConstraintError, MigrationError } from '../errors.js';
import type { Column } from '../schema/column.js';
import type { Schema } from '../schema/schema.js';
import type { AnyTable } from '../schema/table.js';

type AnyColumn = Column<any, any, any, any>;
type Row = Record<string, unknown>;

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** A driver-level value for a custom type, guessed from its SQL type (its encoders are not known). */
function customSample(sqlType: string, column: AnyColumn, i: number): unknown {
  const t = sqlType.toUpperCase();
  if (/^(INT|INTEGER|SMALLINT|BIGINT|SERIAL|BIGSERIAL)\b|^INT[248]\b/.test(t)) return i + 1;
  if (/BOOL/.test(t)) return i % 2 === 0;
  if (/REAL|DOUBLE|FLOAT|NUMERIC|DECIMAL/.test(t)) return i + 1.5;
  if (/BLOB|BYTEA/.test(t)) return new Uint8Array([i % 256, 1]);
  if (/JSON/.test(t)) return JSON.stringify({ sample: i + 1 });
  if (/UUID/.test(t)) return `00000000-0000-4000-8000-${hex(i + 1, 12)}`;
  if (/INTERVAL/.test(t)) return `${i + 1} days`;
  if (/TIMESTAMP|DATE/.test(t)) return new Date(Date.UTC(2024, 0, 1 + i)).toISOString();
  if (/^TIME/.test(t)) return `12:00:${String(i % 60).padStart(2, '0')}`;
  if (/CIDR/.test(t)) return `10.${i % 256}.0.0/16`;
  if (/INET/.test(t)) return `10.0.${Math.floor(i / 256) % 256}.${i % 256}`;
  if (/MACADDR/.test(t)) return `08:00:2b:01:02:${hex(i % 256, 2)}`;
  return `${column.name} ${i + 1}`;
}

/** The i-th sample value of a column: distinct for every i where the type allows it. */
function sampleValue(db: Database, column: AnyColumn, i: number): unknown {
  const { type } = column;
  switch (type.kind) {
    case 'uuid':
      return `00000000-0000-4000-8000-${hex(i + 1, 12)}`;
    case 'text':
      return `${column.name} ${i + 1}`;
    case 'integer':
      return i + 1;
    case 'bigint':
      return BigInt(i + 1);
    case 'real':
      return i + 1.5;
    case 'boolean':
      return i % 2 === 0;
    case 'timestamp':
      return new Date(Date.UTC(2024, 0, 1 + i, 12));
    case 'json':
      return { sample: i + 1 };
    case 'blob':
      return new Uint8Array([i % 256, 1]);
    case 'numeric':
      return `${i + 1}.25`;
    case 'enum': {
      const values = type.enumValues ?? [];
      return values[i % values.length];
    }
    case 'custom':
      return customSample(db.dialect.physicalType(type).sqlType, column, i);
  }
}

/** Columns that must get a distinct value of their own in every row: keys, unique and referenced columns. */
function distinctColumns(schema: Schema): Set<AnyColumn> {
  const set = new Set<AnyColumn>();
  for (const t of schema.tableList) {
    for (const c of t.$primaryKeyColumns) set.add(c);
    for (const c of t.$columnList) {
      if (c.unique) set.add(c);
      if (c.references) set.add(c.references.target());
    }
    for (const i of t.$indexes) if (i.unique) for (const c of i.columns) set.add(c);
    for (const fk of t.$foreignKeys) for (const c of fk.target()) set.add(c);
  }
  return set;
}

/**
 * Writes a few valid rows into every table of a schema, parents before children: every column
 * filled according to its type (enums from their values, keys and unique columns distinct, foreign
 * keys pointing at rows written before), with some rows leaving defaults and nullable columns out.
 * A row a constraint refuses (a check the generator cannot know) is tried again with only what the
 * table requires, then skipped; a table that gets no row at all is an error. Returns the rows
 * written per table.
 */
export async function writeSampleRows(
  db: Database,
  schema: Schema,
  rowsPerTable: number,
): Promise<Record<string, number>> {
  const distinct = distinctColumns(schema);
  const written = new Map<string, Row[]>();
  const counts: Record<string, number> = {};
  for (const table of orderByReferences(schema.tableList)) {
    const rows: Row[] = [];
    written.set(table.$name, rows);
    let lastError: unknown;
    for (let i = 0; i < rowsPerTable; i++) {
      // A row a check refuses is tried again with defaults and nulls wherever the table allows them.
      for (const minimal of [false, true]) {
        const row = sampleRow(db, table, i, rows, written, distinct, minimal);
        try {
          await db.insert(table).values(row as never);
          rows.push(row);
          break;
        } catch (error) {
          if (!(error instanceof ConstraintError)) throw rowError(table, error);
          lastError = error;
        }
      }
    }
    if (rows.length === 0 && rowsPerTable > 0) throw rowError(table, lastError);
    counts[table.$name] = rows.length;
  }
  return counts;
}

function rowError(table: AnyTable, error: unknown): MigrationError {
  return new MigrationError(
    `could not write a generated row into ${table.$name} (${(error as Error)?.message ?? 'no row fits'}): pass fill(db, version) to verifyMigrations to write rows of your own`,
    { cause: error },
  );
}

function sampleRow(
  db: Database,
  table: AnyTable,
  i: number,
  ownRows: readonly Row[],
  written: ReadonlyMap<string, readonly Row[]>,
  distinct: ReadonlySet<AnyColumn>,
  minimal: boolean,
): Row {
  const row: Row = {};
  const referencing = new Set<AnyColumn>([
    ...table.$columnList.filter((c) => c.references),
    ...table.$foreignKeys.flatMap((fk) => fk.columns),
  ]);
  for (const column of table.$columnList) {
    if (referencing.has(column)) continue;
    const keep = distinct.has(column);
    // Odd rows let the database apply defaults (a `$defaultFn` of a rebuilt schema cannot run).
    if (!keep && column.default && column.default.kind !== 'fn' && (minimal || i % 2 === 1)) continue;
    if (!keep && !column.notNull && !column.default && (minimal || i % 3 === 2)) {
      row[column.key] = null;
      continue;
    }
    row[column.key] = sampleValue(db, column, i);
  }

  // Picks the row a reference points at: the n-th written row of the target, this row itself when
  // a required reference points into its own table and nothing was written yet.
  const targetRow = (targetTable: AnyTable, nullable: boolean): Row | null | undefined => {
    const self = targetTable.$name === table.$name;
    const candidates = self ? ownRows : (written.get(targetTable.$name) ?? []);
    if (self && nullable && i === 0) return null;
    if (candidates.length === 0) return self ? row : nullable ? null : undefined;
    return candidates[self ? candidates.length - 1 : i % candidates.length]!;
  };
  const pointAt = (columns: readonly AnyColumn[], targets: readonly AnyColumn[]) => {
    const nullable = columns.every((c) => !c.notNull);
    const target = targetRow(targets[0]!.table, nullable);
    if (target === undefined) {
      throw new MigrationError(
        `could not write a generated row into ${table.$name}: ${columns.map((c) => c.name).join(', ')} must reference ${targets[0]!.table.$name}, which has no rows: pass fill(db, version) to verifyMigrations`,
      );
    }
    columns.forEach((c, n) => {
      row[c.key] = target === null ? null : target[targets[n]!.key];
    });
  };
  for (const column of table.$columnList) {
    if (column.references) pointAt([column], [column.references.target()]);
  }
  for (const fk of table.$foreignKeys) pointAt(fk.columns, fk.target());
  return row;
}
