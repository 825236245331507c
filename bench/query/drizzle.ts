/**
 * Drizzle ORM on the same tables: `sqliteTable` / `pgTable` declarations matching syncline's DDL, the
 * queries written as Drizzle's docs show them. Its better-sqlite3 transactions are synchronous (an
 * async callback would commit before its awaits ran), so the SQLite insert uses `.run()` inside one.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { desc, eq, sql } from 'drizzle-orm';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePostgres } from 'drizzle-orm/node-postgres';
import * as pgCore from 'drizzle-orm/pg-core';
import * as sqliteCore from 'drizzle-orm/sqlite-core';
import { type Contender, chunks, JOIN_LIMIT, rowsPerStatement } from './fixture.js';
import { benchPool } from './raw.js';

const sqliteTodoColumns = () => ({
  id: sqliteCore.text('id').primaryKey(),
  listId: sqliteCore.text('list_id').notNull(),
  title: sqliteCore.text('title').notNull(),
  position: sqliteCore.integer('position').notNull(),
  done: sqliteCore.integer('done', { mode: 'boolean' }).notNull(),
  updatedAt: sqliteCore.integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
});

const sqliteSchema = {
  lists: sqliteCore.sqliteTable('lists', {
    id: sqliteCore.text('id').primaryKey(),
    name: sqliteCore.text('name').notNull(),
    ownerId: sqliteCore.text('owner_id').notNull(),
  }),
  todos: sqliteCore.sqliteTable('todos', sqliteTodoColumns()),
  insertedTodos: sqliteCore.sqliteTable('inserted_todos', sqliteTodoColumns()),
};

const pgTodoColumns = () => ({
  id: pgCore.uuid('id').primaryKey(),
  listId: pgCore.uuid('list_id').notNull(),
  title: pgCore.text('title').notNull(),
  position: pgCore.integer('position').notNull(),
  done: pgCore.boolean('done').notNull(),
  updatedAt: pgCore.timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
});

const pgSchemaTables = {
  lists: pgCore.pgTable('lists', {
    id: pgCore.uuid('id').primaryKey(),
    name: pgCore.text('name').notNull(),
    ownerId: pgCore.text('owner_id').notNull(),
  }),
  todos: pgCore.pgTable('todos', pgTodoColumns()),
  insertedTodos: pgCore.pgTable('inserted_todos', pgTodoColumns()),
};

export function openDrizzleSqlite(handle: BetterSqlite3.Database): Contender {
  const db = drizzleSqlite({ client: handle });
  const { lists, todos, insertedTodos } = sqliteSchema;
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
  const perStatement = rowsPerStatement('sqlite', 6);
  return {
    selectPrepared: (id) => byId.execute({ id }),
    selectFresh: (id) => db.select().from(todos).where(eq(todos.id, id)),
    insertAll: (rows) =>
      db.transaction((tx) => {
        for (const chunk of chunks(rows, perStatement)) tx.insert(insertedTodos).values(chunk).run();
      }),
    recentForOwner: (owner) => recent.execute({ owner }),
    close: async () => {},
  };
}

export function openDrizzlePostgres(url: string, pgSchema: string): Contender {
  const pool = benchPool(url, pgSchema);
  const db = drizzlePostgres({ client: pool });
  const { lists, todos, insertedTodos } = pgSchemaTables;
  const byId = db
    .select()
    .from(todos)
    .where(eq(todos.id, sql.placeholder('id')))
    .prepare('drizzle_todo_by_id');
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
    .prepare('drizzle_recent_for_owner');
  const perStatement = rowsPerStatement('postgres', 6);
  return {
    selectPrepared: (id) => byId.execute({ id }),
    selectFresh: (id) => db.select().from(todos).where(eq(todos.id, id)),
    insertAll: (rows) =>
      db.transaction(async (tx) => {
        for (const chunk of chunks(rows, perStatement)) await tx.insert(insertedTodos).values(chunk);
      }),
    recentForOwner: (owner) => recent.execute({ owner }),
    close: () => pool.end(),
  };
}
