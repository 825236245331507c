import { boolean, index, schema, table, text, timestamp, uuid } from '../../src/index.js';

/**
 * The todo app's lists: one shared board that every user of the demo sees and edits (ids are made
 * on the client, so lists created offline never collide).
 *
 * @example
 *   await db.insert(lists).values({ name: 'Groceries', createdBy: 'alice' });
 */
export const lists = table('lists', {
  id: uuid().primaryKey().defaultRandom(),
  name: text().notNull(),
  createdBy: text('created_by').notNull(),
  createdAt: timestamp('created_at').notNull().defaultNow(),
});

/**
 * The todos of a list; deleting a list deletes its todos (on the client's SQLite and on PostgreSQL).
 *
 * @example
 *   await db.update(todos).set({ done: true }).where(eq(todos.id, id));
 */
export const todos = table(
  'todos',
  {
    id: uuid().primaryKey().defaultRandom(),
    listId: uuid('list_id')
      .notNull()
      .references(() => lists.id, { onDelete: 'cascade' }),
    title: text().notNull(),
    done: boolean().notNull().default(false),
    createdAt: timestamp('created_at').notNull().defaultNow(),
  },
  (t) => [index('todos_list_idx').on(t.listId)],
);

/**
 * The one schema of the todo app, imported by the web page (SQLite WASM) and the server
 * (PostgreSQL or PGlite): both tables are synced.
 *
 * @example
 *   const db = await openDatabase(todoSchema, sqliteWasm({ name: 'todo.db' }));
 */
export const todoSchema = schema({ lists, todos }, { version: 1 });

/** A list as the page reads it. @example const names = rows.map((l: List) => l.name); */
export type List = typeof lists.$inferSelect;

/** A todo as the page reads it. @example const open = rows.filter((t: Todo) => !t.done); */
export type Todo = typeof todos.$inferSelect;
