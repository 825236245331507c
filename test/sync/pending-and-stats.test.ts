import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { type Database, eq, openDatabase } from '../../src/index.js';
import { type SyncClient, syncClient } from '../../src/sync/client/index.js';
import { appSchema, lists, todos } from '../support/fixtures.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

// sync.pending(): what the outbox holds; sync.stats(): what went over the wire.
const LIST = '0f8fad5b-d9cb-469f-a165-70867728950e';
const TODO = '1f8fad5b-d9cb-469f-a165-70867728950e';

const opened: { db: Database<typeof appSchema>; sync: SyncClient }[] = [];
afterEach(async () => {
  for (const { db, sync } of opened.splice(0)) {
    await sync.stop();
    await db.close();
  }
});

for (const driver of serverDrivers) {
  describe(`pending writes and traffic [${driver}]`, () => {
    it('counts the writes waiting, offline, and nothing once the server has them; counts the traffic', async () => {
      const t = await startTestServer(appSchema, { driver });
      const db = await openDatabase(appSchema, sqlite());
      const sync = syncClient(db, {
        url: t.url,
        token: await t.token('u1'),
        shapes: [{ table: lists }, { table: todos }],
      });
      opened.push({ db, sync });
      expect(await sync.pending()).toEqual({
        transactions: 0,
        changes: 0,
        mutations: 0,
        tables: {},
        bytes: 0,
        oldest: undefined,
      });
      expect(sync.stats()).toEqual({
        bytesIn: 0,
        bytesOut: 0,
        messagesIn: 0,
        messagesOut: 0,
        lastMessageAt: undefined,
        behind: undefined,
      });

      const before = Date.now();
      await db.transaction(async (tx) => {
        await tx.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u1' });
        await tx.insert(todos).values({ id: TODO, listId: LIST, title: 'Milk' });
      });
      await db.update(todos).set({ done: true }).where(eq(todos.id, TODO));
      // Each transaction gets its batch once the stamping pass has run.
      await waitFor(async () => (await sync.pending()).transactions === 2, 5000, 'two batches');
      const pending = await sync.pending();
      expect(pending).toMatchObject({
        transactions: 2,
        changes: 3,
        mutations: 0,
        tables: { lists: 1, todos: 2 },
      });
      expect(pending.bytes).toBeGreaterThan(50);
      expect(pending.oldest!.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(pending.oldest!.getTime()).toBeLessThanOrEqual(Date.now());

      await sync.start();
      await sync.flush();
      expect(await sync.pending()).toMatchObject({
        transactions: 0,
        changes: 0,
        tables: {},
        oldest: undefined,
      });
      await sync.caughtUp();
      const stats = sync.stats();
      expect(stats.messagesOut).toBeGreaterThanOrEqual(3); // hello, a push, a ping
      expect(stats.messagesIn).toBeGreaterThanOrEqual(3); // welcome, snapshots, an ack, a pong
      expect(stats.bytesOut).toBeGreaterThan(stats.messagesOut * 20);
      expect(stats.bytesIn).toBeGreaterThan(stats.messagesIn * 20);
      expect(stats.lastMessageAt).toBeInstanceOf(Date);
      expect(stats.behind).toBe(0);
    });
  });
}
