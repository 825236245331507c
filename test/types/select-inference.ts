import {
  alias,
  avg,
  count,
  countDistinct,
  type Database,
  desc,
  eq,
  fn,
  gt,
  inArray,
  isNull,
  like,
  max,
  min,
  type SQL,
  sql,
  sum,
} from '../../src/index.js';
import { expectType, type ResultOf, type RowOf } from './assert.js';
import { type appSchema, type List, lists, type Point, samples, type Todo, todos } from './schema.js';

declare const db: Database<typeof appSchema>;

// Whole rows of one table.

const all = db.select().from(todos);
expectType<ResultOf<typeof all>>().toBe<Todo[]>();

const filtered = db
  .select()
  .from(todos)
  .where(eq(todos.done, false))
  .orderBy(desc(todos.updatedAt))
  .limit(sql.placeholder('limit'))
  .offset(10);
expectType<ResultOf<typeof filtered>>().toBe<Todo[]>();
expectType<ResultOf<ReturnType<typeof filtered.execute>>>().toBe<Todo[]>();
expectType<Awaited<ReturnType<typeof filtered.execute>>>().toBe<Todo[]>();

const distinct = db.selectDistinct().from(lists);
expectType<ResultOf<typeof distinct>>().toBe<List[]>();

// Partial selects are flat, keyed by the select list's keys, aggregates typed by their function.

const partial = db
  .select({ listId: todos.listId, n: count(), note: todos.note })
  .from(todos)
  .groupBy(todos.listId, todos.note);
expectType<ResultOf<typeof partial>>().toBe<{ listId: string; n: number; note: string | null }[]>();

const aggregates = db
  .select({
    total: count(todos.note),
    kinds: countDistinct(todos.title),
    sumSize: sum(samples.size),
    avgScore: avg(samples.score),
    firstSeen: min(samples.seenAt),
    lastCreated: max(samples.createdAt),
    lowest: min(samples.id),
    topStatus: max(samples.status),
    lastUserId: max(samples.userId),
    minSum: min(sum(samples.score)),
  })
  .from(samples);
expectType<RowOf<ResultOf<typeof aggregates>>>().toBe<{
  total: number;
  kinds: number;
  sumSize: number | null;
  avgScore: number | null;
  firstSeen: Date | null;
  lastCreated: Date | null;
  lowest: number | null;
  topStatus: 'open' | 'closed' | null;
  lastUserId: import('./schema.js').UserId | null;
  minSum: number | null;
}>();

// fn<T>() and sql<T>`` give T; without a type argument they give unknown; mapWith() retypes.
const expressions = db
  .select({
    upper: fn<string>('upper', todos.title),
    anyFn: fn('random'),
    lower: sql<string>`lower(${todos.title})`,
    raw: sql`1`,
    mapped: sql`count(*)`.mapWith(Number),
    likeColumn: sql`${todos.updatedAt}`.mapWith(todos.updatedAt),
    at: samples.at,
  })
  .from(todos)
  .innerJoin(samples, sql`true`);
expectType<RowOf<ResultOf<typeof expressions>>>().toBe<{
  upper: string;
  anyFn: unknown;
  lower: string;
  raw: unknown;
  mapped: number;
  likeColumn: Date;
  at: Point;
}>();
expectType<typeof expressions.$row>().toBe<RowOf<ResultOf<typeof expressions>>>();

// Whole-row joins give one object per table, keyed by its name; a left-joined table may be null.

const inner = db.select().from(todos).innerJoin(lists, eq(todos.listId, lists.id));
expectType<ResultOf<typeof inner>>().toBe<{ todos: Todo; lists: List }[]>();

const left = db.select().from(todos).leftJoin(lists, eq(todos.listId, lists.id));
expectType<ResultOf<typeof left>>().toBe<{ todos: Todo; lists: List | null }[]>();

const leftThenInner = db
  .select()
  .from(lists)
  .leftJoin(todos, eq(todos.listId, lists.id))
  .innerJoin(samples, sql`true`)
  .where(isNull(todos.id));
