/**
 * Kysely on the same tables. Kysely has no prepare(): the "prepared" cases compile the query once and
 * run `executeQuery` on a copy of the compiled query with the new parameter, which skips building
 * and compiling but not Kysely's plugins and driver layers. Its PostgreSQL driver sends unnamed
 * statements, so the server still parses and plans each one. Kysely does not convert values: rows
 * hold what the driver returns, and the app converts booleans and Dates for SQLite itself.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { type CompiledQuery, Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { type Contender, chunks, JOIN_LIMIT, rowsPerStatement, type TodoRow } from './fixture.js';
import { benchPool } from './raw.js';

interface ListTable {
  id: string;
  name: string;
  owner_id: string;
}

interface TodoTable<TBoolean, TTime> {
  id: string;
  list_id: string;
  title: string;
  position: number;
  done: TBoolean;
  updated_at: TTime;
}

interface Tables<TBoolean, TTime> {
  lists: ListTable;
  todos: TodoTable<TBoolean, TTime>;
  inserted_todos: TodoTable<TBoolean, TTime>;
}

/** SQLite stores booleans as 0/1 and timestamps as ms since the epoch (syncline's layout). */
type SqliteTables = Tables<number, number>;
type PostgresTables = Tables<boolean, Date>;

const MARKER = '\u0000parameter';

/** Runs a compiled query again with `value` where it was compiled with MARKER. */
function rerun<T>(db: Kysely<any>, compiled: CompiledQuery<T>): (value: unknown) => Promise<unknown> {
  const at = compiled.parameters.indexOf(MARKER);
  if (at < 0) throw new Error('kysely bench: the compiled query has no marker parameter');
  return (value) => {
    const parameters = compiled.parameters.slice();
    parameters[at] = value;
    return db.executeQuery({ ...compiled, parameters }).then((result) => result.rows);
  };
}

function contender<DB extends Tables<any, any>>(
  db: Kysely<DB>,
  dialect: 'sqlite' | 'postgres',
  toRow: (row: TodoRow) => DB['inserted_todos'],
): Contender {
  const k = db as unknown as Kysely<Tables<any, any>>;
  const byId = rerun(k, k.selectFrom('todos').selectAll().where('id', '=', MARKER).compile());
  const recent = rerun(
    k,
    k
      .selectFrom('todos as t')
      .innerJoin('lists as l', 't.list_id', 'l.id')
      .select(['t.id', 't.title', 't.done', 't.updated_at', 'l.name as list_name'])
      .where('l.owner_id', '=', MARKER)
      .orderBy('t.updated_at', 'desc')
      .limit(JOIN_LIMIT)
      .compile(),
  );
  const perStatement = rowsPerStatement(dialect, 6);
  return {
    selectPrepared: (id) => byId(id),
    selectFresh: (id) => k.selectFrom('todos').selectAll().where('id', '=', id).executeTakeFirst(),
    insertAll: (rows) =>
      k.transaction().execute(async (trx) => {
        for (const chunk of chunks(rows, perStatement)) {
          await trx.insertInto('inserted_todos').values(chunk.map(toRow)).execute();
        }
      }),
    recentForOwner: (owner) => recent(owner),
    // Kysely's SQLite driver would close the shared handle; the benchmark closes it itself.
    close: async () => {
      if (dialect === 'postgres') await db.destroy();
    },
  };
}

export function openKyselySqlite(handle: BetterSqlite3.Database): Contender {
  const db = new Kysely<SqliteTables>({ dialect: new SqliteDialect({ database: handle }) });
  return contender(db, 'sqlite', (r) => ({
    id: r.id,
    list_id: r.listId,
    title: r.title,
    position: r.position,
    done: r.done ? 1 : 0,
    updated_at: r.updatedAt.getTime(),
  }));
}

export function openKyselyPostgres(url: string, pgSchema: string): Contender {
  const db = new Kysely<PostgresTables>({ dialect: new PostgresDialect({ pool: benchPool(url, pgSchema) }) });
  return contender(db, 'postgres', (r) => ({
    id: r.id,
    list_id: r.listId,
    title: r.title,
    position: r.position,
    done: r.done,
    updated_at: r.updatedAt,
  }));
}
