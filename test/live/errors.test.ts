import { expect, it } from 'vitest';
import { DatabaseError, eq, sql } from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { waitFor } from '../support/wait.js';
import { captureUncaught, cards, type LiveDb, liveSchema, record, seed, settlement } from './fixtures.js';

/** Moves the cards table out of the way with raw SQL (which reports nothing), or back. */
async function hideCards(db: LiveDb, hidden: boolean): Promise<void> {
  await db.execute(
    hidden ? sql`ALTER TABLE cards RENAME TO cards_away` : sql`ALTER TABLE cards_away RENAME TO cards`,
  );
}

const boardOne = (db: LiveDb) =>
  db.select({ id: cards.id }).from(cards).where(eq(cards.boardId, 1)).orderBy(cards.id);

dialectSuite('live queries that fail', (env) => {
  const open = async () => seed(await env.open(liveSchema));

  it('a failed run reaches onError, and the next change after the fix emits again', async () => {
    const db = await open();
    const live = boardOne(db).watch();
    const rec = record(live);
    await waitFor(() => rec.values.length === 1);

    await hideCards(db, true);
    db.notifyTablesChanged([cards]);
    await waitFor(() => rec.errors.length === 1, 5000, 'the error to reach the subscriber');
    expect(rec.errors[0]).toBeInstanceOf(DatabaseError);
    expect(String((rec.errors[0] as Error).message)).toMatch(/cards/);
    // The last good result is still the value.
    expect(live.value).toEqual([{ id: 1 }, { id: 2 }]);

    await hideCards(db, false);
    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    await waitFor(() => rec.values.length === 2, 5000, 'the emission after recovering');
    expect(rec.values[1]).toEqual([{ id: 1 }, { id: 2 }, { id: 4 }]);
    expect(rec.errors).toHaveLength(1);
    rec.stop();
  });

  it('after an error, the first good result is emitted even when it equals the one before the error', async () => {
    const db = await open();
    const rec = record(boardOne(db).watch());
    await waitFor(() => rec.values.length === 1);
    await hideCards(db, true);
    db.notifyTablesChanged([cards]);
    await waitFor(() => rec.errors.length === 1);
    await hideCards(db, false);
    db.notifyTablesChanged([cards]);
    // The subscriber's last word was an error: it must hear that the query works again.
    await waitFor(() => rec.values.length === 2, 5000, 'the emission after recovering');
    expect(rec.events).toEqual([[{ id: 1 }, { id: 2 }], { error: rec.errors[0] }, [{ id: 1 }, { id: 2 }]]);
    rec.stop();
  });

  it('a raw watch whose SQL fails reports it from the first run, and recovers once the SQL works', async () => {
    const db = await open();
    const live = db.watch<{ id: number }>(sql`SELECT id FROM later ORDER BY id`, { tables: ['later'] });
    const rec = record(live);
    await waitFor(() => rec.errors.length === 1, 5000, 'the first run to fail');
    expect(rec.values).toEqual([]);
    expect(live.value).toBeUndefined();
    expect(rec.errors[0]).toBeInstanceOf(DatabaseError);

    await db.execute(sql`CREATE TABLE later (id integer primary key)`);
    await db.execute(sql`INSERT INTO later (id) VALUES (7)`);
    db.notifyTablesChanged(['later']);
    await waitFor(() => rec.values.length === 1, 5000, 'the first good result');
    expect(rec.values[0]).toEqual([{ id: 7 }]);
    expect(live.value).toEqual([{ id: 7 }]);
    rec.stop();
  });

  it('a failed run rejects the pending next() of an iterator, which goes on afterwards', async () => {
    const db = await open();
    const live = boardOne(db).watch();
    const iterator = live[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ value: [{ id: 1 }, { id: 2 }], done: false });

    const pending = settlement(iterator.next());
    await hideCards(db, true);
    db.notifyTablesChanged([cards]);
    await waitFor(() => pending.outcome !== undefined, 5000, 'the pending next() to settle');
    expect((pending.outcome as { error: unknown }).error).toBeInstanceOf(DatabaseError);

    await hideCards(db, false);
    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    expect(await iterator.next()).toEqual({ value: [{ id: 1 }, { id: 2 }, { id: 4 }], done: false });
    await iterator.return!();
    expect(live.runCount).toBe(0);
  });

  it('a subscriber without onError hears nothing, and the error surfaces as uncaught', async () => {
    const db = await open();
    const live = boardOne(db).watch();
    const values: unknown[] = [];
    const stop = live.subscribe((value) => values.push(value));
    await waitFor(() => values.length === 1);
    const uncaught = captureUncaught();
    try {
      await hideCards(db, true);
      db.notifyTablesChanged([cards]);
      await waitFor(() => uncaught.errors.length === 1, 5000, 'the error to surface');
    } finally {
      uncaught.restore();
    }
    expect(uncaught.errors[0]).toBeInstanceOf(DatabaseError);
    expect(values).toHaveLength(1);
    await hideCards(db, false);
    stop();
  });

  it('a subscriber that throws does not keep the result from the others', async () => {
    const db = await open();
    const live = boardOne(db).watch();
    const uncaught = captureUncaught();
    let stopFaulty = () => {};
    const before = record(live);
    try {
      stopFaulty = live.subscribe(() => {
        throw new Error('a bug in a subscriber');
      });
      const after = record(live);
      await waitFor(() => before.values.length === 1 && after.values.length === 1);
      await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
      await waitFor(() => before.values.length === 2 && after.values.length === 2, 5000, 'both to hear');
      expect(after.values[1]).toEqual([{ id: 1 }, { id: 2 }, { id: 4 }]);
      await waitFor(() => uncaught.errors.length >= 2, 5000, 'the subscriber errors to surface');
      after.stop();
    } finally {
      uncaught.restore();
    }
    expect((uncaught.errors[0] as Error).message).toBe('a bug in a subscriber');
    stopFaulty();
    before.stop();
  });
});
