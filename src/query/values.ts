import { UsageError } from '../errors.js';
import type { Column } from '../schema/column.js';
import type { AnyTable } from '../schema/table.js';
import type { Node } from '../sql/nodes.js';
import { type Placeholder, SQL, toNode } from '../sql/sql.js';

/** A value to write: the column's own type, or a SQL expression, or a placeholder. */
export type WriteValue<T> = T | SQL<unknown> | Placeholder;

/** Finds the column for a key of `values()` / `set()`, or fails naming the table and its columns. */
export function columnForKey(table: AnyTable, key: string, context: string): Column<any, any, any, any> {
  const column = Object.hasOwn(table.$columns, key) ? table.$columns[key] : undefined;
  if (!column) {
    const known = table.$columnList.map((c) => c.key).join(', ');
    throw new UsageError(`${context}: "${key}" is not a column of ${table.$name} (its columns: ${known})`);
  }
  return column;
}

/** A value bound as it is, encoded by its column's type: not SQL, not a placeholder. */
export function isPlainValue(value: unknown): boolean {
  return typeof value !== 'object' || value === null || value instanceof Date || value instanceof Uint8Array;
}

/** A value written to a column, as a node encoded by the column's type. */
export function valueNode(column: Column<any, any, any, any>, value: unknown): Node {
  // Plain values are by far the most common: skip the entity checks of toNode() for them.
  if (isPlainValue(value)) {
    return { kind: 'param', value, type: column.type, column };
  }
  if (value instanceof SQL) return value.node;
  const node = toNode(value, column.type);
  if (node.kind === 'param') return { kind: 'param', value, type: column.type, column };
  if (node.kind === 'placeholder') return { kind: 'placeholder', name: node.name, type: column.type, column };
  return node;
}
