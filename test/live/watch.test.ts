import { expect, it } from 'vitest';
import { count, eq, inArray, like, sql, UsageError } from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { appSchema, lists, todos } from '../support/fixtures.js';
import { waitFor } from '../support/wait.js';
import { boards, cards, type LiveDb, liveSchema, notes, record, seed } from './fixtures.js';

const cardsOn = (db: LiveDb, boardId: number) =>
  db.select().from(cards).where(eq(cards.boardId, boardId)).orderBy(cards.id);

dialectSuite('watch()', (env) => {
  const open = async () => seed(await env.open(liveSchema));

  it('emits the current result first', async () => {
    const db = await open();
    const live = cardsOn(db, 1).watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1, 5000, 'the first emission');
    expect(rec.values[0]).toEqual([
      { id: 1, boardId: 1, title: 'a1', points: 1 },
      { id: 2, boardId: 1, title: 'a2', points: 2 },
    ]);
    expect(rec.errors).toEqual([]);
    rec.stop();
  });

  it('emits after an insert, an update and a delete made through the builders', async () => {
    const db = await open();
    const rec = record(
      db
        .select({ id: cards.id, title: cards.title })
        .from(cards)
        .where(eq(cards.boardId, 1))
        .orderBy(cards.id)
        .watch(),
    );
    await waitFor(() => rec.values.length === 1);

    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    await waitFor(() => rec.values.length === 2, 5000, 'the emission after the insert');
    await db.update(cards).set({ title: 'A2' }).where(eq(cards.id, 2));
    await waitFor(() => rec.values.length === 3, 5000, 'the emission after the update');
    await db.delete(cards).where(eq(cards.id, 1));
    await waitFor(() => rec.values.length === 4, 5000, 'the emission after the delete');
    // A row moving into the filter, and out of it again.
    await db.update(cards).set({ boardId: 1 }).where(eq(cards.id, 3));
    await waitFor(() => rec.values.length === 5, 5000, 'the emission after a row moved in');
    await db.update(cards).set({ boardId: 2 }).where(eq(cards.id, 3));
    await waitFor(() => rec.values.length === 6, 5000, 'the emission after a row moved out');

    expect(rec.values).toEqual([
      [
        { id: 1, title: 'a1' },
        { id: 2, title: 'a2' },
      ],
      [
        { id: 1, title: 'a1' },
        { id: 2, title: 'a2' },
        { id: 4, title: 'a3' },
      ],
      [
        { id: 1, title: 'a1' },
        { id: 2, title: 'A2' },
        { id: 4, title: 'a3' },
      ],
      [
        { id: 2, title: 'A2' },
        { id: 4, title: 'a3' },
      ],
      [
        { id: 2, title: 'A2' },
        { id: 3, title: 'b1' },
        { id: 4, title: 'a3' },
      ],
      [
        { id: 2, title: 'A2' },
        { id: 4, title: 'a3' },
      ],
    ]);
    rec.stop();
  });

  it('does not emit when the new result equals the last one', async () => {
    const db = await open();
    const live = cardsOn(db, 1).watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    const runsBefore = live.runCount;

    // A write to a row outside the filter, and a write to a row inside it that leaves it as it was.
    await db.insert(cards).values({ id: 10, boardId: 2, title: 'elsewhere' });
    await db.update(cards).set({ title: 'a1' }).where(eq(cards.id, 1));
    await db.delete(cards).where(eq(cards.id, 999));
    // Then a write that does change the result: the next emission must be this one.
    await db.update(cards).set({ points: 50 }).where(eq(cards.id, 2));
    await waitFor(() => live.value?.[1]?.points === 50, 5000, 'the emission of the changed result');

    expect(rec.values).toHaveLength(2);
    expect(rec.values[1]).toEqual([
      { id: 1, boardId: 1, title: 'a1', points: 1 },
      { id: 2, boardId: 1, title: 'a2', points: 50 },
    ]);
    // The unchanged write to a matching row did re-run the query: the equality check, not luck, kept it quiet.
    expect(live.runCount - runsBefore).toBeGreaterThanOrEqual(2);
    rec.stop();
  });

  it('re-runs a join when either joined table changes', async () => {
    const db = await open();
    const live = db
      .select({ card: cards.title, board: boards.title })
      .from(cards)
      .innerJoin(boards, eq(cards.boardId, boards.id))
      .orderBy(cards.id)
      .watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);

    await db.update(boards).set({ title: 'ALPHA' }).where(eq(boards.id, 1));
    await waitFor(() => rec.values.length === 2, 5000, 'the emission after the joined table changed');
    expect(rec.values[1]).toEqual([
      { card: 'a1', board: 'ALPHA' },
      { card: 'a2', board: 'ALPHA' },
      { card: 'b1', board: 'beta' },
    ]);

    await db.insert(cards).values({ id: 4, boardId: 2, title: 'b2' });
    await waitFor(() => rec.values.length === 3, 5000, 'the emission after the first table changed');
    expect(rec.values[2]).toContainEqual({ card: 'b2', board: 'beta' });

    // A write to a board no card is on changes no row of the join, yet the query reads that table.
    const runs = live.runCount;
    await db.insert(boards).values({ id: 3, title: 'empty' });
    await waitFor(() => live.runCount > runs, 5000, 'a re-run after a write to the joined table');
    rec.stop();
  });

  it('re-runs an aggregate and emits the new totals', async () => {
    const db = await open();
    const rec = record(
      db
        .select({ boardId: cards.boardId, n: count() })
        .from(cards)
        .groupBy(cards.boardId)
        .orderBy(cards.boardId)
        .watch(),
    );
    await waitFor(() => rec.values.length === 1);
    expect(rec.values[0]).toEqual([
      { boardId: 1, n: 2 },
      { boardId: 2, n: 1 },
    ]);
    await db.insert(cards).values([
      { id: 4, boardId: 2, title: 'b2' },
      { id: 5, boardId: 3, title: 'c1' },
    ]);
    await waitFor(() => rec.values.length === 2);
    expect(rec.values[1]).toEqual([
      { boardId: 1, n: 2 },
      { boardId: 2, n: 2 },
      { boardId: 3, n: 1 },
    ]);
    rec.stop();
  });

  it('re-runs when a table read only in a subquery changes', async () => {
    const db = await open();
    const alphaBoards = db.select({ id: boards.id }).from(boards).where(like(boards.title, 'a%'));
    const live = db
      .select({ id: cards.id })
      .from(cards)
      .where(inArray(cards.boardId, alphaBoards))
      .orderBy(cards.id)
      .watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    expect(rec.values[0]).toEqual([{ id: 1 }, { id: 2 }]);

    await db.update(boards).set({ title: 'another' }).where(eq(boards.id, 2));
    await waitFor(() => rec.values.length === 2, 5000, 'the emission after the subquery table changed');
    expect(rec.values[1]).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    rec.stop();
  });

  it('re-runs a select from a subquery, and a union, when their tables change', async () => {
    const db = await open();
    const heavy = db
      .select({ id: cards.id, points: cards.points })
      .from(cards)
      .where(eq(cards.boardId, 1))
      .as('heavy');
    const fromSubquery = record(db.select({ id: heavy.id }).from(heavy).orderBy(heavy.id).watch());
    const union = record(
      db
        .select({ name: cards.title })
        .from(cards)
        .where(eq(cards.boardId, 2))
        .union(db.select({ name: boards.title }).from(boards))
        .orderBy(sql`1`)
        .watch(),
    );
    await waitFor(() => fromSubquery.values.length === 1 && union.values.length === 1);
    expect(fromSubquery.values[0]).toEqual([{ id: 1 }, { id: 2 }]);
    expect(union.values[0]).toEqual([{ name: 'alpha' }, { name: 'b1' }, { name: 'beta' }]);

    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    await waitFor(() => fromSubquery.values.length === 2);
    expect(fromSubquery.values[1]).toEqual([{ id: 1 }, { id: 2 }, { id: 4 }]);

    // The union's second part reads boards.
    await db.insert(boards).values({ id: 3, title: 'gamma' });
    await waitFor(() => union.values.length === 2);
    expect(union.values[1]).toEqual([{ name: 'alpha' }, { name: 'b1' }, { name: 'beta' }, { name: 'gamma' }]);
    fromSubquery.stop();
    union.stop();
  });

  it('does not re-run for writes to tables the query does not read', async () => {
    const db = await open();
    const live = db
      .select({ card: cards.title, board: boards.title })
      .from(cards)
      .innerJoin(boards, eq(cards.boardId, boards.id))
      .orderBy(cards.id)
      .watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    const runs = live.runCount;
    await db.insert(notes).values({ id: 1, body: 'unrelated' });
    await db.update(notes).set({ body: 'still unrelated' }).where(eq(notes.id, 1));
    await db.transaction(async (tx) => {
      await tx.delete(notes).where(eq(notes.id, 1));
    });
    // A write the query does read: had the notes written above re-run it, there would be more than one run.
    await db.update(boards).set({ title: 'BETA' }).where(eq(boards.id, 2));
    await waitFor(() => rec.values.length === 2);
    expect(live.runCount - runs).toBe(1);
    rec.stop();
  });

  it('re-emits when a foreign-key cascade changes the rows it reads', async () => {
    const db = await env.open(appSchema);
    const [list] = await db.insert(lists).values({ name: 'groceries', ownerId: 'u1' }).returning();
    await db.insert(todos).values([
      { listId: list!.id, title: 'milk' },
      { listId: list!.id, title: 'bread' },
    ]);
    // The query reads only todos; deleting the list deletes its todos (ON DELETE CASCADE).
    const rec = record(db.select({ title: todos.title }).from(todos).orderBy(todos.title).watch());
    await waitFor(() => rec.values.length === 1);
    expect(rec.values[0]).toEqual([{ title: 'bread' }, { title: 'milk' }]);
    await db.delete(lists).where(eq(lists.id, list!.id));
    expect(await db.select().from(todos)).toEqual([]);
    await waitFor(() => rec.values.length === 2, 5000, 'the emission after the cascade');
    expect(rec.values[1]).toEqual([]);
    rec.stop();
  });

  it('watches raw SQL, re-run when a table it names changes', async () => {
    const db = await open();
    const live = db.watch<{ title: string }>(
      sql`select ${cards.title} as title from ${cards} where ${cards.boardId} = ${1} order by ${cards.id}`,
      { tables: [cards] },
    );
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    expect(rec.values[0]).toEqual([{ title: 'a1' }, { title: 'a2' }]);

    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    await waitFor(() => rec.values.length === 2);
    expect(rec.values[1]).toEqual([{ title: 'a1' }, { title: 'a2' }, { title: 'a3' }]);

    // Tables may be named by string too; only the named tables trigger a re-run.
    const byName = db.watch<{ n: number }>(sql`select count(*) as n from ${boards}`, { tables: ['boards'] });
    const named = record(byName);
    await waitFor(() => named.values.length === 1);
    const runs = byName.runCount;
    await db.insert(cards).values({ id: 5, boardId: 1, title: 'a4' }); // not named: no re-run
    await db.insert(boards).values({ id: 3, title: 'gamma' });
    await waitFor(() => named.values.length === 2);
    expect(Number(named.values[1]![0]!.n)).toBe(3);
    expect(byName.runCount - runs).toBe(1);
    rec.stop();
    named.stop();
  });

  it('refuses raw SQL that does not name the tables it reads', async () => {
    const db = await open();
    const query = sql`select * from ${cards}`;
    expect(() => db.watch(query, { tables: [] })).toThrow(UsageError);
    expect(() => db.watch(query, {} as never)).toThrow(/tables/);
    expect(() => db.watch(query, undefined as never)).toThrow(UsageError);
  });

  it('refuses to watch inside a transaction, or a query with placeholders', async () => {
    const db = await open();
    await db.transaction(async (tx) => {
      expect(() => tx.select().from(cards).watch()).toThrow(UsageError);
    });
    expect(() =>
      db
        .select()
        .from(cards)
        .where(eq(cards.id, sql.placeholder('id')))
        .watch(),
    ).toThrow(/placeholder/);
  });

  it('value holds the latest result, and reading it starts nothing', async () => {
    const db = await open();
    const live = cardsOn(db, 2).watch();
    expect(live.value).toBeUndefined();
    expect(live.runCount).toBe(0);
    await db.insert(cards).values({ id: 4, boardId: 2, title: 'b2' });
    expect(live.value).toBeUndefined();
    expect(live.runCount).toBe(0);

    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    expect(live.value).toEqual([
      { id: 3, boardId: 2, title: 'b1', points: 3 },
      { id: 4, boardId: 2, title: 'b2', points: 0 },
    ]);
    await db.delete(cards).where(eq(cards.id, 3));
    await waitFor(() => rec.values.length === 2);
    expect(live.value).toEqual([{ id: 4, boardId: 2, title: 'b2', points: 0 }]);
    expect(live.value).toBe(rec.values[1]);
    rec.stop();
  });

  it('iterates with for await, and leaving the loop unsubscribes', async () => {
    const db = await open();
    const live = db
      .select({ id: cards.id })
      .from(cards)
      .where(eq(cards.boardId, 1))
      .orderBy(cards.id)
      .watch();
    const seen: { id: number }[][] = [];
    for await (const rows of live) {
      seen.push(rows);
      if (seen.length === 1) await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
      else break;
    }
    expect(seen).toEqual([
      [{ id: 1 }, { id: 2 }],
      [{ id: 1 }, { id: 2 }, { id: 4 }],
    ]);
    // After `break` nothing watches the query any more: it has no run, no value, and writes start none.
    expect(live.runCount).toBe(0);
    expect(live.value).toBeUndefined();
    await db.insert(cards).values({ id: 5, boardId: 1, title: 'a4' });
    expect(live.runCount).toBe(0);
  });

  it('an iterator that falls behind gets the latest result, not every one in between', async () => {
    const db = await open();
    const live = db.select({ points: cards.points }).from(cards).where(eq(cards.id, 1)).watch();
    const iterator = live[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ value: [{ points: 1 }], done: false });
    for (const points of [2, 3, 4]) {
      await db.update(cards).set({ points }).where(eq(cards.id, 1));
      await waitFor(() => (live.value as { points: number }[])[0]!.points === points);
    }
    expect(await iterator.next()).toEqual({ value: [{ points: 4 }], done: false });
    expect(await iterator.return!()).toEqual({ value: undefined, done: true });
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
    expect(live.runCount).toBe(0);
  });

  it('identical watched queries share one run; a different filter runs on its own', async () => {
    const db = await open();
    const a = cardsOn(db, 1).watch();
    const b = cardsOn(db, 1).watch();
    const ra = record(a);
    const rb = record(b);
    await waitFor(() => ra.values.length === 1 && rb.values.length === 1);
    expect(a.runCount).toBe(1);
    expect(b.runCount).toBe(1);
    expect(rb.values[0]).toEqual(ra.values[0]);

    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    await waitFor(() => ra.values.length === 2 && rb.values.length === 2);
    expect(a.runCount).toBe(2);
    expect(b.runCount).toBe(2);

    // A late subscriber to the same query gets the current result at once, without a run of its own.
    const c = cardsOn(db, 1).watch();
    const rc = record(c);
    await waitFor(() => rc.values.length === 1);
    expect(rc.values[0]).toEqual(ra.values[1]);
    expect(c.runCount).toBe(2);

    const other = cardsOn(db, 2).watch();
    const ro = record(other);
    await waitFor(() => ro.values.length === 1);
    expect(other.runCount).toBe(1);
    expect(a.runCount).toBe(2);

    // One subscriber leaving does not stop the others.
    ra.stop();
    await db.update(cards).set({ title: 'A1' }).where(eq(cards.id, 1));
    await waitFor(() => rb.values.length === 3 && rc.values.length === 2);
    expect(ra.values).toHaveLength(2);
    expect(b.runCount).toBe(3);
    rb.stop();
    rc.stop();
    ro.stop();
  });

  it('a subscriber that unsubscribes another from its callback stops that one at once', async () => {
    const db = await open();
    const live = cardsOn(db, 1).watch();
    const second: unknown[] = [];
    let stopSecond = () => {};
    const first: unknown[] = [];
    const stopFirst = live.subscribe((rows) => {
      first.push(rows);
      if (first.length === 2) stopSecond();
    });
    stopSecond = live.subscribe((rows) => second.push(rows));
    await waitFor(() => first.length === 1 && second.length === 1);
    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    await waitFor(() => first.length === 2);
    await db.insert(cards).values({ id: 5, boardId: 1, title: 'a4' });
    await waitFor(() => first.length === 3);
    expect(second).toHaveLength(1);
    stopFirst();
  });
});
