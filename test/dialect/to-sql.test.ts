import { expect, it } from 'vitest';
import {
  and,
  asc,
  count,
  desc,
  eq,
  excluded,
  gt,
  ilike,
  inArray,
  max,
  notInArray,
  sql,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { appSchema, lists, todos } from '../support/fixtures.js';

const L = '30000000-0000-4000-8000-000000000001';
const T = '30000000-0000-4000-8000-000000000002';

/**
 * The exact text and parameters each dialect gets. Every query is also run afterwards, so the text
 * shown is text the database accepts.
 */
dialectSuite('toSQL()', (env) => {
  const pick = (sqlite: string, postgres: string) => (env.driver.dialect === 'sqlite' ? sqlite : postgres);
  const sqliteOr = (sqlite: unknown, postgres: unknown) =>
    env.driver.dialect === 'sqlite' ? sqlite : postgres;

  const open = async () => {
    const db = await env.open(appSchema);
    await db.insert(lists).values({ id: L, name: 'Groceries', ownerId: 'u1' });
    return db;
  };

  it('select with where, order (nulls last), limit and offset', async () => {
    const db = await open();
    const q = db
      .select({ id: todos.id, title: todos.title })
      .from(todos)
      .where(
        and(
          eq(todos.listId, L),
          eq(todos.done, false),
          gt(todos.updatedAt, new Date('2024-01-02T03:04:05.678Z')),
        ),
      )
      .orderBy(desc(todos.updatedAt), asc(todos.position).nullsLast())
      .limit(20)
      .offset(40);
    expect(q.toSQL()).toEqual({
      sql: pick(
        'SELECT "todos"."id", "todos"."title" FROM "todos" WHERE ("todos"."list_id" = ? AND "todos"."done" = ? AND "todos"."updated_at" > ?) ORDER BY "todos"."updated_at" DESC, "todos"."position" ASC NULLS LAST LIMIT ? OFFSET ?',
        'SELECT "todos"."id", "todos"."title" FROM "todos" WHERE ("todos"."list_id" = $1 AND "todos"."done" = $2 AND "todos"."updated_at" > $3) ORDER BY "todos"."updated_at" DESC, "todos"."position" ASC NULLS LAST LIMIT $4 OFFSET $5',
      ),
      // Values are encoded by their column's type: 0 and ms on SQLite, false and ISO text on PostgreSQL.
      params: [L, sqliteOr(0, false), sqliteOr(1704164645678, '2024-01-02T03:04:05.678Z'), 20, 40],
    });
    expect(await q).toEqual([]);
  });

  it('select of whole rows names renamed columns by their keys', async () => {
    const db = await open();
    const q = db.select().from(lists).where(eq(lists.ownerId, 'u1'));
    expect(q.toSQL()).toEqual({
      sql: pick(
        'SELECT "lists"."id", "lists"."name", "lists"."owner_id" AS "ownerId" FROM "lists" WHERE "lists"."owner_id" = ?',
        'SELECT "lists"."id", "lists"."name", "lists"."owner_id" AS "ownerId" FROM "lists" WHERE "lists"."owner_id" = $1',
      ),
      params: ['u1'],
    });
    expect(await q).toEqual([{ id: L, name: 'Groceries', ownerId: 'u1' }]);
  });

  it('inner and left join', async () => {
    const db = await open();
    const join = db
      .select({ title: todos.title, list: lists.name })
      .from(todos)
      .innerJoin(lists, eq(todos.listId, lists.id))
      .where(eq(lists.ownerId, 'u1'));
    expect(join.toSQL()).toEqual({
      sql: pick(
        'SELECT "todos"."title", "lists"."name" AS "list" FROM "todos" INNER JOIN "lists" ON "todos"."list_id" = "lists"."id" WHERE "lists"."owner_id" = ?',
        'SELECT "todos"."title", "lists"."name" AS "list" FROM "todos" INNER JOIN "lists" ON "todos"."list_id" = "lists"."id" WHERE "lists"."owner_id" = $1',
      ),
      params: ['u1'],
    });
    expect(await join).toEqual([]);
    const left = db
      .select({ list: lists.name, title: todos.title })
      .from(lists)
      .leftJoin(todos, and(eq(todos.listId, lists.id), eq(todos.done, true)));
    expect(left.toSQL()).toEqual({
      sql: pick(
        'SELECT "lists"."name" AS "list", "todos"."title" FROM "lists" LEFT JOIN "todos" ON ("todos"."list_id" = "lists"."id" AND "todos"."done" = ?)',
        'SELECT "lists"."name" AS "list", "todos"."title" FROM "lists" LEFT JOIN "todos" ON ("todos"."list_id" = "lists"."id" AND "todos"."done" = $1)',
      ),
      params: [sqliteOr(1, true)],
    });
    expect(await left).toEqual([{ list: 'Groceries', title: null }]);
  });

  it('group by and having', async () => {
    const db = await open();
    const q = db
      .select({ listId: todos.listId, n: count(), last: max(todos.updatedAt) })
      .from(todos)
      .groupBy(todos.listId)
      .having(gt(count(), 2));
    expect(q.toSQL()).toEqual({
      sql: pick(
        'SELECT "todos"."list_id" AS "listId", count(*) AS "n", max("todos"."updated_at") AS "last" FROM "todos" GROUP BY "todos"."list_id" HAVING count(*) > ?',
        'SELECT "todos"."list_id" AS "listId", count(*) AS "n", max("todos"."updated_at") AS "last" FROM "todos" GROUP BY "todos"."list_id" HAVING count(*) > $1',
      ),
      params: [2],
    });
    expect(await q).toEqual([]);
  });

  it('insert with onConflictDoUpdate and returning', async () => {
    const db = await open();
    const q = db
      .insert(todos)
      .values({ id: T, listId: L, title: 'Milk', tags: ['a'] })
      .onConflictDoUpdate({ target: todos.id, set: { title: excluded(todos.title), done: false } })
      .returning({ id: todos.id, title: todos.title });
    expect(q.toSQL()).toEqual({
      sql: pick(
        'INSERT INTO "todos" ("id", "list_id", "title", "tags") VALUES (?, ?, ?, ?) ON CONFLICT ("id") DO UPDATE SET "title" = excluded."title", "done" = ? RETURNING "id", "title"',
        'INSERT INTO "todos" ("id", "list_id", "title", "tags") VALUES ($1, $2, $3, $4) ON CONFLICT ("id") DO UPDATE SET "title" = excluded."title", "done" = $5 RETURNING "id", "title"',
      ),
      params: [T, L, 'Milk', '["a"]', sqliteOr(0, false)],
    });
    expect(await q).toEqual([{ id: T, title: 'Milk' }]);
    const again = await db
      .insert(todos)
      .values({ id: T, listId: L, title: 'Oat milk' })
      .onConflictDoUpdate({ target: todos.id, set: { title: excluded(todos.title), done: false } })
      .returning({ id: todos.id, title: todos.title });
    expect(again).toEqual([{ id: T, title: 'Oat milk' }]);
    expect(await db.select({ id: todos.id }).from(todos)).toHaveLength(1);
  });

  it('update', async () => {
    const db = await open();
    const q = db
      .update(todos)
      .set({ done: true, updatedAt: new Date(0) })
      .where(eq(todos.id, T));
    expect(q.toSQL()).toEqual({
      sql: pick(
        'UPDATE "todos" SET "done" = ?, "updated_at" = ? WHERE "todos"."id" = ?',
        'UPDATE "todos" SET "done" = $1, "updated_at" = $2 WHERE "todos"."id" = $3',
      ),
      params: [sqliteOr(1, true), sqliteOr(0, '1970-01-01T00:00:00.000Z'), T],
    });
    expect(await q).toEqual({ rowsAffected: 0 });
  });

  it('delete with returning', async () => {
    const db = await open();
    const q = db.delete(todos).where(eq(todos.done, true)).returning({ id: todos.id, at: todos.updatedAt });
    expect(q.toSQL()).toEqual({
      sql: pick(
        'DELETE FROM "todos" WHERE "todos"."done" = ? RETURNING "id", "updated_at" AS "at"',
        'DELETE FROM "todos" WHERE "todos"."done" = $1 RETURNING "id", "updated_at" AS "at"',
      ),
      params: [sqliteOr(1, true)],
    });
    expect(await q).toEqual([]);
  });

  it('ilike: lower() LIKE lower() on SQLite, ILIKE on PostgreSQL', async () => {
    const db = await open();
    const q = db.select({ id: lists.id }).from(lists).where(ilike(lists.name, 'GRO%'));
    expect(q.toSQL()).toEqual({
      sql: pick(
        'SELECT "lists"."id" FROM "lists" WHERE lower("lists"."name") LIKE lower(?)',
        'SELECT "lists"."id" FROM "lists" WHERE "lists"."name" ILIKE $1',
      ),
      params: ['GRO%'],
    });
    expect(await q).toEqual([{ id: L }]);
  });

  it('inArray and notInArray with an empty list become constant conditions', async () => {
    const db = await open();
    const none = db.select({ id: lists.id }).from(lists).where(inArray(lists.name, []));
    expect(none.toSQL()).toEqual({ sql: 'SELECT "lists"."id" FROM "lists" WHERE 1 = 0', params: [] });
    expect(await none).toEqual([]);
    const all = db.select({ id: lists.id }).from(lists).where(notInArray(lists.name, []));
    expect(all.toSQL()).toEqual({ sql: 'SELECT "lists"."id" FROM "lists" WHERE 1 = 1', params: [] });
    expect(await all).toEqual([{ id: L }]);
    const some = db
      .select({ id: lists.id })
      .from(lists)
      .where(inArray(lists.name, ['a', 'b']));
    expect(some.toSQL()).toEqual({
      sql: pick(
        'SELECT "lists"."id" FROM "lists" WHERE "lists"."name" IN (?, ?)',
        'SELECT "lists"."id" FROM "lists" WHERE "lists"."name" IN ($1, $2)',
      ),
      params: ['a', 'b'],
    });
  });

  it('offset without limit: SQLite needs LIMIT -1', async () => {
    const db = await open();
    const q = db.select({ id: lists.id }).from(lists).offset(5);
    expect(q.toSQL()).toEqual({
      sql: pick(
        'SELECT "lists"."id" FROM "lists" LIMIT -1 OFFSET ?',
        'SELECT "lists"."id" FROM "lists" OFFSET $1',
      ),
      params: [5],
    });
    expect(await q).toEqual([]);
  });

  it('union with order by and limit on the whole compound', async () => {
    const db = await open();
    const q = db
      .select({ name: lists.name })
      .from(lists)
      .where(eq(lists.ownerId, 'u1'))
      .union(db.select({ name: lists.name }).from(lists).where(eq(lists.ownerId, 'u2')))
      .orderBy(desc(lists.name))
      .limit(3);
    expect(q.toSQL()).toEqual({
      sql: pick(
        'SELECT "lists"."name" FROM "lists" WHERE "lists"."owner_id" = ? UNION SELECT "lists"."name" FROM "lists" WHERE "lists"."owner_id" = ? ORDER BY "name" DESC LIMIT ?',
        'SELECT "lists"."name" FROM "lists" WHERE "lists"."owner_id" = $1 UNION SELECT "lists"."name" FROM "lists" WHERE "lists"."owner_id" = $2 ORDER BY "name" DESC LIMIT $3',
      ),
      params: ['u1', 'u2', 3],
    });
    expect(await q).toEqual([{ name: 'Groceries' }]);
  });

  it('a placeholder shows as an undefined parameter until the prepared query runs', async () => {
    const db = await open();
    const prepared = db
      .select({ name: lists.name })
      .from(lists)
      .where(eq(lists.id, sql.placeholder('id')))
      .limit(1)
      .prepare();
    expect(prepared.toSQL()).toEqual({
      sql: pick(
        'SELECT "lists"."name" FROM "lists" WHERE "lists"."id" = ? LIMIT ?',
        'SELECT "lists"."name" FROM "lists" WHERE "lists"."id" = $1 LIMIT $2',
      ),
      params: [undefined, 1],
    });
    expect(await prepared.execute({ id: L })).toEqual([{ name: 'Groceries' }]);
  });
});
