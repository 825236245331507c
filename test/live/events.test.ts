import { expect, it } from 'vitest';
import { eq, UsageError } from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { waitFor } from '../support/wait.js';
import { boards, captureUncaught, cards, liveSchema, notes, record, seed } from './fixtures.js';

const sorted = (tables: ReadonlySet<string>) => [...tables].sort();

dialectSuite('table-change events', (env) => {
  const open = async () => seed(await env.open(liveSchema));

  it('onTablesChanged hears the tables it names, or every table when given none', async () => {
    const db = await open();
    const onCards: string[][] = [];
    const onBoardsByName: string[][] = [];
    const onAll: string[][] = [];
    db.onTablesChanged([cards], (tables) => onCards.push(sorted(tables)));
    db.onTablesChanged(['boards'], (tables) => onBoardsByName.push(sorted(tables)));
    db.onTablesChanged(undefined, (tables) => onAll.push(sorted(tables)));

    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    await db.update(boards).set({ title: 'ALPHA' }).where(eq(boards.id, 1));
    await db.delete(notes).where(eq(notes.id, 1));
    await db.transaction(async (tx) => {
      await tx.insert(notes).values({ id: 1, body: 'n' });
      await tx.update(cards).set({ points: 5 }).where(eq(cards.id, 4));
    });

    expect(onCards).toEqual([['cards'], ['cards', 'notes']]);
    expect(onBoardsByName).toEqual([['boards']]);
    expect(onAll).toEqual([['cards'], ['boards'], ['notes'], ['cards', 'notes']]);
  });

  it('stops calling a listener once it unsubscribes', async () => {
    const db = await open();
    const heard: string[][] = [];
    const stop = db.onTablesChanged([cards], (tables) => heard.push(sorted(tables)));
    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    stop();
    await db.insert(cards).values({ id: 5, boardId: 1, title: 'a4' });
    db.notifyTablesChanged([cards]);
    stop(); // a second call is harmless
    expect(heard).toEqual([['cards']]);
  });

  it('notifyTablesChanged tells listeners and re-runs live queries for writes made behind its back', async () => {
    const db = await open();
    const live = db
      .select({ id: cards.id })
      .from(cards)
      .where(eq(cards.boardId, 1))
      .orderBy(cards.id)
      .watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    const heard: string[][] = [];
    db.onTablesChanged([cards], (tables) => heard.push(sorted(tables)));
    const runs = live.runCount;

    // Straight through the driver, past the Database: nothing can know about this write.
    await db.driver.query({
      sql: "INSERT INTO cards (id, board_id, title, points) VALUES (4, 1, 'behind', 0)",
      params: [],
      arrayMode: false,
      needsBigInt: false,
    });
    expect(live.runCount).toBe(runs);
    expect(heard).toEqual([]);

    db.notifyTablesChanged([cards, 'notes']);
    expect(heard).toEqual([['cards', 'notes']]);
    await waitFor(() => rec.values.length === 2, 5000, 'the emission after notifyTablesChanged');
    expect(rec.values[1]).toEqual([{ id: 1 }, { id: 2 }, { id: 4 }]);
    expect(live.runCount - runs).toBe(1);

    // Naming only tables the query does not read re-runs nothing.
    db.notifyTablesChanged([boards]);
    db.notifyTablesChanged([]);
    expect(live.runCount - runs).toBe(1);
    rec.stop();
  });

  it('refuses what is neither a table nor a table name', async () => {
    const db = await open();
    expect(() => db.notifyTablesChanged([42 as never])).toThrow(UsageError);
    expect(() => db.onTablesChanged([{} as never], () => {})).toThrow(UsageError);
  });

  it('a listener that throws breaks neither the write, nor other listeners, nor live queries', async () => {
    const db = await open();
    const live = db
      .select({ id: cards.id })
      .from(cards)
      .where(eq(cards.boardId, 1))
      .orderBy(cards.id)
      .watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);
    const before: string[][] = [];
    const after: string[][] = [];
    db.onTablesChanged([cards], (tables) => before.push(sorted(tables)));
    db.onTablesChanged([cards], () => {
      throw new Error('a bug in a listener');
    });
    db.onTablesChanged(undefined, (tables) => after.push(sorted(tables)));

    const uncaught = captureUncaught();
    try {
      await expect(db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' })).resolves.toEqual({
        rowsAffected: 1,
      });
      await expect(
        db.transaction(async (tx) => {
          await tx.insert(cards).values({ id: 5, boardId: 1, title: 'a4' });
          return 'committed';
        }),
      ).resolves.toBe('committed');
      expect(before).toEqual([['cards'], ['cards']]);
      expect(after).toEqual([['cards'], ['cards']]);
      await waitFor(() => rec.values.at(-1)?.length === 4, 5000, 'the live query to see both writes');
      // The listener's error is not swallowed: it surfaces as an uncaught exception, once per write.
      await waitFor(() => uncaught.errors.length === 2, 5000, 'the listener errors to surface');
    } finally {
      uncaught.restore();
    }
    expect((uncaught.errors[0] as Error).message).toBe('a bug in a listener');
    expect(await db.select({ id: cards.id }).from(cards).where(eq(cards.boardId, 1))).toHaveLength(4);
    rec.stop();
  });
});
