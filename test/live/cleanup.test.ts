import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { type Driver, eq, openDatabase, sql, UsageError } from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { waitFor } from '../support/wait.js';
import { boards, cards, type LiveDb, liveSchema, record, seed, settlement } from './fixtures.js';

/** How many of each kind of handle (timer, socket, ...) keeps the process alive right now. */
function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/**
 * The handles open now beyond those open at `before` (the test runner's own pipes and timers are
 * in both), e.g. `['TCPSocketWrap x1']`.
 */
function openedSince(before: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [kind, n] of activeResources()) {
    const more = n - (before.get(kind) ?? 0);
    if (more > 0) extra.push(`${kind} x${more}`);
  }
  return extra;
}

let appCounter = 0;

dialectSuite('live queries leave nothing behind', (env) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  /**
   * A driver that owns everything it opens (so close() has to release it all) and, on PostgreSQL,
   * a way to count the server connections it holds: they carry an application_name of their own.
   */
  function ownedDriver(): { driver: Driver; serverConnections?: () => Promise<number> } {
    if (env.driver.name === 'better-sqlite3') return { driver: env.freshDriver() };
    if (env.driver.name === 'pglite') return { driver: pglite() };
    const app = `syncline_cleanup_${process.pid}_${++appCounter}`;
    const schema = `cleanup_${process.pid}_${Date.now().toString(36)}_${appCounter}`;
    const url = new URL(process.env.DATABASE_URL!);
    url.searchParams.set('application_name', app);
    cleanups.push(async () => {
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      try {
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await admin.end();
      }
    });
    return {
      driver: postgres({ connectionString: url.toString(), schema }),
      serverConnections: async () => {
        const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await admin.connect();
        try {
          const { rows } = await admin.query(
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
            [app],
          );
          return rows[0].n as number;
        } finally {
          await admin.end();
        }
      },
    };
  }

  const notifications = env.driver.dialect === 'postgres';

  /** Watches in every way there is, writes so that they re-run, then lets go of all of them. */
  async function exercise(db: LiveDb): Promise<() => void> {
    const byBoard = record(db.select().from(cards).where(eq(cards.boardId, 1)).watch());
    const same = record(db.select().from(cards).where(eq(cards.boardId, 1)).watch());
    const raw = record(db.watch(sql`select count(*) as n from ${boards}`, { tables: [boards] }));
    const stopListening = db.onTablesChanged([cards], () => {});
    const iterated: unknown[] = [];
    for await (const rows of db.select({ id: boards.id }).from(boards).watch()) {
      iterated.push(rows);
      break;
    }
    await waitFor(() => byBoard.values.length === 1 && same.values.length === 1 && raw.values.length === 1);
    await db.insert(cards).values({ id: 4, boardId: 1, title: 'a3' });
    await db.transaction(async (tx) => {
      await tx.insert(boards).values({ id: 3, title: 'gamma' });
    });
    await waitFor(() => byBoard.values.length === 2 && raw.values.length === 2);
    expect(iterated).toHaveLength(1);
    return () => {
      byBoard.stop();
      same.stop();
      raw.stop();
      stopListening();
    };
  }

  it('unsubscribing everything and closing the database leaves no timer, socket or listener', async () => {
    const before = activeResources();
    const { driver, serverConnections } = ownedDriver();
    const db = await seed(await openDatabase(liveSchema, driver, { changeNotifications: notifications }));
    const letGo = await exercise(db);
    if (serverConnections) {
      // What is measured does see this driver: its pool and its LISTEN connection, on both ends.
      expect(await serverConnections()).toBeGreaterThanOrEqual(2);
      expect(openedSince(before).some((kind) => kind.startsWith('TCPSocketWrap'))).toBe(true);
    }
    letGo();
    await db.close();

    await waitFor(() => openedSince(before).length === 0, 2000, 'every handle to close');
    expect(openedSince(before)).toEqual([]);
    if (serverConnections) expect(await serverConnections()).toBe(0);
  });

  it('closing the database with live queries still subscribed stops them, without errors', async () => {
    const before = activeResources();
    const { driver, serverConnections } = ownedDriver();
    const db = await seed(await openDatabase(liveSchema, driver, { changeNotifications: notifications }));
    const live = db.select().from(cards).where(eq(cards.boardId, 1)).watch();
    const rec = record(live);
    const iterator = db.select({ id: boards.id }).from(boards).watch()[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    await waitFor(() => rec.values.length === 1);
    const pending = settlement(iterator.next());

    // A write starts a run; the database closes while it may still be in flight.
    const write = db.update(cards).set({ title: 'last' }).where(eq(cards.id, 1));
    await write;
    await db.close();

    expect(live.runCount).toBe(0);
    expect(live.value).toBeUndefined();
    // An iteration in progress ends, as a stream does when its source closes.
    await waitFor(() => pending.outcome !== undefined, 2000, 'the pending next() to settle');
    expect(pending.outcome).toEqual({ value: { value: undefined, done: true } });
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
    rec.stop(); // after close: harmless
    expect(() => live.subscribe(() => {})).toThrow(UsageError);

    await waitFor(() => openedSince(before).length === 0, 2000, 'every handle to close');
    expect(rec.errors).toEqual([]);
    expect(rec.values.length).toBeLessThanOrEqual(2);
    if (serverConnections) expect(await serverConnections()).toBe(0);
  });

  if (env.driver.name === 'pglite') {
    it('an app-owned PGlite stays open, and no longer LISTENs once the database closes', async () => {
      const instance = new PGlite();
      cleanups.push(() => instance.close());
      const listening = async () =>
        (await instance.query<{ c: string }>('SELECT pg_listening_channels() AS c')).rows.map((r) => r.c);
      const db = await openDatabase(liveSchema, pglite({ instance }), { changeNotifications: true });
      expect(await listening()).toEqual(['syncline_tables']);
      await (await exercise(await seed(db)))();
      await db.close();
      expect(await listening()).toEqual([]);
      expect((await instance.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  }
});
