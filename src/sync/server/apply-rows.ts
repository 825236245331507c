import type { QueryScope } from '../../database/query-scope.js';
import type { Transaction } from '../../database/transaction.js';
import type { AnyColumn } from '../../schema/column.js';
import type { AnyTable } from '../../schema/table.js';
import { and, eq, inArray, or } from '../../sql/expressions.js';
import { SQL, sql } from '../../sql/sql.js';
import type { RestoredRowJson } from '../protocol/messages-server.js';
import { encodeRow, encodeRowSkipping } from '../protocol/value-codec.js';
import { type RowRef, rowRef } from './apply-changes.js';
import type { RowState, RowWrite } from './apply-conflicts.js';
import { awaitCapture } from './logical-writer.js';
import type { RuleSet, SyncUser } from './rules.js';
import { parseStamps } from './stamps-json.js';

/**
 * Reading and writing the app rows a batch touches, set-wise: one statement per table and kind
 * of step, not one per row, so that a batch of a thousand inserts costs a handful of round trips.
 * Values go through the query builder (or typed parameter nodes), never into SQL text.
 */

/** Stay far below PostgreSQL's 65,535 parameters per statement. */
const MAX_PARAMS = 30_000;

type Row = Record<string, unknown>;

/**
 * A row keyed by JS property names (what the builders and the rules take) from one keyed by SQL
 * name; keys that are not columns are left out.
 *
 * @example
 *   toPropertyKeys(lists, { id, owner_id: 'u1' }); // { id, ownerId: 'u1' }
 */
export function toPropertyKeys(table: AnyTable, row: Row): Row {
  const out: Row = {};
  for (const column of table.$columnList) if (column.name in row) out[column.key] = row[column.name];
  return out;
}

