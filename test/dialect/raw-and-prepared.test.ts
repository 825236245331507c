import { expect, it } from 'vitest';
import { type Database, desc, eq, gt, InvalidValueError, inArray, sql, UsageError } from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { appSchema, lists, todos } from '../support/fixtures.js';

const A = '20000000-0000-4000-8000-00000000000a';
const B = '20000000-0000-4000-8000-00000000000b';
const C = '20000000-0000-4000-8000-00000000000c';

async function seed(db: Database<typeof appSchema>) {
  await db.insert(lists).values([
    { id: A, name: 'Alpha', ownerId: 'u1' },
    { id: B, name: 'Beta', ownerId: 'u1' },
    { id: C, name: 'Gamma', ownerId: 'u2' },
  ]);
  return db;
}

dialectSuite('raw SQL with sql``', (env) => {
  const open = async () => seed(await env.open(appSchema));

  it('db.execute() returns rows as objects keyed by column name', async () => {
    const db = await open();
    const rows = await db.execute<{ name: string; owner: string }>(
      sql`select ${lists.name} as name, ${lists.ownerId} as owner from ${lists} where ${lists.ownerId} = ${'u1'} order by ${lists.name}`,
    );
    expect(rows).toEqual([
      { name: 'Alpha', owner: 'u1' },
      { name: 'Beta', owner: 'u1' },
    ]);
  });

  it('values are bound as parameters, never spliced into the text', async () => {
    const db = await open();
    const evil = "'; drop table lists; --";
    await db.insert(lists).values({ name: evil, ownerId: `"${evil}"` });
    const rows = await db.execute<{ name: string; owner_id: string }>(
      sql`select ${lists.name} as name, ${lists.ownerId} as owner_id from ${lists} where ${lists.name} = ${evil}`,
    );
    expect(rows).toEqual([{ name: evil, owner_id: `"${evil}"` }]);
    const query = db.select().from(lists).where(eq(lists.name, evil));
    expect(query.toSQL().sql).not.toContain('drop table');
    expect(query.toSQL().params).toEqual([evil]);
    // The table is still there, with every row.
    expect(await db.select().from(lists)).toHaveLength(4);
  });

  it('sql.identifier() quotes names chosen at run time, quotes and spaces included', async () => {
    const db = await open();
    const tableName = 'odd "table" name';
    const columnName = "it's a column";
    await db.execute(sql`create table ${sql.identifier(tableName)} (${sql.identifier(columnName)} text)`);
    await db.execute(
      sql`insert into ${sql.identifier(tableName)} (${sql.identifier(columnName)}) values (${'hello'})`,
    );
    const rows = await db.execute(
      sql`select ${sql.identifier(columnName)} from ${sql.identifier(tableName)}`,
    );
    expect(rows).toEqual([{ [columnName]: 'hello' }]);
    const qualified = await db.execute<{ name: string }>(
      sql`select ${sql.identifier('lists', 'name')} as name from ${sql.identifier('lists')} where ${sql.identifier('lists', 'id')} = ${B}`,
    );
    expect(qualified).toEqual([{ name: 'Beta' }]);
    expect(() => sql.identifier('')).toThrow(UsageError);
  });

  it('sql.raw() inserts text as it is', async () => {
    const db = await open();
    const direction = sql.raw('desc');
    const rows = await db.execute<{ name: string }>(
      sql`select ${lists.name} as name from ${lists} order by ${lists.name} ${direction}`,
    );
    expect(rows.map((r) => r.name)).toEqual(['Gamma', 'Beta', 'Alpha']);
    const [row] = await db.execute<{ n: number }>(sql`select ${sql.raw('1 + 2')} as n`);
    expect(Number(row!.n)).toBe(3);
  });

  it('sql.join() joins values, columns and fragments with a separator', async () => {
    const db = await open();
    const names = ['Alpha', 'Gamma', 'Nope'];
    const rows = await db.execute<{ name: string; owner: string }>(
      sql`select ${sql.join([sql`${lists.name} as name`, sql`${lists.ownerId} as owner`])} from ${lists} where ${lists.name} in (${sql.join(names)}) order by ${lists.name}`,
    );
    expect(rows).toEqual([
      { name: 'Alpha', owner: 'u1' },
      { name: 'Gamma', owner: 'u2' },
    ]);
    const either = sql.join([sql`${lists.name} = ${'Beta'}`, sql`${lists.ownerId} = ${'u2'}`], sql` or `);
    const picked = await db
      .select({ name: lists.name })
      .from(lists)
      .where(sql`${either}`)
      .orderBy(lists.name);
    expect(picked).toEqual([{ name: 'Beta' }, { name: 'Gamma' }]);
  });

  it('a sql`` condition mixes with builder conditions and encodes untyped values per dialect', async () => {
    const db = await open();
    await db.insert(todos).values([
      { listId: A, title: 'one', done: true, updatedAt: new Date('2024-05-01T00:00:00.000Z') },
      { listId: A, title: 'two', done: false, updatedAt: new Date('2024-05-02T00:00:00.000Z') },
    ]);
    // A boolean and a Date with no column type are encoded the way the typed columns store them.
    const rows = await db
      .select({ title: todos.title })
      .from(todos)
      .where(sql`${todos.done} = ${true} and ${todos.updatedAt} < ${new Date('2024-05-01T12:00:00.000Z')}`);
    expect(rows).toEqual([{ title: 'one' }]);
  });
});

