import { type Database, sql } from '../../src/index.js';

/**
 * What a database holds right now, read from the catalog rather than from a declaration: the
 * tables, columns, indexes and triggers a migration left, and the stored schema version. Names
 * come back sorted so tests can compare them across dialects.
 */

const isSqlite = (db: Database<any>) => db.dialect.name === 'sqlite';

/** The stored schema version: `PRAGMA user_version` on SQLite, the `__schema` row on PostgreSQL (0 when absent). */
export async function storedVersion(db: Database<any>): Promise<number> {
  if (isSqlite(db)) {
    const [row] = await db.execute<{ user_version: number }>(sql`PRAGMA user_version`);
    return Number(row!.user_version);
  }
  if (!(await tableNames(db)).includes('__schema')) return 0;
  const rows = await db.execute<{ version: number }>(sql`SELECT version FROM __schema WHERE id = 1`);
  return rows.length === 0 ? 0 : Number(rows[0]!.version);
}

/** Every table of the database (SQLite's own excepted), `__schema` included on PostgreSQL. */
export async function tableNames(db: Database<any>): Promise<string[]> {
  const rows = isSqlite(db)
    ? await db.execute<{ name: string }>(
        sql`SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_'`,
      )
    : await db.execute<{ name: string }>(
        sql`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`,
      );
  return rows.map((r) => r.name).sort();
}

export interface LiveColumn {
  name: string;
  /** The type as the catalog spells it (SQLite: `INTEGER`; PostgreSQL: `integer`). */
  type: string;
  notNull: boolean;
  /** The default as SQL text, or null. */
  default: string | null;
}

/** The columns of a table in their order. */
export async function columnsOf(db: Database<any>, table: string): Promise<LiveColumn[]> {
  if (isSqlite(db)) {
    const rows = await db.execute<{ name: string; type: string; notnull: number; dflt_value: string | null }>(
      sql`PRAGMA table_info(${sql.identifier(table)})`,
    );
    return rows.map((r) => ({ name: r.name, type: r.type, notNull: r.notnull === 1, default: r.dflt_value }));
  }
  const rows = await db.execute<{
    name: string;
    type: string;
    nullable: string;
    dflt: string | null;
  }>(
    sql`SELECT column_name AS name, data_type AS type, is_nullable AS nullable, column_default AS dflt
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = ${table} ORDER BY ordinal_position`,
  );
  return rows.map((r) => ({ name: r.name, type: r.type, notNull: r.nullable === 'NO', default: r.dflt }));
}

/** The names of a table's columns in their order. */
export async function columnNames(db: Database<any>, table: string): Promise<string[]> {
  return (await columnsOf(db, table)).map((c) => c.name);
}

/**
 * The indexes created by name on a table: declared indexes and ones made with SQL, not those
 * behind a primary key or unique constraint.
 */
export async function indexNames(db: Database<any>, table: string): Promise<string[]> {
  const rows = isSqlite(db)
    ? await db.execute<{ name: string }>(
        sql`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ${table} AND sql IS NOT NULL`,
      )
    : await db.execute<{ name: string }>(
        sql`SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(${table}))
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`,
      );
  return rows.map((r) => r.name).sort();
}

/** The triggers on a table. */
export async function triggerNames(db: Database<any>, table: string): Promise<string[]> {
  const rows = isSqlite(db)
    ? await db.execute<{ name: string }>(
        sql`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ${table}`,
      )
    : await db.execute<{ name: string }>(
        sql`SELECT tgname AS name FROM pg_trigger
            WHERE tgrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(${table}))
              AND NOT tgisinternal`,
      );
  return rows.map((r) => r.name).sort();
}

/** Runs `promise` and gives back what it threw; fails when it resolves. */
export async function rejection(promise: PromiseLike<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
