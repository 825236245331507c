import type { RowChange } from '../live/row-changes.js';
import type { AnyTable } from '../schema/table.js';

/**
 * Rows returned by `returning()` (keyed by TypeScript key) as images keyed by SQL column name,
 * leaving out the columns in `unknown` (their value before an update is not known).
 */
export function rowImages(
  table: AnyTable,
  rows: readonly Record<string, unknown>[],
  unknown: ReadonlySet<string> = new Set(),
): Record<string, unknown>[] {
  const columns = table.$columnList;
  return rows.map((row) => {
    const image: Record<string, unknown> = {};
    for (const column of columns) {
      if (!unknown.has(column.name) && Object.hasOwn(row, column.key)) image[column.name] = row[column.key];
    }
    return image;
  });
}

/** Updated rows: after is the returned row; before is the same but for the columns the update set. */
export function updatedRows(
  table: AnyTable,
  rows: readonly Record<string, unknown>[],
  set: ReadonlySet<string>,
): RowChange[] {
  const after = rowImages(table, rows);
  const before = rowImages(table, rows, set);
  return after.map((a, i) => ({ before: before[i], after: a }));
}

/** Deleted rows: before is the returned row, after nothing. */
export function deletedRows(table: AnyTable, rows: readonly Record<string, unknown>[]): RowChange[] {
  return rowImages(table, rows).map((before) => ({ before, after: null }));
}