/** The inverse of `toPropertyKeys`, for a whole row a select returned. */
function toSqlNames(table: AnyTable, row: Row): Row {
  const out: Row = {};
  for (const column of table.$columnList) out[column.name] = row[column.key];
  return out;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function byTable(refs: readonly RowRef[]): Map<AnyTable, RowRef[]> {
  const groups = new Map<AnyTable, RowRef[]>();
  for (const ref of refs) {
    const list = groups.get(ref.table);
    if (list) list.push(ref);
    else groups.set(ref.table, [ref]);
  }
  return groups;
}

/** `pk IN (...)`, or for a composite key `(a = ? AND b = ?) OR ...`. */
function keyCondition(table: AnyTable, refs: readonly RowRef[]): SQL<unknown> {
  const columns = table.$primaryKeyColumns;
  if (columns.length === 1) {
    const column = columns[0]!;
    return inArray(
      column,
      refs.map((r) => r.pk[column.name]),
    );
  }
  return or(...refs.map((r) => and(...columns.map((c) => eq(c, r.pk[c.name])))))!;
}

/**
 * The rows of `refs` as they are now (app values by SQL name), by row key (`RowRef.key`), read a
 * few thousand keys per statement; `filter` (a read rule) narrows them.
 *
 * @example
 *   const rows = await readRows(tx, todos, refs, rules.readFilter(todos, user) as SQL | undefined);
 */
export async function readRows(
  scope: QueryScope,
  table: AnyTable,
  refs: readonly RowRef[],
  filter?: SQL<unknown>,
): Promise<Map<string, Row>> {
  const found = new Map<string, Row>();
  const size = Math.max(1, Math.floor(MAX_PARAMS / 4 / table.$primaryKeyColumns.length));
  for (const part of chunks(refs, size)) {
    const rows = await scope
      .select()
      .from(table)
      .where(and(keyCondition(table, part), filter));
    for (const row of rows as Row[]) {
      const named = toSqlNames(table, row);
      const pk = Object.fromEntries(table.$primaryKeyColumns.map((c) => [c.name, named[c.name]]));
      found.set(rowRef(table, pk).key, named);
    }
  }
  return found;
}

/**
 * Locks the rows of `refs` that exist, then reads their stamps (locking those too, in key order,
 * so two pushes take them in the same order) and the rows themselves. Rows without stamps are not locked: a
 * push that races another one on such a row finds out when it writes (a primary-key conflict,
 * or a stamps row that appeared) and applies its batch again.
 *
 * @example
 *   const states = await loadStates(tx, decoded.touched);
 */
export async function loadStates(tx: Transaction, refs: readonly RowRef[]): Promise<Map<string, RowState>> {
  const states = new Map<string, RowState>();
  const tables = [...byTable(refs)].sort(([a], [b]) => (a.$name < b.$name ? -1 : 1));
  for (const [table, list] of tables) {
    for (const ref of list) {
      states.set(ref.key, {
        ref,
        current: undefined,
        stamps: {
          cols: {},
          created: undefined,
          deleted: undefined,
          image: undefined,
          updatedInImage: new Set(),
        },
        stored: false,
        stampsChanged: false,
        wholeStamps: false,
        stampedColumns: new Set(),
        leftToTrigger: false,
      });
    }
    // The app rows first, then their stamps: the order a direct write takes them in (the row,
    // then the stamps row in the capture trigger), so a push and a direct write never deadlock.
    const keyOrder = sql.join(
      table.$primaryKeyColumns.map((c) => sql.identifier(c.name)),
      sql`, `,
    );
    for (const part of chunks(
      list,
      Math.max(1, Math.floor(MAX_PARAMS / 4 / table.$primaryKeyColumns.length)),
    )) {
      await tx.execute(
        sql`SELECT 1 FROM ${table} WHERE ${keyCondition(table, part)} ORDER BY ${keyOrder} FOR UPDATE`,
      );
    }
    await awaitCapture(tx);
    const stored: [RowState, Row][] = [];
    for (const part of chunks(list, MAX_PARAMS)) {
      const stamped = await tx.run({
        sql: `SELECT x.i::int AS i, s.cols::text AS cols, s.image::text AS image, s.created, s.deleted
                FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(k, i)
                JOIN _syncline_stamps s ON s.table_name = $1 AND s.pk = x.k
               ORDER BY s.pk FOR UPDATE OF s`,
        params: [table.$name, JSON.stringify(part.map((r) => r.pkJson))],
        arrayMode: false,
        needsBigInt: false,
      });
      for (const row of stamped.rows as Row[]) {
        const state = states.get(part[(row.i as number) - 1]!.key)!;
        state.stored = true;
        stored.push([state, row]);
      }
    }
    for (const [key, row] of await readRows(tx, table, list)) states.get(key)!.current = row;
    // After the rows: a deleted row's image is only taken while the row is missing.
    for (const [state, row] of stored) {
      const { cols, image, created, deleted } = row as {
        cols: string;
        image: string | null;
        created: string | null;
        deleted: string | null;
      };
      state.stamps = parseStamps(
        table,
        JSON.parse(cols),
        image === null ? null : JSON.parse(image),
        created,
        deleted,
        state.current !== undefined,
      );
    }
  }
  return states;
}

/** A parameter encoded by its column's type, cast so that a VALUES list knows its types. */
function typedValue(tx: Transaction, column: AnyColumn, value: unknown, cast: boolean): SQL<unknown> {
  const param = new SQL({ kind: 'param', value, type: column.type, column });
  if (!cast) return param;
  return sql`CAST(${param} AS ${sql.raw(tx.dialect.physicalType(column.type).sqlType)})`;
}

/** One UPDATE for many rows that set the same columns: `UPDATE t SET c = v.c FROM (VALUES ...) v`. */
async function updateRows(tx: Transaction, table: AnyTable, writes: readonly RowWrite[]): Promise<void> {
  const keys = table.$primaryKeyColumns;
  const set = Object.keys((writes[0] as Extract<RowWrite, { kind: 'update' }>).set).map(
    (name) => table.$columnBySqlName(name)!,
  );
  const columns = [...keys, ...set];
  // The alias is one no app table is called (an app table named `v` would clash with `AS v`).
  const v = (c: AnyColumn) => sql`_syncline_v.${sql.identifier(c.name)}`;
  for (const part of chunks(writes, Math.max(1, Math.floor(MAX_PARAMS / columns.length)))) {
    const rows = part.map((w, i) => {
      const values = { ...w.ref.pk, ...(w as Extract<RowWrite, { kind: 'update' }>).set };
      return sql`(${sql.join(columns.map((c) => typedValue(tx, c, values[c.name], i === 0)))})`;
    });
    await tx.execute(sql`UPDATE ${table} SET ${sql.join(set.map((c) => sql`${sql.identifier(c.name)} = ${v(c)}`))}
      FROM (VALUES ${sql.join(rows)}) AS _syncline_v (${sql.join(columns.map((c) => sql.identifier(c.name)))})
      WHERE ${sql.join(
        keys.map((c) => sql`${c} = ${v(c)}`),
        ' AND ',
      )}`);
  }
  tx.wrote(table.$name);
}

async function runGroup(tx: Transaction, writes: readonly RowWrite[]): Promise<void> {
  const first = writes[0]!;
  const table = first.ref.table;
  if (first.kind === 'insert') {
    const rows = writes.map((w) => toPropertyKeys(table, (w as Extract<RowWrite, { kind: 'insert' }>).row));
    const size = Math.max(1, Math.floor(MAX_PARAMS / table.$columnList.length));
    for (const part of chunks(rows, size)) await tx.insert(table).values(part as any);
  } else if (first.kind === 'delete') {
    const size = Math.max(1, Math.floor(MAX_PARAMS / table.$primaryKeyColumns.length));
    for (const part of chunks(writes, size))
      await tx.delete(table).where(
        keyCondition(
          table,
          part.map((w) => w.ref),
        ),
      );
  } else if (writes.length === 1) {
    const w = first as Extract<RowWrite, { kind: 'update' }>;
    await tx
      .update(table)
      .set(toPropertyKeys(table, w.set) as any)
      .where(keyCondition(table, [w.ref]));
  } else {
    await updateRows(tx, table, writes);
  }
}

/** Writes of one kind, table and stamp that can share a statement (updates: the same columns). */
function groupKey(write: RowWrite): string {
  const columns = write.kind === 'update' ? Object.keys(write.set).sort().join('\u0000') : '';
  return `${write.kind}\u0001${write.ref.table.$name}\u0001${write.hlc}\u0001${columns}`;
}

/**
 * Runs the writes of a batch in order, each run of writes that can share a statement as one
 * multi-row statement. `stampWith` is called before each statement with the stamp of its writes,
 * so the capture trigger logs every row under its own change's stamp, and with the table whose
 * rows it updates ('' for an insert or a delete): the trigger stamps every other updated row
 * itself (rows a foreign key's action changes).
 *
 * @example
 *   await runWrites(tx, writes, (hlc, updating) => setWriter(tx, hlc, updating));
 */
export async function runWrites(
  tx: Transaction,
  writes: readonly RowWrite[],
  stampWith: (hlc: string, updating: string) => Promise<void>,
): Promise<void> {
  let i = 0;
  while (i < writes.length) {
    const key = groupKey(writes[i]!);
    // Two updates of one row in a run set the same columns: the later one is what counts.
    const group = new Map<string, RowWrite>();
    let j = i;
    for (; j < writes.length && groupKey(writes[j]!) === key; j++) {
      group.delete(writes[j]!.ref.key);
      group.set(writes[j]!.ref.key, writes[j]!);
    }
    const first = writes[i]!;
    await stampWith(first.hlc, first.kind === 'update' ? first.ref.table.$name : '');
    await runGroup(tx, [...group.values()]);
    i = j;
  }
}

/**
 * One write of a run of batches (`applyRunTogether`), with the batch it belongs to.
 *
 * @example
 *   const write: BatchWrite = { write, mutation: batch.mutationId };
 */
export interface BatchWrite {
  readonly write: RowWrite;
  readonly mutation: number;
}

/**
 * Who writes the next statement, for the capture trigger: the stamp, the batch and the table whose
 * rows it updates ('' for inserts and deletes); `rows`, when the statement holds rows of several
 * batches, each row's table, key, stamp and batch (the trigger logs each under its own).
 *
 * @example
 *   const writer: WriterName = { hlc, updating: '', mutation: 7 };
 */
export interface WriterName {
  readonly hlc: string;
  readonly updating: string;
  readonly mutation: number;
  readonly rows?: readonly { t: string; k: unknown; h: string; m: number }[];
}

/** The most rows one statement names in `syncline.writers` (a few hundred KB of JSON at most). */
const MAX_NAMED_ROWS = 5_000;

/**
 * Runs the writes of several batches in order, inserts and deletes of one table as one statement
 * across batches (each row named with its batch's stamp and id for the capture trigger, a row at
 * most once per statement), updates as `runWrites` groups them within each batch. `name` is called
 * before each statement.
 *
 * @example
 *   await runBatchWrites(tx, writes, (writer) => nameWriter(tx, writer));
 */
export async function runBatchWrites(
  tx: Transaction,
  writes: readonly BatchWrite[],
  name: (writer: WriterName) => Promise<void>,
): Promise<void> {
  let i = 0;
  while (i < writes.length) {
    const { write: first, mutation } = writes[i]!;
    if (first.kind === 'update') {
      const key = `${groupKey(first)}\u0001${mutation}`;
      const group = new Map<string, RowWrite>();
      let j = i;
      for (; j < writes.length && `${groupKey(writes[j]!.write)}\u0001${writes[j]!.mutation}` === key; j++) {
        group.delete(writes[j]!.write.ref.key);
        group.set(writes[j]!.write.ref.key, writes[j]!.write);
      }
      await name({ hlc: first.hlc, updating: first.ref.table.$name, mutation });
      await runGroup(tx, [...group.values()]);
      i = j;
      continue;
    }
    const keys = new Set<string>();
    const group: BatchWrite[] = [];
    let j = i;
    for (; j < writes.length; j++) {
      const next = writes[j]!;
      if (next.write.kind !== first.kind || next.write.ref.table !== first.ref.table) break;
      if (keys.has(next.write.ref.key) || group.length >= MAX_NAMED_ROWS) break;
      keys.add(next.write.ref.key);
      group.push(next);
    }
    const last = group[group.length - 1]!;
    const several = group.some((w) => w.mutation !== mutation || w.write.hlc !== first.hlc);
    await name({
      hlc: last.write.hlc,
      updating: '',
      mutation: last.mutation,
      ...(several
        ? {
            rows: group.map((w) => ({
              t: w.write.ref.table.$name,
              k: w.write.ref.pkJson,
              h: w.write.hlc,
              m: w.mutation,
            })),
          }
        : {}),
    });
    await runGroup(
      tx,
      group.map((w) => w.write),
    );
    i = j;
  }
}

/**
 * The server's version of each row (rows a rejected batch touched), for the client to restore:
 * the row encoded by SQL name, or null when it does not exist or this user may not read it.
 *
 * @example
 *   const rows = await readRestored(tx, decoded.touched, ctx.rules, ctx.user);
 */
export async function readRestored(
  scope: QueryScope,
  refs: readonly RowRef[],
  rules: RuleSet,
  user: SyncUser,
): Promise<RestoredRowJson[]> {
  const found = new Map<string, Row>();
  for (const [table, list] of byTable(refs)) {
    const filter = rules.readFilter(table, user);
    if (filter === 'none') continue;
    for (const [key, row] of await readRows(scope, table, list, filter)) found.set(key, row);
  }
  return refs.map((ref) => {
    const row = found.get(ref.key);
    return {
      table: ref.table.$name,
      pk: encodeRow(ref.table, ref.pk),
      // A value with no encoding is left out (the client reports a row it cannot have whole).
      row: row ? encodeRowSkipping(ref.table, row, []) : null,
    };
  });
}