expectType<RowOf<ResultOf<typeof leftThenInner>>>().toBe<{
  lists: List;
  todos: Todo | null;
  samples: typeof samples.$inferSelect;
}>();

// Partial selects over a left join: the joined table's columns become nullable, the others stay.

const partialLeft = db
  .select({ title: todos.title, note: todos.note, list: lists.name, listId: lists.id })
  .from(todos)
  .leftJoin(lists, eq(todos.listId, lists.id));
expectType<RowOf<ResultOf<typeof partialLeft>>>().toBe<{
  title: string;
  note: string | null;
  list: string | null;
  listId: string | null;
}>();

const partialInner = db
  .select({ title: todos.title, list: lists.name })
  .from(todos)
  .innerJoin(lists, eq(todos.listId, lists.id));
expectType<RowOf<ResultOf<typeof partialInner>>>().toBe<{ title: string; list: string }>();

// Subqueries: `.as()` gives a source whose fields carry the subquery's row types.

const counts = db
  .select({ listId: todos.listId, n: count(), latest: max(todos.updatedAt) })
  .from(todos)
  .groupBy(todos.listId)
  .as('counts');
expectType<typeof counts.$alias>().toBe<'counts'>();
expectType<(typeof counts.listId)['_']['type']>().toBe<string>();
expectType<(typeof counts.n)['_']['type']>().toBe<number>();
expectType<(typeof counts.latest)['_']['type']>().toBe<Date | null>();
// A subquery field is an expression: it goes wherever SQL of its type does.
export const countsN: SQL<number> = counts.n;

const fromSubquery = db.select().from(counts).where(gt(counts.n, 2));
expectType<ResultOf<typeof fromSubquery>>().toBe<{ listId: string; n: number; latest: Date | null }[]>();

const joinSubquery = db
  .select({ name: lists.name, n: counts.n })
  .from(lists)
  .innerJoin(counts, eq(counts.listId, lists.id));
expectType<RowOf<ResultOf<typeof joinSubquery>>>().toBe<{ name: string; n: number }>();

const leftJoinSubquery = db
  .select({ name: lists.name, n: counts.n, latest: counts.latest })
  .from(lists)
  .leftJoin(counts, eq(counts.listId, lists.id));
expectType<RowOf<ResultOf<typeof leftJoinSubquery>>>().toBe<{
  name: string;
  n: number | null;
  latest: Date | null;
}>();

const wholeRowSubquery = db.select().from(lists).leftJoin(counts, eq(counts.listId, lists.id));
expectType<RowOf<ResultOf<typeof wholeRowSubquery>>>().toBe<{
  lists: List;
  counts: { listId: string; n: number; latest: Date | null } | null;
}>();

const wholeTableSubquery = db.select().from(todos).as('t');
expectType<typeof wholeTableSubquery.$inferSelect>().toBe<Todo>();
expectType<(typeof wholeTableSubquery.updatedAt)['_']['type']>().toBe<Date>();

// A select query is a subquery operand for inArray / exists.
const inSubquery = db
  .select()
  .from(todos)
  .where(inArray(todos.listId, db.select({ id: lists.id }).from(lists).where(like(lists.name, 'A%'))));
expectType<ResultOf<typeof inSubquery>>().toBe<Todo[]>();

// Aliased tables: the row type of the table, keyed and null-checked by the alias.

const other = alias(todos, 'other');
expectType<typeof other.$inferSelect>().toBe<Todo>();
expectType<typeof other.$inferInsert>().toBe<typeof todos.$inferInsert>();
expectType<typeof other.$alias>().toBe<'other'>();
expectType<typeof other.$name>().toBe<'todos'>();

const selfJoin = db.select().from(todos).leftJoin(other, eq(other.listId, todos.listId));
expectType<RowOf<ResultOf<typeof selfJoin>>>().toBe<{ todos: Todo; other: Todo | null }>();

const selfJoinPartial = db
  .select({ mine: todos.title, theirs: other.title })
  .from(todos)
  .leftJoin(other, eq(other.listId, todos.listId));
expectType<RowOf<ResultOf<typeof selfJoinPartial>>>().toBe<{ mine: string; theirs: string | null }>();

