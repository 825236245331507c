import { expect, it } from 'vitest';
import {
  alias,
  and,
  asc,
  avg,
  between,
  count,
  countDistinct,
  type Database,
  desc,
  eq,
  exists,
  fn,
  gt,
  gte,
  ilike,
  inArray,
  isNotNull,
  isNull,
  like,
  lt,
  lte,
  max,
  min,
  ne,
  not,
  notBetween,
  notExists,
  notInArray,
  or,
  sql,
  sum,
  UsageError,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { appSchema, lists, todos } from '../support/fixtures.js';

const GROCERIES = '10000000-0000-4000-8000-000000000001';
const WORK = '10000000-0000-4000-8000-000000000002';
const EMPTY = '10000000-0000-4000-8000-000000000003';

const day = (d: number) => new Date(Date.UTC(2024, 0, d, 10, 0, 0, 250));

/**
 * Three lists (one without todos) and five todos: positions 1-4 and one null, notes partly null,
 * titles that differ only in case ('Milk', 'milk powder').
 */
async function seed(db: Database<typeof appSchema>) {
  await db.insert(lists).values([
    { id: GROCERIES, name: 'Groceries', ownerId: 'u1' },
    { id: WORK, name: 'Work', ownerId: 'u1' },
    { id: EMPTY, name: 'Empty', ownerId: 'u2' },
  ]);
  await db.insert(todos).values([
    { listId: GROCERIES, title: 'Milk', done: false, position: 1, note: null, updatedAt: day(1) },
    {
      listId: GROCERIES,
      title: 'milk powder',
      done: true,
      position: 2,
      note: 'tin',
      updatedAt: day(2),
      tags: ['a'],
    },
    { listId: GROCERIES, title: 'Bread', done: false, position: null, note: 'rye', updatedAt: day(3) },
    { listId: WORK, title: 'Report', done: true, position: 3, note: null, updatedAt: day(4) },
    { listId: WORK, title: 'Email', done: false, position: 4, note: 'inbox', updatedAt: day(5) },
  ]);
  return db;
}

dialectSuite('select', (env) => {
  const open = async () => seed(await env.open(appSchema));
  const titles = (rows: { title: string }[]) => rows.map((r) => r.title);

  it('select() returns whole rows with every column decoded', async () => {
    const db = await open();
    const rows = await db.select().from(todos).where(eq(todos.title, 'milk powder'));
    expect(rows).toEqual([
      {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        listId: GROCERIES,
        title: 'milk powder',
        done: true,
        updatedAt: day(2),
        tags: ['a'],
        note: 'tin',
        position: 2,
      },
    ]);
  });

  it('select({...}) returns the chosen columns under the chosen keys', async () => {
    const db = await open();
    const rows = await db
      .select({ name: todos.title, finished: todos.done, list: todos.listId })
      .from(todos)
      .where(eq(todos.title, 'Report'));
    expect(rows).toEqual([{ name: 'Report', finished: true, list: WORK }]);
  });

  it('eq and ne', async () => {
    const db = await open();
    expect(titles(await db.select().from(todos).where(eq(todos.done, true)).orderBy(todos.title))).toEqual([
      'Report',
      'milk powder',
    ]);
    expect(
      titles(await db.select().from(todos).where(ne(todos.listId, GROCERIES)).orderBy(todos.title)),
    ).toEqual(['Email', 'Report']);
  });

  it('gt, gte, lt, lte skip nulls and compare timestamps as times', async () => {
    const db = await open();
    const q = (c: ReturnType<typeof gt>) => db.select().from(todos).where(c).orderBy(todos.position);
    expect(titles(await q(gt(todos.position, 2)))).toEqual(['Report', 'Email']);
    expect(titles(await q(gte(todos.position, 2)))).toEqual(['milk powder', 'Report', 'Email']);
    expect(titles(await q(lt(todos.position, 2)))).toEqual(['Milk']);
    expect(titles(await q(lte(todos.position, 2)))).toEqual(['Milk', 'milk powder']);
    expect(titles(await q(gt(todos.updatedAt, day(4))))).toEqual(['Email']);
    // One millisecond before a stored time is still before it.
    expect(titles(await q(gte(todos.updatedAt, new Date(day(5).getTime() - 1))))).toEqual(['Email']);
    expect(titles(await q(gt(todos.updatedAt, day(5))))).toEqual([]);
  });

  it('like is case-sensitive on every dialect; ilike is not', async () => {
    const db = await open();
    const q = (c: ReturnType<typeof like>) => db.select().from(todos).where(c).orderBy(todos.title);
    expect(titles(await q(like(todos.title, 'Milk%')))).toEqual(['Milk']);
    expect(titles(await q(like(todos.title, 'milk%')))).toEqual(['milk powder']);
    expect(titles(await q(like(todos.title, '_ilk%')))).toEqual(['Milk', 'milk powder']);
    expect(titles(await q(ilike(todos.title, 'MILK%')))).toEqual(['Milk', 'milk powder']);
    expect(titles(await q(ilike(todos.title, '%POWDER')))).toEqual(['milk powder']);
  });

  it('inArray with values, an empty list and a subquery; notInArray', async () => {
    const db = await open();
    const q = (c: ReturnType<typeof inArray>) => db.select().from(todos).where(c).orderBy(todos.title);
    expect(titles(await q(inArray(todos.title, ['Milk', 'Email', 'nothing'])))).toEqual(['Email', 'Milk']);
    expect(await q(inArray(todos.title, []))).toEqual([]);
    expect(titles(await q(notInArray(todos.title, [])))).toHaveLength(5);
    expect(titles(await q(notInArray(todos.title, ['Milk', 'Bread'])))).toEqual([
      'Email',
      'Report',
      'milk powder',
    ]);
    const workLists = db.select({ id: lists.id }).from(lists).where(eq(lists.name, 'Work'));
    expect(titles(await q(inArray(todos.listId, workLists)))).toEqual(['Email', 'Report']);
    expect(titles(await q(notInArray(todos.listId, workLists)))).toEqual(['Bread', 'Milk', 'milk powder']);
  });

  it('isNull and isNotNull', async () => {
    const db = await open();
    const q = (c: ReturnType<typeof isNull>) => db.select().from(todos).where(c).orderBy(todos.title);
    expect(titles(await q(isNull(todos.note)))).toEqual(['Milk', 'Report']);
    expect(titles(await q(isNotNull(todos.note)))).toEqual(['Bread', 'Email', 'milk powder']);
    expect(titles(await q(isNull(todos.position)))).toEqual(['Bread']);
  });

  it('between and notBetween are inclusive, on numbers and timestamps', async () => {
    const db = await open();
    const q = (c: ReturnType<typeof between>) => db.select().from(todos).where(c).orderBy(todos.title);
    expect(titles(await q(between(todos.position, 2, 3)))).toEqual(['Report', 'milk powder']);
    expect(titles(await q(notBetween(todos.position, 2, 3)))).toEqual(['Email', 'Milk']);
    expect(titles(await q(between(todos.updatedAt, day(2), day(3))))).toEqual(['Bread', 'milk powder']);
  });

  it('exists and notExists with a correlated subquery', async () => {
    const db = await open();
    const hasTodos = db.select({ one: sql`1` }).from(todos).where(eq(todos.listId, lists.id));
    const names = (rows: { name: string }[]) => rows.map((r) => r.name);
    expect(names(await db.select().from(lists).where(exists(hasTodos)).orderBy(lists.name))).toEqual([
      'Groceries',
      'Work',
    ]);
    expect(names(await db.select().from(lists).where(notExists(hasTodos)))).toEqual(['Empty']);
    const hasOpenTodos = db
      .select({ one: sql`1` })
      .from(todos)
      .where(and(eq(todos.listId, lists.id), eq(todos.done, true), gt(todos.position, 2)));
    expect(names(await db.select().from(lists).where(exists(hasOpenTodos)))).toEqual(['Work']);
  });

  it('and, or and not combine conditions; undefined conditions are skipped', async () => {
    const db = await open();
    const q = (c: ReturnType<typeof and>) => db.select().from(todos).where(c).orderBy(todos.title);
    expect(titles(await q(and(eq(todos.listId, GROCERIES), eq(todos.done, false))))).toEqual([
      'Bread',
      'Milk',
    ]);
    expect(titles(await q(or(eq(todos.title, 'Milk'), gt(todos.position, 3))))).toEqual(['Email', 'Milk']);
    expect(titles(await q(not(eq(todos.listId, GROCERIES))))).toEqual(['Email', 'Report']);
    // AND binds tighter than OR unless the builder keeps the grouping: (a OR b) AND c.
    expect(
      titles(await q(and(or(eq(todos.title, 'Milk'), eq(todos.title, 'Report')), eq(todos.done, true)))),
    ).toEqual(['Report']);
    expect(titles(await q(not(or(eq(todos.done, true), isNull(todos.position))!)))).toEqual([
      'Email',
      'Milk',
    ]);
    expect(titles(await q(and(undefined, eq(todos.title, 'Email'), undefined)))).toEqual(['Email']);
    expect(and()).toBeUndefined();
    expect(titles(await q(and(undefined)))).toHaveLength(5);
  });

  it('orderBy: a bare column ascends; asc/desc with nullsFirst and nullsLast agree on every dialect', async () => {
    const db = await open();
    const by = async (term: ReturnType<typeof asc>) =>
      titles(await db.select().from(todos).orderBy(term, todos.title));
    expect(titles(await db.select().from(todos).orderBy(todos.title))).toEqual([
      'Bread',
      'Email',
      'Milk',
      'Report',
      'milk powder',
    ]);
    expect(await by(asc(todos.position).nullsFirst())).toEqual([
      'Bread',
      'Milk',
      'milk powder',
      'Report',
      'Email',
    ]);
    expect(await by(asc(todos.position).nullsLast())).toEqual([
      'Milk',
      'milk powder',
      'Report',
      'Email',
      'Bread',
    ]);
    expect(await by(desc(todos.position).nullsFirst())).toEqual([
      'Bread',
      'Email',
      'Report',
      'milk powder',
      'Milk',
    ]);
    expect(await by(desc(todos.position).nullsLast())).toEqual([
      'Email',
      'Report',
      'milk powder',
      'Milk',
      'Bread',
    ]);
    expect(titles(await db.select().from(todos).orderBy(desc(todos.updatedAt)).limit(2))).toEqual([
      'Email',
      'Report',
    ]);
  });

  it('limit, offset, and offset without limit', async () => {
    const db = await open();
    const base = db.select().from(todos).orderBy(todos.title);
    expect(titles(await base.limit(2))).toEqual(['Bread', 'Email']);
    expect(titles(await base.limit(2).offset(2))).toEqual(['Milk', 'Report']);
    expect(titles(await base.offset(3))).toEqual(['Report', 'milk powder']);
    expect(await base.limit(0)).toEqual([]);
    expect(await base.offset(10)).toEqual([]);
  });

  it('selectDistinct drops duplicate rows', async () => {
    const db = await open();
    const rows = await db.selectDistinct({ listId: todos.listId }).from(todos).orderBy(todos.listId);
    expect(rows).toEqual([{ listId: GROCERIES }, { listId: WORK }]);
    const all = await db.select({ listId: todos.listId }).from(todos);
    expect(all).toHaveLength(5);
  });

  it('count, countDistinct, sum and avg come back as numbers', async () => {
    const db = await open();
    const [row] = await db
      .select({
        all: count(),
        withNote: count(todos.note),
        lists: countDistinct(todos.listId),
        total: sum(todos.position),
        mean: avg(todos.position),
      })
      .from(todos);
    expect(row).toEqual({ all: 5, withNote: 3, lists: 2, total: 10, mean: 2.5 });
    const [none] = await db
      .select({ all: count(), total: sum(todos.position), mean: avg(todos.position), low: min(todos.title) })
      .from(todos)
      .where(eq(todos.title, 'nothing'));
    expect(none).toEqual({ all: 0, total: null, mean: null, low: null });
  });

  it('min and max decode like their column: a timestamp comes back as a Date', async () => {
    const db = await open();
    const [row] = await db
      .select({
        first: min(todos.updatedAt),
        last: max(todos.updatedAt),
        low: min(todos.position),
        high: max(todos.title),
      })
      .from(todos);
    expect(row!.first).toBeInstanceOf(Date);
    expect(row).toEqual({ first: day(1), last: day(5), low: 1, high: 'milk powder' });
  });

  it('groupBy and having', async () => {
    const db = await open();
    const rows = await db
      .select({ listId: todos.listId, n: count(), done: sum(sql`case when ${todos.done} then 1 else 0 end`) })
      .from(todos)
      .groupBy(todos.listId)
      .orderBy(todos.listId);
    expect(rows).toEqual([
      { listId: GROCERIES, n: 3, done: 1 },
      { listId: WORK, n: 2, done: 1 },
    ]);
    const big = await db
      .select({ listId: todos.listId, last: max(todos.updatedAt) })
      .from(todos)
      .groupBy(todos.listId)
      .having(gt(count(), 2));
    expect(big).toEqual([{ listId: GROCERIES, last: day(3) }]);
  });

  it('inner join of whole rows gives one object per table, keyed by table name', async () => {
    const db = await open();
    const rows = await db
      .select()
      .from(todos)
      .innerJoin(lists, eq(todos.listId, lists.id))
      .where(eq(todos.title, 'Report'));
    expect(rows).toEqual([
      {
        todos: expect.objectContaining({ title: 'Report', listId: WORK, done: true, updatedAt: day(4) }),
        lists: { id: WORK, name: 'Work', ownerId: 'u1' },
      },
    ]);
  });

  it('left join of whole rows: the joined table is null where nothing matches', async () => {
    const db = await open();
    const rows = await db
      .select()
      .from(lists)
      .leftJoin(todos, eq(todos.listId, lists.id))
      .orderBy(lists.name, todos.title);
    expect(rows.map((r) => [r.lists.name, r.todos?.title ?? null])).toEqual([
      ['Empty', null],
      ['Groceries', 'Bread'],
      ['Groceries', 'Milk'],
      ['Groceries', 'milk powder'],
      ['Work', 'Email'],
      ['Work', 'Report'],
    ]);
    expect(rows[0]!.todos).toBeNull();
    // A matched row whose nullable columns are null is still an object.
    const milk = rows.find((r) => r.todos?.title === 'Milk')!;
    expect(milk.todos).toMatchObject({ note: null, position: 1 });
  });

  it('a partial select with a left join gives null fields for the missing side', async () => {
    const db = await open();
    const rows = await db
      .select({ list: lists.name, todo: todos.title, at: todos.updatedAt })
      .from(lists)
      .leftJoin(todos, and(eq(todos.listId, lists.id), eq(todos.done, true)))
      .orderBy(lists.name);
    expect(rows).toEqual([
      { list: 'Empty', todo: null, at: null },
      { list: 'Groceries', todo: 'milk powder', at: day(2) },
      { list: 'Work', todo: 'Report', at: day(4) },
    ]);
  });

  it('a subquery in where: a scalar subquery compared with a column', async () => {
    const db = await open();
    const average = db.select({ a: avg(todos.position) }).from(todos);
    const rows = await db
      .select({ title: todos.title })
      .from(todos)
      .where(gt(todos.position, sql`${average}`))
      .orderBy(todos.title);
    expect(titles(rows)).toEqual(['Email', 'Report']);
  });

  it('a subquery in from: its fields are usable in where and orderBy, and keep their decoding', async () => {
    const db = await open();
    const sq = db
      .select({ title: todos.title, pos: todos.position, at: todos.updatedAt })
      .from(todos)
      .where(isNotNull(todos.position))
      .as('sq');
    const rows = await db.select().from(sq).where(gt(sq.pos, 1)).orderBy(desc(sq.pos));
    expect(rows).toEqual([
      { title: 'Email', pos: 4, at: day(5) },
      { title: 'Report', pos: 3, at: day(4) },
      { title: 'milk powder', pos: 2, at: day(2) },
    ]);
    const picked = await db
      .select({ t: sq.title, n: count() })
      .from(sq)
      .where(lt(sq.at, day(3)))
      .groupBy(sq.title)
      .orderBy(sq.title);
    expect(picked).toEqual([
      { t: 'Milk', n: 1 },
      { t: 'milk powder', n: 1 },
    ]);
  });

  it('a grouped subquery joined to a table', async () => {
    const db = await open();
    const perList = db
      .select({ listId: todos.listId, n: count() })
      .from(todos)
      .groupBy(todos.listId)
      .as('per_list');
    const rows = await db
      .select({ name: lists.name, n: perList.n })
      .from(lists)
      .leftJoin(perList, eq(perList.listId, lists.id))
      .orderBy(lists.name);
    expect(rows).toEqual([
      { name: 'Empty', n: null },
      { name: 'Groceries', n: 3 },
      { name: 'Work', n: 2 },
    ]);
  });

  it('union, unionAll, intersect and except, with orderBy and limit on the compound', async () => {
    const db = await open();
    const done = db.select({ title: todos.title }).from(todos).where(eq(todos.done, true));
    const early = db.select({ title: todos.title }).from(todos).where(lt(todos.position, 3));
    expect(titles(await done.union(early).orderBy(todos.title))).toEqual(['Milk', 'Report', 'milk powder']);
    expect(titles(await done.unionAll(early).orderBy(todos.title))).toEqual([
      'Milk',
      'Report',
      'milk powder',
      'milk powder',
    ]);
    expect(titles(await done.intersect(early))).toEqual(['milk powder']);
    expect(titles(await done.except(early))).toEqual(['Report']);
    expect(titles(await done.union(early).orderBy(desc(todos.title)).limit(2))).toEqual([
      'milk powder',
      'Report',
    ]);
    expect(titles(await done.unionAll(early).orderBy(todos.title).limit(2).offset(1))).toEqual([
      'Report',
      'milk powder',
    ]);
  });

  it('a compound ordered by a column selected under another key orders by that key', async () => {
    // Fails on PostgreSQL: the compiler writes ORDER BY "name" for a column selected AS "title"
    // (bug in src/dialect/query-compiler.ts compound(), reported to the lead).
    const db = await open();
    const names = db.select({ title: lists.name }).from(lists);
    const done = db.select({ title: todos.title }).from(todos).where(eq(todos.done, true));
    expect(titles(await names.union(done).orderBy(asc(lists.name)))).toEqual([
      'Empty',
      'Groceries',
      'Report',
      'Work',
      'milk powder',
    ]);
  });

  it('a compound of compounds is refused rather than losing parts', async () => {
    const db = await open();
    const a = db.select({ title: todos.title }).from(todos);
    const b = db.select({ title: lists.name }).from(lists);
    expect(() => a.union(b.union(a))).toThrow(UsageError);
  });

  it('a part of a compound with its own orderBy and limit keeps them', async () => {
    const db = await open();
    const firstTwo = db.select({ title: todos.title }).from(todos).orderBy(todos.title).limit(2);
    const lastOne = db.select({ title: todos.title }).from(todos).orderBy(desc(todos.title)).limit(1);
    expect(titles(await firstTwo.unionAll(lastOne).orderBy(todos.title))).toEqual([
      'Bread',
      'Email',
      'milk powder',
    ]);
  });

  it('alias() joins a table with itself', async () => {
    const db = await open();
    const later = alias(todos, 'later');
    const rows = await db
      .select({ first: todos.title, next: later.title })
      .from(todos)
      .innerJoin(later, and(eq(later.listId, todos.listId), lt(todos.position, later.position)))
      .orderBy(todos.title);
    expect(rows).toEqual([
      { first: 'Milk', next: 'milk powder' },
      { first: 'Report', next: 'Email' },
    ]);
    const whole = await db
      .select()
      .from(todos)
      .innerJoin(later, and(eq(later.listId, todos.listId), lt(todos.position, later.position)))
      .where(eq(todos.title, 'Report'));
    expect(whole.map((r) => [r.todos.title, r.later.title])).toEqual([['Report', 'Email']]);
  });

  it('fn<T>() calls any SQL function; mapWith decodes its values', async () => {
    const db = await open();
    const rows = await db
      .select({
        upper: fn<string>('upper', todos.title),
        length: fn<number>('length', todos.title).mapWith(Number),
        note: fn<string>('coalesce', todos.note, '-'),
        n: fn<number>('count', todos.id).mapWith(Number),
      })
      .from(todos)
      .where(eq(todos.listId, WORK))
      .groupBy(todos.title, todos.note)
      .orderBy(todos.title);
    expect(rows).toEqual([
      { upper: 'EMAIL', length: 5, note: 'inbox', n: 1 },
      { upper: 'REPORT', length: 6, note: '-', n: 1 },
    ]);
    const [last] = await db.select({ at: fn('max', todos.updatedAt).mapWith(todos.updatedAt) }).from(todos);
    expect(last!.at).toBeInstanceOf(Date);
    expect(last!.at).toEqual(day(5));
  });

  it('sql`` expressions in a select list, with columns and bound values', async () => {
    const db = await open();
    const rows = await db
      .select({
        title: todos.title,
        label: sql<string>`${todos.title} || ${': '} || ${lists.name}`,
        next: sql<number>`${todos.position} + ${10}`.mapWith(Number),
        open: sql<boolean>`${todos.done} = ${false}`.mapWith(todos.done),
      })
      .from(todos)
      .innerJoin(lists, eq(lists.id, todos.listId))
      .where(inArray(todos.title, ['Milk', 'Report']))
      .orderBy(todos.title);
    expect(rows).toEqual([
      { title: 'Milk', label: 'Milk: Groceries', next: 11, open: true },
      { title: 'Report', label: 'Report: Work', next: 13, open: false },
    ]);
  });
});