dialectSuite('prepared queries with sql.placeholder()', (env) => {
  const open = async () => seed(await env.open(appSchema));

  it('prepare() once, execute many times with new values', async () => {
    const db = await open();
    const byId = db
      .select()
      .from(lists)
      .where(eq(lists.id, sql.placeholder('id')))
      .prepare();
    expect(await byId.execute({ id: A })).toEqual([{ id: A, name: 'Alpha', ownerId: 'u1' }]);
    expect(await byId.execute({ id: C })).toEqual([{ id: C, name: 'Gamma', ownerId: 'u2' }]);
    // The placeholder's value is encoded by the column type: an upper-case uuid finds the row.
    expect(await byId.execute({ id: B.toUpperCase() })).toEqual([{ id: B, name: 'Beta', ownerId: 'u1' }]);
    expect(await byId.execute({ id: '20000000-0000-4000-8000-0000000000ff' })).toEqual([]);
  });

  it('placeholders in limit and offset', async () => {
    const db = await open();
    const page = db
      .select({ name: lists.name })
      .from(lists)
      .orderBy(lists.name)
      .limit(sql.placeholder('size'))
      .offset(sql.placeholder('skip'))
      .prepare();
    expect(await page.execute({ size: 2, skip: 0 })).toEqual([{ name: 'Alpha' }, { name: 'Beta' }]);
    expect(await page.execute({ size: 2, skip: 2 })).toEqual([{ name: 'Gamma' }]);
    expect(await page.execute({ size: 1, skip: 1 })).toEqual([{ name: 'Beta' }]);
    await expect(page.execute({ size: 'two', skip: 0 })).rejects.toBeInstanceOf(InvalidValueError);
  });

  it('the same prepared query runs concurrently with different values', async () => {
    const db = await open();
    const byOwner = db
      .select({ name: lists.name })
      .from(lists)
      .where(eq(lists.ownerId, sql.placeholder('owner')))
      .orderBy(desc(lists.name))
      .prepare();
    const results = await Promise.all(
      ['u1', 'u2', 'u3', 'u1', 'u2'].map((owner) => byOwner.execute({ owner })),
    );
    expect(results.map((rows) => rows.map((r) => r.name))).toEqual([
      ['Beta', 'Alpha'],
      ['Gamma'],
      [],
      ['Beta', 'Alpha'],
      ['Gamma'],
    ]);
  });

  it('preparing the same query twice gives two working statements', async () => {
    const db = await open();
    const build = () =>
      db
        .select({ name: lists.name })
        .from(lists)
        .where(gt(lists.name, sql.placeholder('after')))
        .orderBy(lists.name)
        .prepare();
    const first = build();
    const second = build();
    expect(await first.execute({ after: 'Alpha' })).toEqual([{ name: 'Beta' }, { name: 'Gamma' }]);
    expect(await second.execute({ after: 'Beta' })).toEqual([{ name: 'Gamma' }]);
    expect(await first.execute({ after: 'Gamma' })).toEqual([]);
  });

  it('placeholders in writes: insert values, update set and where, delete where', async () => {
    const db = await open();
    const add = db
      .insert(todos)
      .values({ listId: sql.placeholder('list'), title: sql.placeholder('title') })
      .prepare();
    expect(await add.execute({ list: A, title: 'first' })).toEqual({ rowsAffected: 1 });
    expect(await add.execute({ list: B, title: 'second' })).toEqual({ rowsAffected: 1 });
    const rename = db
      .update(todos)
      .set({ title: sql.placeholder('title') })
      .where(eq(todos.listId, sql.placeholder('list')))
      .prepare();
    expect(await rename.execute({ title: 'renamed', list: B })).toEqual({ rowsAffected: 1 });
    const remove = db
      .delete(todos)
      .where(inArray(todos.title, [sql.placeholder('a'), sql.placeholder('b')]))
      .prepare();
    expect(await remove.execute({ a: 'first', b: 'nothing' })).toEqual({ rowsAffected: 1 });
    expect(await db.select({ title: todos.title, listId: todos.listId }).from(todos)).toEqual([
      { title: 'renamed', listId: B },
    ]);
  });

  it('a missing placeholder value is a UsageError naming the placeholder', async () => {
    const db = await open();
    const q = db
      .select()
      .from(lists)
      .where(eq(lists.ownerId, sql.placeholder('owner')))
      .limit(sql.placeholder('n'))
      .prepare();
    await expect(q.execute({ owner: 'u1' })).rejects.toThrow(UsageError);
    await expect(q.execute({ owner: 'u1' })).rejects.toThrow(/"n"/);
    await expect(q.execute()).rejects.toThrow(/"owner"/);
  });

  it('running a query with placeholders without prepare() is a UsageError', async () => {
    const db = await open();
    const q = db
      .select()
      .from(lists)
      .where(eq(lists.id, sql.placeholder('id')));
    await expect(q).rejects.toThrow(UsageError);
    await expect(q.execute()).rejects.toThrow(/prepare\(\)/);
    await expect(db.insert(lists).values({ name: sql.placeholder('name'), ownerId: 'u9' })).rejects.toThrow(
      UsageError,
    );
    await expect(db.execute(sql`select ${sql.placeholder('x')} as x`)).rejects.toThrow(UsageError);
    // Nothing was written by the refused insert.
    expect(await db.select().from(lists).where(eq(lists.ownerId, 'u9'))).toEqual([]);
  });
});