const fromAlias = db.select().from(other);
expectType<ResultOf<typeof fromAlias>>().toBe<Todo[]>();

// Compound queries keep the first query's row type.
const both = db
  .select({ id: todos.id })
  .from(todos)
  .union(db.select({ id: lists.id }).from(lists));
expectType<ResultOf<typeof both>>().toBe<{ id: string }[]>();
const allOfThem = both
  .unionAll(db.select({ id: samples.userId }).from(samples))
  .except(both)
  .intersect(both);
expectType<ResultOf<typeof allOfThem>>().toBe<{ id: string }[]>();
const ids = db.select({ id: todos.id }).from(todos);
const titles = db.select({ title: todos.title }).from(todos);
// @ts-expect-error the other query's rows have another shape
ids.union(db.select({ n: count() }).from(todos));
// @ts-expect-error the other query's rows may hold null where this one's may not
titles.union(db.select({ title: todos.note }).from(todos));
// @ts-expect-error union() takes a select query, not a subquery made with .as()
ids.union(counts);

// Prepared queries resolve to the same rows.

const byId = db
  .select()
  .from(todos)
  .where(eq(todos.id, sql.placeholder('id')))
  .prepare();
expectType<Awaited<ReturnType<typeof byId.execute>>>().toBe<Todo[]>();

const preparedPartial = db.select({ n: count() }).from(todos).prepare();
expectType<Awaited<ReturnType<typeof preparedPartial.execute>>>().toBe<{ n: number }[]>();

// Transactions build the same queries.
export async function inTransaction(): Promise<void> {
  await db.transaction(async (tx) => {
    const rows = await tx.select().from(todos).innerJoin(lists, eq(todos.listId, lists.id));
    expectType<typeof rows>().toBe<{ todos: Todo; lists: List }[]>();
    const [first] = await tx.select({ n: count() }).from(todos);
    expectType<typeof first>().toBe<{ n: number }>();
  });
  const raw = await db.execute<{ n: number }>(sql`select count(*) as n from ${todos}`);
  expectType<typeof raw>().toBe<{ n: number }[]>();
}

// Comparisons take a value of the column's type (or an expression, or a placeholder).

eq(todos.title, 'Milk');
eq(todos.note, 'Milk');
eq(todos.listId, lists.id);
eq(todos.title, todos.note);
eq(samples.status, 'open');
eq(todos.updatedAt, new Date());
eq(todos.id, sql.placeholder('id'));
eq(todos.title, sql`'x'`);
gt(samples.size, 10n);
like(todos.note, 'a%');
inArray(samples.status, ['open', 'closed']);

// @ts-expect-error a text column compared with a number
eq(todos.title, 1);
// @ts-expect-error a boolean column compared with a string
eq(todos.done, 'yes');
// @ts-expect-error a timestamp column compared with a number (use a Date)
gt(todos.updatedAt, 0);
// @ts-expect-error a text column compared with a boolean column
eq(todos.title, todos.done);
// @ts-expect-error a value outside the enum
eq(samples.status, 'archived');
// @ts-expect-error a bigint column compared with a number
gt(samples.size, 1);
// @ts-expect-error inArray with values of the wrong type
inArray(todos.title, [1, 2]);
// @ts-expect-error like() on a non-text column
like(todos.done, 'a%');
// @ts-expect-error compare with null through isNull(): `= NULL` is never true
eq(todos.note, null);
// @ts-expect-error sum() of a boolean column
sum(todos.done);

// Only tables and subqueries can be selected from or joined.

// @ts-expect-error a column is not a table
db.select().from(todos.id);
// @ts-expect-error a plain object is not a table
db.select().from({ $alias: 'x' });
// @ts-expect-error a select query needs .as() to be a subquery
db.select().from(db.select().from(todos));
// @ts-expect-error a string is not a table
db.select({ id: todos.id }).from('todos');
// @ts-expect-error joins take tables too
db.select().from(todos).innerJoin(todos.listId, sql`true`);
// @ts-expect-error a select list holds columns and expressions, not plain values
db.select({ n: 1 });
