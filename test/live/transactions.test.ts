import { expect, it } from 'vitest';
import { DatabaseError, eq, sql } from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { waitFor } from '../support/wait.js';
import { boards, cards, type LiveDb, liveSchema, notes, record, seed } from './fixtures.js';

/** Every table-change event the database reports, each as a sorted list of table names. */
function listen(db: LiveDb): string[][] {
  const heard: string[][] = [];
  db.onTablesChanged(undefined, (tables) => heard.push([...tables].sort()));
  return heard;
}

const boardCards = (db: LiveDb, boardId: number) =>
  db
    .select({ id: cards.id, title: cards.title, points: cards.points })
    .from(cards)
    .where(eq(cards.boardId, boardId))
    .orderBy(cards.id);

dialectSuite('live queries and transactions', (env) => {
  const open = async () => seed(await env.open(liveSchema));

  it('reports a transaction once, at commit, with every table it wrote', async () => {
    const db = await open();
    const live = boardCards(db, 1).watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    const heard = listen(db);
    const runs = live.runCount;

    await db.transaction(async (tx) => {
      await tx.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
      await tx.update(cards).set({ points: 9 }).where(eq(cards.id, 1));
      await tx.insert(boards).values({ id: 3, title: 'gamma' });
      await tx.insert(notes).values({ id: 1, body: 'n' });
      // Nothing is told before the commit: not the listeners, not the live query.
      await tx.select().from(cards);
      expect(heard).toEqual([]);
      expect(live.runCount).toBe(runs);
    });
    expect(heard).toEqual([['boards', 'cards', 'notes']]);

    await waitFor(() => rec.values.length === 2, 5000, 'the emission after the commit');
    // One run, one emission, with the state after the whole transaction.
    expect(live.runCount - runs).toBe(1);
    expect(rec.values[1]).toEqual([
      { id: 1, title: 'a1', points: 9 },
      { id: 2, title: 'a2', points: 2 },
      { id: 4, title: 'a3', points: 0 },
    ]);
    rec.stop();
  });

  it('reports nothing when the transaction rolls back', async () => {
    const db = await open();
    const live = boardCards(db, 1).watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    const heard = listen(db);
    const runs = live.runCount;

    await expect(
      db.transaction(async (tx) => {
        await tx.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
        await tx.insert(boards).values({ id: 3, title: 'gamma' });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    // A statement that failed, its error caught by the callback: the transaction rolls back too.
    await expect(
      db.transaction(async (tx) => {
        await tx.insert(notes).values({ id: 1, body: 'n' });
        await tx
          .insert(cards)
          .values({ id: 1, boardId: 1, title: 'duplicate' })
          .catch(() => {});
      }),
    ).rejects.toThrow(DatabaseError);
    expect(heard).toEqual([]);
    expect(live.runCount).toBe(runs);

    // The next commit is reported, and the live query's next emission is that commit's state.
    await db.update(cards).set({ title: 'A1' }).where(eq(cards.id, 1));
    expect(heard).toEqual([['cards']]);
    await waitFor(() => rec.values.length === 2);
    expect(rec.values[1]).toEqual([
      { id: 1, title: 'A1', points: 1 },
      { id: 2, title: 'a2', points: 2 },
    ]);
    expect(live.runCount - runs).toBe(1);
    rec.stop();
  });

  it('leaves out tables written only in a savepoint that rolled back', async () => {
    const db = await open();
    const heard = listen(db);
    await db.transaction(async (tx) => {
      await tx.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
      await expect(
        tx.transaction(async (inner) => {
          await inner.insert(boards).values({ id: 3, title: 'gamma' });
          await inner.insert(cards).values({ id: 5, boardId: 3, title: 'c1' });
          throw new Error('undo this part');
        }),
      ).rejects.toThrow('undo this part');
    });
    expect(heard).toEqual([['cards']]);
    expect(await db.select({ id: boards.id }).from(boards).orderBy(boards.id)).toEqual([
      { id: 1 },
      { id: 2 },
    ]);
  });

  it('includes tables written in committed savepoints, nested ones too', async () => {
    const db = await open();
    const heard = listen(db);
    await db.transaction(async (tx) => {
      await tx.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
      await tx.transaction(async (inner) => {
        await inner.insert(boards).values({ id: 3, title: 'gamma' });
        await inner.transaction(async (innermost) => {
          await innermost.insert(notes).values({ id: 1, body: 'deep' });
        });
      });
    });
    expect(heard).toEqual([['boards', 'cards', 'notes']]);

    // A savepoint that committed inside a transaction that then rolled back is not reported.
    await expect(
      db.transaction(async (tx) => {
        await tx.transaction(async (inner) => {
          await inner.insert(notes).values({ id: 2, body: 'lost' });
        });
        throw new Error('roll back all of it');
      }),
    ).rejects.toThrow('roll back all of it');
    expect(heard).toHaveLength(1);
  });

  it('coalesces a burst of 50 commits into far fewer runs, and ends on the final state', async () => {
    const db = await open();
    const live = boardCards(db, 1).watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    const runs = live.runCount;

    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        db.transaction(async (tx) => {
          await tx
            .update(cards)
            .set({ points: sql`${cards.points} + 1` })
            .where(eq(cards.id, 1));
          await tx.insert(cards).values({ id: 100 + i, boardId: 1, title: `burst ${i}` });
        }),
      ),
    );
    const final = await boardCards(db, 1);
    expect(final).toHaveLength(52);
    expect(final[0]!.points).toBe(51);
    await waitFor(() => JSON.stringify(live.value) === JSON.stringify(final), 10_000, 'the final state');
    expect(rec.values.at(-1)).toEqual(final);
    const burstRuns = live.runCount - runs;
    expect(burstRuns).toBeGreaterThanOrEqual(1);
    expect(burstRuns).toBeLessThanOrEqual(25);
    rec.stop();
  });

  it('commits made one after another cost at most a run each, and end on the final state', async () => {
    const db = await open();
    const live = boardCards(db, 1).watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    const runs = live.runCount;
    for (let i = 0; i < 50; i++) {
      await db.transaction(async (tx) => {
        await tx.update(cards).set({ points: i }).where(eq(cards.id, 2));
      });
    }
    await waitFor(() => live.value?.[1]?.points === 49, 10_000, 'the final state');
    expect(rec.values.at(-1)).toEqual([
      { id: 1, title: 'a1', points: 1 },
      { id: 2, title: 'a2', points: 49 },
    ]);
    expect(live.runCount - runs).toBeLessThanOrEqual(50);
    rec.stop();
  });

  it('runs at most once in flight and once queued: 50 reports in one go cost two runs', async () => {
    const db = await open();
    const live = boardCards(db, 1).watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    const runs = live.runCount;
    for (let i = 0; i < 50; i++) db.notifyTablesChanged([cards]);
    await db.update(cards).set({ title: 'last' }).where(eq(cards.id, 2));
    await waitFor(() => live.value?.[1]?.title === 'last', 5000, 'the final state');
    // 51 reports: one run in flight, one queued (which may already see the update), perhaps one more.
    expect(live.runCount - runs).toBeGreaterThanOrEqual(2);
    expect(live.runCount - runs).toBeLessThanOrEqual(3);
    rec.stop();
  });
});
