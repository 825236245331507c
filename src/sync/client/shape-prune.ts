import type { Database } from '../../database/database.js';
import { or } from '../../sql/expressions.js';
import { type SQL, sql } from '../../sql/sql.js';
import { filterFromJson } from '../protocol/filter-tree.js';
import type { ShapeJson } from '../protocol/messages.js';
import type { ApplyContext } from './apply-context.js';
import type { Run } from './client-transaction.js';
import { PendingWrites } from './pending-writes.js';
import type { TableCodec } from './table-codec.js';

/** A shape's filter rebuilt on the client (undefined: the whole table). */
function whereOf(db: Database, shape: ShapeJson): SQL<boolean> | undefined {
  const table = db.schema.tableByName(shape.table)!;
  return shape.where === undefined ? undefined : filterFromJson(shape.where, table);
}

/**
 * The keys (as SQLite stores them) of the rows of `shape`'s table that `shape` holds and none of
 * `others` does: what may go when `shape` goes, or what its snapshot must have sent. Read with
 * the shapes' filters run by SQLite itself.
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
  const kept = others.filter((other) => other.table === shape.table);
  // Another shape holds the whole table: nothing is only in this one.
  if (kept.some((other) => other.where === undefined)) return [];
  const keptWheres = kept.map((other) => whereOf(db, other)!);
  const inShape = whereOf(db, shape);
  const outside = keptWheres.length === 0 ? undefined : sql<boolean>`NOT coalesce((${or(...keptWheres)}), 0)`;
  const where = inShape && outside ? sql<boolean>`(${inShape}) AND ${outside}` : (inShape ?? outside);
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
