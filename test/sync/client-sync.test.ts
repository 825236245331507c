import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { asc, type Database, eq, openDatabase } from '../../src/index.js';
import { type SyncClient, type SyncClientOptions, syncClient } from '../../src/sync/client/index.js';
import { appSchema, lists, todos } from '../support/fixtures.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

/**
 * The sync client end to end, against the real sync server on loopback (PGlite, and the real
 * PostgreSQL server when DATABASE_URL is set): clients converge, offline writes arrive after
 * reconnecting, live queries see remote changes, flush() and caughtUp() keep their promises.
 */

const listId = '0f8fad5b-d9cb-469f-a165-70867728950e';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function client(
  t: TestServer<typeof appSchema>,
  userId = 'u1',
  options: Partial<SyncClientOptions> = {},
): Promise<{ db: Database<typeof appSchema>; sync: SyncClient }> {
  const db = await openDatabase(appSchema, sqlite());
  const sync = syncClient(db, {
    url: t.url,
    token: await t.token(userId),
    backoff: { initialMs: 20, maxMs: 200 },
    ...options,
  });
  cleanups.push(async () => {
    await sync.stop();
    await db.close();
  });
  return { db, sync };
}

async function rows(db: Database) {
  return {
    lists: await db.select().from(lists).orderBy(asc(lists.id)),
    todos: await db.select().from(todos).orderBy(asc(todos.id)),
  };
}

