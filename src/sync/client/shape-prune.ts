import type { Database } from '../../database/database.js';
import { or } from '../../sql/expressions.js';
import { type SQL, sql } from '../../sql/sql.js';
import { filterFromJson } from '../protocol/filter-from-json.js';
import type { ShapeJson } from '../protocol/messages.js';
import type { ApplyContext } from './apply-context.js';
import type { Run } from './client-transaction.js';
import { filterSuperset } from './filter-superset.js';
import { PendingWrites } from './pending-writes.js';
import type { TableCodec } from './table-codec.js';

/**
 * A shape's filter rebuilt on the client, as the superset of `filterSuperset` (true: every row of
 * the table, false: none): what SQLite can tell of it without the server's view of the tables
 * its subqueries read.
 */
function whereOf(db: Database, shape: ShapeJson): SQL<boolean> | boolean {
  if (shape.where === undefined) return true;
  const table = db.schema.tableByName(shape.table)!;
  const where = filterSuperset(shape.where);
  return typeof where === 'boolean' ? where : filterFromJson(where, table);
}

/**
 * The keys (as SQLite stores them) of the rows of `shape`'s table that `shape` may hold and none
 * of `others` may: what may go when `shape` goes, or what its snapshot must have sent. Read with
 * the shapes' filters run by SQLite itself; a filter with subqueries counts as its superset
 * (`filterSuperset`), so a row another shape may hold through a subquery is never deleted.
 *
 * @example
 *   const keys = await keysOnlyIn(run, context, codec, removed, remaining);
 */
export async function keysOnlyIn(
  run: Run,
  context: ApplyContext,
  codec: TableCodec,
  shape: ShapeJson,
  others: readonly ShapeJson[],
): Promise<unknown[][]> {
  const { db } = context;
  const table = db.schema.tableByName(codec.name)!;
  const kept = others.filter((other) => other.table === shape.table).map((other) => whereOf(db, other));
  // Another shape holds the whole table: nothing is only in this one.
  if (kept.some((where) => where === true)) return [];
  const inShape = whereOf(db, shape);
  if (inShape === false) return [];
  const keptWheres = kept.filter((where): where is SQL<boolean> => where !== false);
  const outside = keptWheres.length === 0 ? undefined : sql<boolean>`NOT coalesce((${or(...keptWheres)}), 0)`;
  const own = inShape === true ? undefined : inShape;
  const where = own && outside ? sql<boolean>`(${own}) AND ${outside}` : (own ?? outside);
  const fields = Object.fromEntries(codec.keyColumns.map((c) => [c.name, c]));
  const compiled = db.dialect.compiler.compile(db.select(fields).from(table).where(where).toNode());
  const { rows } = await run(compiled.sql, compiled.params, { arrayMode: true, bigInts: true });
  return rows as unknown[][];
}

/**
 * Deletes these rows of `codec`'s table (capture off, as the caller's remote transaction has it),
 * except those with pending local writes, which stay until the server answers them. Returns
 * whether any was deleted.
 *
 * @example
 *   if (await deleteUnlessPending(run, context, codec, keys, start.outboxRows)) tables.add(codec.name);
 */
export async function deleteUnlessPending(
  run: Run,
  context: ApplyContext,
  codec: TableCodec,
  keys: readonly unknown[][],
  outboxRows: number,
): Promise<boolean> {
  if (keys.length === 0) return false;
  const writer = context.writer(codec);
  const pending = await PendingWrites.load(
    run,
    keys.map((key) => [codec, key] as const),
    outboxRows,
  );
  let deleted = false;
  for (const key of keys) {
    if (pending.get(codec.name, codec.keyOf(key))) continue;
    const result = writer.delete(run, key);
    if (result instanceof Promise) await result;
    deleted = true;
  }
  return deleted;
}
