import { expect, it } from 'vitest';
import {
  and,
  boolean,
  type Database,
  eq,
  gt,
  inArray,
  integer,
  schema,
  sql,
  table,
  text,
  UsageError,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';

const tasks = table('tasks', {
  id: integer().primaryKey(),
  title: text().notNull(),
  done: boolean().notNull().default(false),
  points: integer().notNull().default(0),
  note: text(),
});

const taskSchema = schema({ tasks });

async function seed(db: Database<typeof taskSchema>): Promise<void> {
  await db.insert(tasks).values([
    { id: 1, title: 'one', points: 1 },
    { id: 2, title: 'two', points: 2 },
    { id: 3, title: 'three', points: 3, done: true },
  ]);
}

async function allTasks(db: Database<typeof taskSchema>) {
  return db.select().from(tasks).orderBy(tasks.id);
}

/** The error a query rejects with (fails the test when it resolves). */
async function rejection(query: PromiseLike<unknown>): Promise<Error> {
  try {
    await query;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the query to fail, but it succeeded');
}

dialectSuite('update', (env) => {
  it('sets the values on the rows where() selects and reports rowsAffected', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    const result = await db.update(tasks).set({ done: true, note: 'checked' }).where(gt(tasks.points, 1));
    expect(result).toEqual({ rowsAffected: 2 });
    expect(await allTasks(db)).toEqual([
      { id: 1, title: 'one', done: false, points: 1, note: null },
      { id: 2, title: 'two', done: true, points: 2, note: 'checked' },
      { id: 3, title: 'three', done: true, points: 3, note: 'checked' },
    ]);
  });

  it('reports rowsAffected 0 when where() matches nothing', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    expect(await db.update(tasks).set({ title: 'x' }).where(eq(tasks.id, 99))).toEqual({ rowsAffected: 0 });
    expect((await allTasks(db)).map((t) => t.title)).toEqual(['one', 'two', 'three']);
  });

  it('returns the updated rows whole or as chosen fields', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    const whole = await db.update(tasks).set({ note: 'n' }).where(eq(tasks.id, 2)).returning();
    expect(whole).toEqual([{ id: 2, title: 'two', done: false, points: 2, note: 'n' }]);

    const chosen = await db
      .update(tasks)
      .set({ points: sql`${tasks.points} * 10` })
      .where(inArray(tasks.id, [1, 3]))
      .returning({ id: tasks.id, score: tasks.points });
    expect(chosen.sort((a, b) => a.id - b.id)).toEqual([
      { id: 1, score: 10 },
      { id: 3, score: 30 },
    ]);
  });

  it('sets a column to null, and leaves out keys that are undefined', async () => {
    const db = await env.open(taskSchema);
    await db.insert(tasks).values({ id: 1, title: 'one', note: 'keep?' });
    await db.update(tasks).set({ note: null, title: undefined }).where(eq(tasks.id, 1));
    expect(await allTasks(db)).toEqual([{ id: 1, title: 'one', done: false, points: 0, note: null }]);
  });

  it('refuses to run without where(), before anything reaches the database', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    const query = db.update(tasks).set({ title: 'gone' });
    expect(() => query.toSQL()).toThrow(UsageError);
    const error = await rejection(query);
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toContain('update tasks has no where clause');
    expect(error.message).toContain('.allRows()');
    // and() of nothing is undefined: a where() that ends up empty is refused the same way.
    await expect(db.update(tasks).set({ title: 'gone' }).where(and())).rejects.toBeInstanceOf(UsageError);
    expect((await allTasks(db)).map((t) => t.title)).toEqual(['one', 'two', 'three']);
  });

  it('updates every row with allRows()', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    expect(await db.update(tasks).set({ done: true }).allRows()).toEqual({ rowsAffected: 3 });
    expect((await allTasks(db)).every((t) => t.done)).toBe(true);
  });

  it('names the table and the column when set() has an unknown key', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    const error = await rejection(
      db
        .update(tasks)
        .set({ titel: 'typo' } as any)
        .where(eq(tasks.id, 1)),
    );
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(/"titel" is not a column of tasks/);
    expect((await allTasks(db))[0]!.title).toBe('one');
  });

  it('refuses a set() with nothing to write', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    const empty = await rejection(db.update(tasks).set({}).where(eq(tasks.id, 1)));
    expect(empty).toBeInstanceOf(UsageError);
    expect(empty.message).toContain('set() has no values to write');
    await expect(db.update(tasks).set({ note: undefined }).where(eq(tasks.id, 1))).rejects.toBeInstanceOf(
      UsageError,
    );
    expect(await allTasks(db)).toHaveLength(3);
  });
});

dialectSuite('delete', (env) => {
  it('deletes the rows where() selects and reports rowsAffected', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    expect(await db.delete(tasks).where(eq(tasks.done, false))).toEqual({ rowsAffected: 2 });
    expect((await allTasks(db)).map((t) => t.id)).toEqual([3]);
    expect(await db.delete(tasks).where(eq(tasks.id, 99))).toEqual({ rowsAffected: 0 });
  });

  it('returns the deleted rows whole or as chosen fields', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    const whole = await db.delete(tasks).where(eq(tasks.id, 1)).returning();
    expect(whole).toEqual([{ id: 1, title: 'one', done: false, points: 1, note: null }]);
    const chosen = await db.delete(tasks).where(gt(tasks.points, 1)).returning({ name: tasks.title });
    expect(chosen.map((r) => r.name).sort()).toEqual(['three', 'two']);
    expect(await allTasks(db)).toEqual([]);
  });

  it('refuses to run without where(), before anything reaches the database', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    const query = db.delete(tasks);
    expect(() => query.toSQL()).toThrow(UsageError);
    const error = await rejection(query);
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toContain('delete from tasks has no where clause');
    expect(error.message).toContain('.allRows()');
    await expect(db.delete(tasks).where(undefined).returning()).rejects.toBeInstanceOf(UsageError);
    expect(await allTasks(db)).toHaveLength(3);
  });

  it('deletes every row with allRows()', async () => {
    const db = await env.open(taskSchema);
    await seed(db);
    expect(await db.delete(tasks).allRows()).toEqual({ rowsAffected: 3 });
    expect(await allTasks(db)).toEqual([]);
  });
});

dialectSuite('insert with an unknown column', (env) => {
  it('names the table and the column, and writes nothing', async () => {
    const db = await env.open(taskSchema);
    const error = await rejection(db.insert(tasks).values({ id: 1, title: 't', colour: 'red' } as any));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(/insert into tasks: "colour" is not a column of tasks/);
    // The message lists the columns that do exist.
    expect(error.message).toContain('id, title, done, points, note');
    expect(await allTasks(db)).toEqual([]);
  });
});
