import type { Schema } from '../../schema/schema.js';
import type { AnyTable } from '../../schema/table.js';
import type { SQL } from '../../sql/sql.js';
import { filterFromJson } from './filter-from-json.js';
import { filterToJson } from './filter-to-json.js';
import type { FilterLimits, FilterScope } from './filter-tree.js';
import type { ShapeJson } from './messages-client.js';
import { syncedTableAt } from './synced-table.js';

/**
 * A shape checked against the schema on the server: the table it names, and its filter rebuilt as
 * a condition (undefined for the whole table), ready to be ANDed with the table's read rule.
 *
 * @example
 *   const { table, where } = resolveShape(shape, appSchema);
 */
export interface ResolvedShape {
  readonly id: string;
  readonly table: AnyTable;
  readonly where: SQL<boolean> | undefined;
}

/**
 * Checks a shape from a `hello` against the schema: the table must exist and be synced (not a
 * `localTable`), and the filter must be a valid tree for it (see `filterFromJson`; its subqueries
 * read synced tables of `schema`, each ANDed with `readRule`'s condition for it). Throws
 * `SyncMessageError` with code `unknown_table` naming the table and the synced ones, or the
 * filter's own error; `index` is the shape's place in the hello, used in the error's path (or
 * `at`, the path itself: `shape` for a `subscribe`).
 *
 * @example
 *   const shapes = hello.shapes.map((shape, i) => resolveShape(shape, appSchema, i));
 */
export function resolveShape(
  shape: ShapeJson,
  schema: Schema,
  index = 0,
  limits: Partial<FilterLimits> = {},
  at = `shapes[${index}]`,
  readRule?: FilterScope['readRule'],
): ResolvedShape {
  const table = syncedTableAt(schema, shape.table, `${at}.table`);
  const where =
    shape.where === undefined
      ? undefined
      : filterFromJson(shape.where, table, limits, `${at}.where`, { schema, readRule });
  return { id: shape.id, table, where };
}

/**
 * The client side of a shape: its id, table and optional condition (built with the expression
 * builders on that table's columns) in the form a `hello` carries. Throws `UsageError` for a
 * condition a filter tree cannot express (see `filterToJson`).
 *
 * @example
 *   shapeToJson('list-1', todos, eq(todos.listId, listId)); // { id: 'list-1', table: 'todos', where: { op: 'eq', ... } }
 */
export function shapeToJson(id: string, table: AnyTable, where?: SQL<unknown>): ShapeJson {
  return where === undefined
    ? { id, table: table.$name }
    : { id, table: table.$name, where: filterToJson(where, table) };
}