for (const driver of serverDrivers) {
  describe(`sync client end to end [${driver}]`, () => {
    it('two clients converge on the server state, conflicting writes included', async () => {
      const t = await startTestServer(appSchema, { driver });
      const a = await client(t);
      const b = await client(t);
      await a.sync.start();
      await b.sync.start();
      expect(a.sync.status).toBe('online');
      await a.db.insert(lists).values({ id: listId, name: 'Groceries', ownerId: 'u1' });
      await a.db.insert(todos).values([
        { listId, title: 'Milk', tags: ['dairy'] },
        { listId, title: 'Bread', updatedAt: new Date(1_700_000_000_000) },
      ]);
      await a.sync.flush();
      await b.sync.caughtUp();
      expect(await rows(b.db)).toEqual(await rows(a.db));

      // B edits after seeing A's edit: B's stamp is later, so B wins, everywhere.
      const [milk] = await a.db.select().from(todos).where(eq(todos.title, 'Milk'));
      await a.db.update(todos).set({ title: 'Oat milk' }).where(eq(todos.id, milk.id));
      await a.sync.flush();
      await b.sync.caughtUp();
      await b.db.update(todos).set({ title: 'Soy milk', done: true }).where(eq(todos.id, milk.id));
      await b.sync.flush();
      await a.sync.caughtUp();
      expect((await a.db.select().from(todos).where(eq(todos.id, milk.id)))[0]).toMatchObject({
        title: 'Soy milk',
        done: true,
      });

      // Concurrent edits of one column: one of them wins, the same one on every replica.
      await a.db.update(todos).set({ note: 'from A' }).where(eq(todos.id, milk.id));
      await b.db.update(todos).set({ note: 'from B' }).where(eq(todos.id, milk.id));
      await Promise.all([a.sync.flush(), b.sync.flush()]);
      await Promise.all([a.sync.caughtUp(), b.sync.caughtUp()]);
      const [onA, onB] = [await rows(a.db), await rows(b.db)];
      expect(onA).toEqual(onB);
      const [server] = await t.server.db.select().from(todos).where(eq(todos.id, milk.id));
      expect(onA.todos.find((x) => x.id === milk.id)).toEqual(server);
      expect(['from A', 'from B']).toContain(server.note);
    });

    it('writes made offline reach the server after reconnecting', async () => {
      const t = await startTestServer(appSchema, { driver });
      const proxy = await startTcpProxy(Number(new URL(t.url).port));
      cleanups.push(() => proxy.close());
      const a = await client(t, 'u1', { url: `ws://127.0.0.1:${proxy.port}/sync` });
      const statuses: string[] = [];
      a.sync.on('status', (status) => statuses.push(status));
      await a.sync.start();
      await a.db.insert(lists).values({ id: listId, name: 'Online', ownerId: 'u1' });
      await a.sync.flush();

      proxy.setRefusing(true);
      await waitFor(() => a.sync.status === 'connecting', 5000, 'the client to notice the cut');
      await a.db.update(lists).set({ name: 'Renamed offline' }).where(eq(lists.id, listId));
      await a.db.insert(todos).values({ listId, title: 'written offline' });
      const flushed = a.sync.flush();
      expect((await t.server.db.select().from(lists))[0].name).toBe('Online');

      proxy.setRefusing(false);
      await flushed;
      expect((await t.server.db.select().from(lists))[0].name).toBe('Renamed offline');
      expect(await t.server.db.select().from(todos)).toEqual([
        expect.objectContaining({ title: 'written offline' }),
      ]);
      expect(statuses).toEqual(['connecting', 'online', 'connecting', 'online']);
    });

    it('writes made while stopped are pushed on the next start', async () => {
      const t = await startTestServer(appSchema, { driver });
      const a = await client(t);
      await a.sync.start();
      await a.sync.stop();
      expect(a.sync.status).toBe('offline');
      await a.db.insert(lists).values({ id: listId, name: 'While stopped', ownerId: 'u1' });
      await a.sync.start();
      await a.sync.flush();
      expect(await t.server.db.select().from(lists)).toEqual([
        { id: listId, name: 'While stopped', ownerId: 'u1' },
      ]);
    });

    it('a live query re-emits when a change arrives from the server', async () => {
      const t = await startTestServer(appSchema, { driver });
      const a = await client(t);
      const b = await client(t);
      await a.sync.start();
      await b.sync.start();
      const seen: string[][] = [];
      const stop = b.db
        .select({ name: lists.name })
        .from(lists)
        .watch()
        .subscribe((result) => seen.push(result.map((r) => r.name)));
      cleanups.push(async () => stop());
      await waitFor(() => seen.length === 1, 5000, 'the first result');
      await a.db.insert(lists).values({ id: listId, name: 'From A', ownerId: 'u1' });
      await waitFor(() => seen.some((names) => names.includes('From A')), 10_000, 'the remote insert');
      expect(seen[0]).toEqual([]);
    });

    it('a direct write to PostgreSQL reaches clients too', async () => {
      const t = await startTestServer(appSchema, { driver });
      const a = await client(t);
      await a.sync.start();
      await t.server.db.insert(lists).values({ id: listId, name: 'Server side', ownerId: 'u1' });
      await a.sync.caughtUp();
      expect(await a.db.select().from(lists)).toEqual([{ id: listId, name: 'Server side', ownerId: 'u1' }]);
    });

    it('resumes from its cursor after a restart, and takes a fresh snapshot when its shapes change', async () => {
      const t = await startTestServer(appSchema, { driver });
      const a = await client(t);
      await t.server.db.insert(lists).values({ id: listId, name: 'L', ownerId: 'u1' });
      const snapshots: { rows: number; totalRows: number }[] = [];
      const off = a.sync.on('progress', (p) => snapshots.push(p));
      await a.sync.start();
      await a.sync.caughtUp();
      off();
      expect(snapshots.at(-1)).toEqual({ rows: 1, totalRows: 1 });
      await a.sync.stop();
      await t.server.db.update(lists).set({ name: 'L2' }).where(eq(lists.id, listId));
      const progress: number[] = [];
      a.sync.on('progress', (p) => progress.push(p.rows));
      await a.sync.start();
      await a.sync.caughtUp();
      expect(progress).toEqual([]);
      expect((await a.db.select().from(lists))[0].name).toBe('L2');
      await a.sync.stop();
      const narrower = syncClient(a.db, {
        url: t.url,
        token: await t.token('u1'),
        shapes: [{ table: lists, where: eq(lists.ownerId, 'nobody') }],
      });
      cleanups.push(() => narrower.stop());
      await narrower.start();
      await narrower.caughtUp();
      expect(await a.db.select().from(lists)).toEqual([]);
    });
  });
}
