/**
 * How the soak's writes are made: through the query builder (a client's SQLite Database, or the
 * server's `server.db`), or as raw SQL on a PostgreSQL connection of its own. The PostgreSQL
 * paths also read back, in the same transaction, what the capture triggers logged for them, with
 * the stamps PostgreSQL's clock gave them: the checker needs those stamps to know which write is
 * newer.
 */

import type { Transaction } from '../src/database/transaction.js';
import { type Database, eq, sql } from '../src/index.js';
import type { AnyTable } from '../src/schema/table.js';
import type { Write } from './plan.js';
import type { SoakSchema } from './schema.js';

/**
 * One change the capture triggers logged for a backend write: `values` are the new values of the
 * columns it wrote (all of them for an insert), as the log holds them (JSON forms).
 *
 * @example
 *   { table: 'items', op: 'D', pk: { id }, values: undefined, hlc: '1767225600000-00000-postgres' }
 */
export interface LoggedChange {
  readonly table: string;
  readonly op: 'I' | 'U' | 'D';
  readonly pk: Record<string, unknown>;
  readonly oldPk?: Record<string, unknown>;
  readonly values?: Record<string, unknown>;
  readonly hlc: string;
  /** The transaction's id (text), which the server's log order is looked up by. */
  readonly txid?: string;
}

function tableOf(s: SoakSchema, name: string): AnyTable {
  return name === 'owners' ? s.owners : s.items;
}

/** SQL-name keyed values to the column keys the query builder takes. */
function byKey(table: AnyTable, values: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) {
    const column = table.$columnBySqlName(name);
    if (!column) throw new Error(`soak: ${table.$name} has no column ${name}`);
    out[column.key] = value;
  }
  return out;
}

async function writeOne(tx: Transaction | Database<any>, s: SoakSchema, w: Write): Promise<void> {
  const table = tableOf(s, w.table) as any;
  const id = table.$columnBySqlName('id');
  switch (w.op) {
    case 'insert':
      await tx
        .insert(table)
        .values(byKey(table, { id: w.key, ...w.values }))
        .onConflictDoNothing();
      return;
    case 'update':
      await tx.update(table).set(byKey(table, w.values!)).where(eq(id, w.key));
      return;
    case 'delete':
      await tx.delete(table).where(eq(id, w.key));
      return;
    case 'rekey':
      await tx.update(table).set({ id: w.newKey }).where(eq(id, w.key));
      return;
  }
}

/**
 * Makes `writes` in one transaction with the query builder.
 *
 * @example
 *   await applyWrites(db, s, step.writes);
 */
export async function applyWrites(db: Database<any>, s: SoakSchema, writes: readonly Write[]): Promise<void> {
  await db.transaction(async (tx) => {
    for (const w of writes) await writeOne(tx, s, w);
  });
}

/**
 * The log rows of the current transaction (call inside it, after its writes).
 *
 * @example
 *   const logged = await loggedInThisTransaction(tx);
 */
export async function loggedInThisTransaction(tx: Transaction): Promise<LoggedChange[]> {
  const rows = await tx.execute<{
    table_name: string;
    op: 'I' | 'U' | 'D';
    pk: Record<string, unknown>;
    old_pk: Record<string, unknown> | null;
    row: Record<string, unknown> | null;
    old_values: Record<string, unknown> | null;
    hlc: string;
    txid: string;
  }>(
    sql`SELECT table_name, op, pk, old_pk, "row", old_values, hlc, txid::text AS txid FROM _syncline_changes WHERE txid = pg_current_xact_id() ORDER BY id`,
  );
  return rows.map((r) => {
    const parse = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v) as Record<string, unknown>;
    const row = r.row ? parse(r.row) : undefined;
    const old = r.old_values ? parse(r.old_values) : undefined;
    const values =
      r.op === 'D' || !row
        ? undefined
        : r.op === 'U' && old && !r.old_pk
          ? Object.fromEntries(Object.keys(old).map((k) => [k, row[k]]))
          : row;
    return {
      table: r.table_name,
      op: r.op,
      pk: parse(r.pk),
      oldPk: r.old_pk ? parse(r.old_pk) : undefined,
      values,
      hlc: r.hlc,
      txid: r.txid,
    };
  });
}

/**
 * `applyWrites` on the server's Database (PostgreSQL or PGlite), returning what capture logged.
 *
 * @example
 *   const logged = await applyServerWrites(server.db, s, step.writes);
 */
export async function applyServerWrites(
  db: Database<any>,
  s: SoakSchema,
  writes: readonly Write[],
): Promise<LoggedChange[]> {
  return db.transaction(async (tx) => {
    for (const w of writes) await writeOne(tx, s, w);
    return loggedInThisTransaction(tx);
  });
}

/** A value as a raw SQL parameter, with the cast its column needs. */
function param(table: AnyTable, name: string, value: unknown) {
  const kind = table.$columnBySqlName(name)?.type.kind;
  if (value === null) return sql`NULL`;
  if (kind === 'json') return sql`${JSON.stringify(value)}::jsonb`;
  if (kind === 'bigint') return sql`${String(value)}::bigint`;
  return sql`${value}`;
}

function rawStatement(s: SoakSchema, w: Write) {
  const table = tableOf(s, w.table);
  const target = sql.identifier(w.table);
  switch (w.op) {
    case 'insert': {
      const entries = Object.entries({ id: w.key, ...w.values });
      const columns = sql.join(entries.map(([name]) => sql.identifier(name)));
      const values = sql.join(entries.map(([name, value]) => param(table, name, value)));
      return sql`INSERT INTO ${target} (${columns}) VALUES (${values}) ON CONFLICT DO NOTHING`;
    }
    case 'update': {
      const sets = sql.join(
        Object.entries(w.values!).map(
          ([name, value]) => sql`${sql.identifier(name)} = ${param(table, name, value)}`,
        ),
      );
      return sql`UPDATE ${target} SET ${sets} WHERE id = ${w.key}`;
    }
    case 'delete':
      return sql`DELETE FROM ${target} WHERE id = ${w.key}`;
    case 'rekey':
      return sql`UPDATE ${target} SET id = ${w.newKey} WHERE id = ${w.key}`;
  }
}

/**
 * Makes `writes` (or a TRUNCATE of items) as hand-written SQL in one transaction of `db`, a
 * Database on a connection pool of its own (or, on PGlite, the server's), returning what capture
 * logged. An insert that finds its key or name taken does nothing; a foreign key it breaks fails
 * the whole transaction (the caller records that).
 *
 * @example
 *   const logged = await applyRawSql(direct, s, step.writes, false);
 */
export async function applyRawSql(
  db: Database<any>,
  s: SoakSchema,
  writes: readonly Write[],
  truncate: boolean,
): Promise<LoggedChange[]> {
  return db.transaction(async (tx) => {
    if (truncate) await tx.execute(sql`TRUNCATE items`);
    for (const w of writes) await tx.execute(rawStatement(s, w));
    return loggedInThisTransaction(tx);
  });
}
