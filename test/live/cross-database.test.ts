import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { eq, openDatabase, UsageError } from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { sameDatabase } from '../support/same-database.js';
import { waitFor } from '../support/wait.js';
import { boards, cards, type LiveDb, liveSchema, record, seed } from './fixtures.js';

const sorted = (tables: ReadonlySet<string>) => [...tables].sort();

dialectSuite('live queries across Database objects (changeNotifications)', (env) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  /** Two Database objects on one database (one PGlite instance, or one server through two pools). */
  async function openPair(options: { changeNotifications: boolean }): Promise<[LiveDb, LiveDb]> {
    const target = sameDatabase(env.driver);
    cleanups.push(() => target.dispose());
    const open = async () => {
      const db = await openDatabase(liveSchema, target.driver(), options);
      cleanups.push(() => db.close());
      return db;
    };
    const a = await seed(await open());
    return [a, await open()];
  }

  if (env.driver.name === 'better-sqlite3') {
    it('SQLite has no LISTEN/NOTIFY: asking for changeNotifications is a clear UsageError', async () => {
      const driver = env.freshDriver();
      const error = await openDatabase(liveSchema, driver, { changeNotifications: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(/changeNotifications/);
      expect((error as Error).message).toMatch(/better-sqlite3/);
    });
    return;
  }

  it('a live query on one Database re-emits after a commit made through the other', async () => {
    const [a, b] = await openPair({ changeNotifications: true });
    const onB = record(
      b.select({ id: cards.id }).from(cards).where(eq(cards.boardId, 1)).orderBy(cards.id).watch(),
    );
    const onA = record(a.select({ title: boards.title }).from(boards).orderBy(boards.id).watch());
    await waitFor(() => onB.values.length === 1 && onA.values.length === 1);

    await a.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    await waitFor(() => onB.values.length === 2, 5000, 'B to see A’s insert');
    expect(onB.values[1]).toEqual([{ id: 1 }, { id: 2 }, { id: 4 }]);

    await b.transaction(async (tx) => {
      await tx.update(boards).set({ title: 'ALPHA' }).where(eq(boards.id, 1));
    });
    await waitFor(() => onA.values.length === 2, 5000, 'A to see B’s transaction');
    expect(onA.values[1]).toEqual([{ title: 'ALPHA' }, { title: 'beta' }]);
    onA.stop();
    onB.stop();
  });

  it('the other Database hears each commit once, with its tables, and never a rollback', async () => {
    const [a, b] = await openPair({ changeNotifications: true });
    const heardOnA: string[][] = [];
    const heardOnB: string[][] = [];
    a.onTablesChanged(undefined, (tables) => heardOnA.push(sorted(tables)));
    b.onTablesChanged(undefined, (tables) => heardOnB.push(sorted(tables)));

    await a.transaction(async (tx) => {
      await tx.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
      await tx.insert(boards).values({ id: 3, title: 'gamma' });
    });
    await expect(
      a.transaction(async (tx) => {
        await tx.insert(cards).values({ id: 5, boardId: 1, title: 'never' });
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await a.delete(cards).where(eq(cards.id, 4));
    await waitFor(() => heardOnB.length >= 2, 5000, 'B to hear both of A’s commits');

    // Then a commit on B, which A hears: had A also heard its own commits back, it would show here.
    await b.update(boards).set({ title: 'G' }).where(eq(boards.id, 3));
    await waitFor(() => heardOnA.length >= 3, 5000, 'A to hear B’s commit');
    expect(heardOnB).toEqual([['boards', 'cards'], ['cards'], ['boards']]);
    expect(heardOnA).toEqual([['boards', 'cards'], ['cards'], ['boards']]);
  });

  it('closing one Database leaves the other working and live', async () => {
    const [a, b] = await openPair({ changeNotifications: true });
    const onB = record(b.select({ id: boards.id }).from(boards).orderBy(boards.id).watch());
    await waitFor(() => onB.values.length === 1);
    await a.close();
    const heardOnB: string[][] = [];
    b.onTablesChanged(undefined, (tables) => heardOnB.push(sorted(tables)));
    await b.insert(boards).values({ id: 3, title: 'gamma' });
    await waitFor(() => onB.values.length === 2);
    expect(onB.values[1]).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect(heardOnB).toEqual([['boards']]);
    expect(onB.errors).toEqual([]);
    onB.stop();
  });

  if (env.driver.name === 'postgres') {
    it('keeps hearing the other Database after its LISTEN connection was cut', async () => {
      const target = sameDatabase(env.driver);
      cleanups.push(() => target.dispose());
      const app = `syncline_listen_${process.pid}_${Date.now().toString(36)}`;
      const url = new URL(process.env.DATABASE_URL!);
      url.searchParams.set('application_name', app);
      const open = async (connectionString: string) => {
        const db = await openDatabase(liveSchema, postgres({ connectionString, schema: target.location }), {
          changeNotifications: true,
        });
        cleanups.push(() => db.close());
        return db;
      };
      const a = await seed(await open(process.env.DATABASE_URL!));
      const b = await open(url.toString());
      const heardOnB: string[][] = [];
      b.onTablesChanged(undefined, (tables) => heardOnB.push(sorted(tables)));

      // The server restarts, a proxy drops idle connections: here, the LISTEN backend is terminated.
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      try {
        const { rows } = await admin.query(
          `SELECT pg_terminate_backend(pid) AS gone FROM pg_stat_activity
           WHERE application_name = $1 AND query ILIKE 'LISTEN%'`,
          [app],
        );
        expect(rows).toEqual([{ gone: true }]);
      } finally {
        await admin.end();
      }

      await waitFor(
        async () => {
          await a
            .update(boards)
            .set({ title: `t${Date.now()}` })
            .where(eq(boards.id, 1));
          return heardOnB.some((tables) => tables.length === 1 && tables[0] === 'boards');
        },
        10_000,
        'B to hear A again after its LISTEN connection was cut',
      );
      // Commits made while B was deaf are lost to LISTEN, so on reconnecting B reports every table
      // as changed (its live queries re-run), before it hears A's commits one by one again.
      expect(heardOnB[0]).toEqual(['boards', 'cards', 'notes']);
      expect(heardOnB.at(-1)).toEqual(['boards']);
    });
  }
});
