import { expect, it } from 'vitest';
import {
  and,
  boolean,
  type Database,
  eq,
  exists,
  inArray,
  isNotNull,
  not,
  notExists,
  notInArray,
  or,
  type SQL,
  schema,
  table,
  text,
  uuid,
} from '../../src/index.js';
import { filterSuperset } from '../../src/sync/client/filter-superset.js';
import { filterFromJson } from '../../src/sync/protocol/filter-from-json.js';
import { filterToJson } from '../../src/sync/protocol/filter-to-json.js';
import type { FilterJson } from '../../src/sync/protocol/filter-tree.js';
import { dialectSuite } from '../support/drivers.js';

/**
 * A shape filter with subqueries, sent as a filter tree and rebuilt from it, selects the same rows
 * on SQLite (the client), PGlite and PostgreSQL (the server): IN and NOT IN (with a NULL in the
 * subquery too), EXISTS and NOT EXISTS correlated with the shape's table, subqueries inside
 * subqueries correlated two levels up. And the client's superset of each filter
 * (`filterSuperset`) admits every row the filter does.
 */

const users = table('users', { id: text().primaryKey(), active: boolean().notNull() });
const members = table('members', {
  id: uuid().primaryKey(),
  listId: uuid('list_id'),
  userId: text('user_id').notNull(),
});
const todos = table('todos', {
  id: uuid().primaryKey(),
  listId: uuid('list_id').notNull(),
  owner: text().notNull(),
  title: text().notNull(),
});
const subquerySchema = schema({ users, members, todos }, { version: 1 });

const [L1, L2, L3] = [1, 2, 3].map((n) => `40000000-0000-4000-8000-00000000000${n}`) as [
  string,
  string,
  string,
];
const key = (n: number) => `50000000-0000-4000-8000-00000000000${n}`;

async function seed(db: Database<typeof subquerySchema>): Promise<void> {
  await db.insert(users).values([
    { id: 'ann', active: true },
    { id: 'bob', active: false },
  ]);
  await db.insert(members).values([
    { id: key(1), listId: L1, userId: 'ann' },
    { id: key(2), listId: L2, userId: 'bob' },
    { id: key(3), listId: null, userId: 'ann' },
  ]);
  await db.insert(todos).values([
    { id: key(4), listId: L1, owner: 'ann', title: 't1' },
    { id: key(5), listId: L2, owner: 'bob', title: 't2' },
    { id: key(6), listId: L3, owner: 'ann', title: 't3' },
    { id: key(7), listId: L1, owner: 'bob', title: 't4' },
  ]);
}

/** The cases, built on `db` (any Database of the schema builds the same tree). */
function cases(db: Database<typeof subquerySchema>): [string, SQL<boolean>, string[]][] {
  const listsOf = (user: string) =>
    db.select({ id: members.listId }).from(members).where(eq(members.userId, user));
  const memberOfList = (...more: SQL<boolean>[]) =>
    db
      .select()
      .from(members)
      .where(and(eq(members.listId, todos.listId), ...more));
  return [
    ['inArray', inArray(todos.listId, listsOf('ann')), ['t1', 't4']],
    // NOT IN a list holding a NULL is never true, on every dialect.
    [
      'notInArray, a NULL in the subquery',
      notInArray(todos.listId, db.select({ id: members.listId }).from(members)),
      [],
    ],
    [
      'notInArray',
      notInArray(
        todos.listId,
        db.select({ id: members.listId }).from(members).where(isNotNull(members.listId)),
      ),
      ['t3'],
    ],
    ['exists, correlated', exists(memberOfList(eq(members.userId, 'ann'))), ['t1', 't4']],
    ['notExists, correlated', notExists(memberOfList()), ['t3']],
    [
      'a subquery in a subquery',
      exists(
        memberOfList(
          inArray(members.userId, db.select({ id: users.id }).from(users).where(eq(users.active, true))),
        ),
      ),
      ['t1', 't4'],
    ],
    [
      'correlated two levels up',
      exists(
        memberOfList(
          exists(
            db
              .select()
              .from(users)
              .where(and(eq(users.id, members.userId), eq(users.id, todos.owner))),
          ),
        ),
      ),
      ['t1', 't2'],
    ],
    [
      'under not and or',
      or(eq(todos.title, 't2'), not(exists(memberOfList(eq(members.userId, 'bob')))))!,
      ['t1', 't2', 't3', 't4'],
    ],
  ];
}

const titles = async (db: Database<typeof subquerySchema>, where: SQL<boolean> | undefined) =>
  (await db.select({ title: todos.title }).from(todos).where(where)).map((r) => r.title).sort();

/** The filter as the other side rebuilds it, from JSON text. */
const rebuilt = (json: FilterJson | boolean) =>
  typeof json === 'boolean'
    ? undefined
    : filterFromJson(JSON.parse(JSON.stringify(json)), todos, {}, 'where', { schema: subquerySchema });

dialectSuite('shape filters with subqueries, rebuilt from the filter tree', (env) => {
  it('select the same rows on every dialect', async () => {
    const db = await env.open(subquerySchema);
    await seed(db);
    for (const [name, condition, expected] of cases(db)) {
      const json = filterToJson(condition, todos);
      expect(await titles(db, rebuilt(json)), name).toEqual(expected);
      expect(await titles(db, condition), name).toEqual(expected);
    }
  });

  it("the client's superset admits every row the filter does", async () => {
    const db = await env.open(subquerySchema);
    await seed(db);
    for (const [name, condition, expected] of cases(db)) {
      const superset = filterSuperset(filterToJson(condition, todos));
      if (superset === false) expect(expected, name).toEqual([]);
      else expect(await titles(db, rebuilt(superset)), name).toEqual(expect.arrayContaining(expected));
    }
  });
});
