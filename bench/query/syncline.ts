/**
 * syncline on both dialects, written the way the README shows it. The same schema creates the
 * benchmark's tables on SQLite and on PostgreSQL; the other libraries query those tables.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import {
  boolean,
  type Database,
  desc,
  eq,
  index,
  integer,
  openDatabase,
  schema,
  sql,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';
import { type Contender, chunks, JOIN_LIMIT, rowsPerStatement, type TodoRow } from './fixture.js';

export const lists = table(
  'lists',
  {
    id: uuid().primaryKey(),
    name: text().notNull(),
    ownerId: text('owner_id').notNull(),
  },
  (t) => [index('lists_owner_idx').on(t.ownerId)],
);

export const todos = table(
  'todos',
  {
    id: uuid().primaryKey(),
    listId: uuid('list_id')
      .notNull()
      .references(() => lists.id),
    title: text().notNull(),
    position: integer().notNull(),
    done: boolean().notNull(),
    updatedAt: timestamp('updated_at').notNull(),
  },
  (t) => [index('todos_list_idx').on(t.listId)],
);

/** The bulk insert's target: the todos' columns, emptied before every insert. */
export const insertedTodos = table('inserted_todos', {
  id: uuid().primaryKey(),
  listId: uuid('list_id').notNull(),
  title: text().notNull(),
  position: integer().notNull(),
  done: boolean().notNull(),
  updatedAt: timestamp('updated_at').notNull(),
});

export const benchSchema = schema({ lists, todos, insertedTodos });

function contender(db: Database, dialect: 'sqlite' | 'postgres'): Contender {
  const byId = db
    .select()
    .from(todos)
    .where(eq(todos.id, sql.placeholder('id')))
    .prepare();
  const recent = db
    .select({
      id: todos.id,
      title: todos.title,
      done: todos.done,
      updatedAt: todos.updatedAt,
      listName: lists.name,
    })
    .from(todos)
    .innerJoin(lists, eq(todos.listId, lists.id))
    .where(eq(lists.ownerId, sql.placeholder('owner')))
    .orderBy(desc(todos.updatedAt))
    .limit(JOIN_LIMIT)
    .prepare();
  const perStatement = rowsPerStatement(dialect, insertedTodos.$columnList.length);
  return {
    selectPrepared: (id) => byId.execute({ id }),
    selectFresh: (id) => db.select().from(todos).where(eq(todos.id, id)),
    insertAll: (rows: readonly TodoRow[]) =>
      db.transaction(async (tx) => {
        // As many rows per statement as the dialect's parameter limit allows.
        for (const chunk of chunks(rows, perStatement)) await tx.insert(insertedTodos).values(chunk);
      }),
    recentForOwner: (owner) => recent.execute({ owner }),
    close: () => db.close(),
  };
}

/** syncline on a better-sqlite3 handle the benchmark owns (and closes). Creates the tables. */
export async function openSynclineSqlite(handle: BetterSqlite3.Database): Promise<Contender> {
  const db = await openDatabase(benchSchema, sqlite({ database: handle }));
  return contender(db, 'sqlite');
}

/** syncline on its own node-postgres pool, working in `pgSchema`. Creates the schema and tables. */
export async function openSynclinePostgres(url: string, pgSchema: string): Promise<Contender> {
  const db = await openDatabase(benchSchema, postgres({ connectionString: url, schema: pgSchema }));
  return contender(db, 'postgres');
}
