import {
  type Database,
  eq,
  excluded,
  type InsertRow,
  type Placeholder,
  type SQL,
  sql,
  type UpdateSet,
  type WriteResult,
} from '../../src/index.js';
import { expectType, type ResultOf } from './assert.js';
import { type appSchema, drafts, lists, samples, type Todo, todos, type UserId } from './schema.js';

declare const db: Database<typeof appSchema>;
declare const userId: UserId;

// Writes without returning() resolve to { rowsAffected }.

const insert = db.insert(todos).values({ listId: 'l1', title: 'Milk' });
expectType<ResultOf<typeof insert>>().toBe<WriteResult>();
expectType<WriteResult>().toBe<{ rowsAffected: number }>();

const update = db.update(todos).set({ done: true }).where(eq(todos.id, 't1'));
expectType<ResultOf<typeof update>>().toBe<WriteResult>();

const remove = db.delete(todos).where(eq(todos.done, true));
expectType<ResultOf<typeof remove>>().toBe<WriteResult>();

const removeAll = db.delete(drafts).allRows();
expectType<ResultOf<typeof removeAll>>().toBe<WriteResult>();

const upsert = db
  .insert(todos)
  .values([
    { listId: 'l1', title: 'Milk' },
    { listId: 'l1', title: 'Eggs', done: true, tags: ['x'] },
  ])
  .onConflictDoUpdate({ target: todos.id, set: { title: excluded(todos.title), done: false } })
  .onConflictDoNothing({ target: [todos.id] });
expectType<ResultOf<typeof upsert>>().toBe<WriteResult>();

// returning() gives whole rows; returning({...}) the chosen fields.

const inserted = db.insert(todos).values({ listId: 'l1', title: 'Milk' }).returning();
expectType<ResultOf<typeof inserted>>().toBe<Todo[]>();

const insertedIds = db
  .insert(todos)
  .values({ listId: 'l1', title: 'Milk' })
  .onConflictDoNothing()
  .returning({ id: todos.id, at: todos.updatedAt, upper: sql<string>`upper(${todos.title})` });
expectType<ResultOf<typeof insertedIds>>().toBe<{ id: string; at: Date; upper: string }[]>();

const updated = db.update(todos).set({ note: null }).allRows().returning();
expectType<ResultOf<typeof updated>>().toBe<Todo[]>();

const updatedNotes = db
  .update(todos)
  .set({ note: 'n' })
  .where(eq(todos.id, 't1'))
  .returning({ note: todos.note });
expectType<ResultOf<typeof updatedNotes>>().toBe<{ note: string | null }[]>();

const deleted = db.delete(lists).where(eq(lists.ownerId, 'u1')).returning();
expectType<ResultOf<typeof deleted>>().toBe<(typeof lists.$inferSelect)[]>();

const deletedIds = db.delete(lists).where(eq(lists.ownerId, 'u1')).returning({ id: lists.id });
expectType<ResultOf<typeof deletedIds>>().toBe<{ id: string }[]>();

// Prepared writes resolve like the builder they came from.

const preparedInsert = db
  .insert(lists)
  .values({ name: sql.placeholder('name'), ownerId: sql.placeholder('owner') })
  .returning({ id: lists.id })
  .prepare();
expectType<Awaited<ReturnType<typeof preparedInsert.execute>>>().toBe<{ id: string }[]>();

const preparedDelete = db
  .delete(todos)
  .where(eq(todos.id, sql.placeholder('id')))
  .prepare();
expectType<Awaited<ReturnType<typeof preparedDelete.execute>>>().toBe<WriteResult>();

// What values() and set() accept: the insert type, where a value may also be SQL or a placeholder.

type Written<T> = T | SQL<unknown> | Placeholder;
expectType<InsertRow<typeof lists>>().toBe<{
  name: Written<string>;
  ownerId: Written<string>;
  id?: Written<string> | undefined;
}>();
expectType<keyof UpdateSet<typeof todos>>().toBe<keyof Todo>();

db.insert(samples).values({
  id: 1,
  userId,
  size: 10n,
  at: { x: 1, y: 2 },
  flag: false,
  status: 'closed',
  meta: { a: 1 },
  anything: { whatever: [1, 'two'] },
  avatar: new Uint8Array(),
  seenAt: null,
  createdAt: sql`now()`,
});
db.insert(drafts).values({ id: 'd1' });
db.update(samples).set({ level: 'high', bytesSeen: null, score: 1.5, price: '9.99' }).allRows();

db.insert(todos).values({
  listId: 'l1',
  // @ts-expect-error a number for a text column
  title: 1,
});
db.insert(todos).values({
  listId: 'l1',
  title: 'Milk',
  // @ts-expect-error a string for a timestamp column
  updatedAt: '2024-01-01',
});
db.insert(todos).values({
  listId: 'l1',
  // @ts-expect-error null for a not-null column
  title: null,
});
db.insert(samples).values({
  id: 1,
  // @ts-expect-error a plain string for a branded column
  userId: 'u1',
  size: 10n,
  at: { x: 1, y: 2 },
  flag: false,
});
db.insert(samples).values({
  id: 1,
  userId,
  // @ts-expect-error a number for a bigint column
  size: 10,
  at: { x: 1, y: 2 },
  flag: false,
});
db.insert(samples).values({
  id: 1,
  userId,
  size: 10n,
  at: { x: 1, y: 2 },
  flag: false,
  // @ts-expect-error a value outside the enum
  status: 'archived',
});
db.insert(samples).values({
  id: 1,
  userId,
  size: 10n,
  // @ts-expect-error the custom type's data type is { x, y }
  at: '1,2',
  flag: false,
});
db.insert(todos).values({
  listId: 'l1',
  title: 'Milk',
  // @ts-expect-error json<string[]> takes string arrays
  tags: [1],
});
db.insert(todos).values({
  listId: 'l1',
  // @ts-expect-error a column is not a value (VALUES cannot refer to columns)
  title: todos.note,
});
db.insert(todos).values({
  listId: 'l1',
  title: 'Milk',
  // @ts-expect-error unknown column key
  colour: 'red',
});
db.insert(todos).values({
  listId: 'l1',
  title: 'Milk',
  // @ts-expect-error the SQL name is not the key (updatedAt, not updated_at)
  updated_at: new Date(),
});
// @ts-expect-error the required column title is missing
db.insert(todos).values({ listId: 'l1' });
// @ts-expect-error a primary key without a default must be given
db.insert(drafts).values({ body: 'x' });
// @ts-expect-error a missing required column in one row of many
db.insert(todos).values([{ listId: 'l1', title: 'Milk' }, { listId: 'l1' }]);

// @ts-expect-error unknown column key in set()
db.update(todos).set({ colour: 'red' });
// @ts-expect-error a string for a boolean column in set()
db.update(todos).set({ done: 'yes' });
// @ts-expect-error null for a not-null column in set()
db.update(todos).set({ title: null });
// @ts-expect-error upsert target must be a column of the inserted table
db.insert(todos).values({ listId: 'l1', title: 'Milk' }).onConflictDoNothing({ target: lists.id });
db.insert(todos)
  .values({ listId: 'l1', title: 'Milk' })
  // @ts-expect-error upsert set() checks value types too
  .onConflictDoUpdate({ target: todos.id, set: { done: 'yes' } });
// @ts-expect-error insert() takes a table
db.insert(todos.id);
// @ts-expect-error a returning() field must be a column or an expression
db.delete(todos).allRows().returning({ id: 'id' });
