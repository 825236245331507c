import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  AuthError,
  type Database,
  eq,
  openDatabase,
  SchemaMismatchError,
  schema,
  table,
  text,
  UsageError,
  uuid,
} from '../../src/index.js';
import {
  type RejectedEvent,
  type SyncClient,
  type SyncClientOptions,
  syncClient,
} from '../../src/sync/client/index.js';
import { appSchema, lists, todos } from '../support/fixtures.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * What the server refuses, as the client sees it: a bad token or another schema version make
 * start() reject and stop; a write the rules refuse is rolled back locally and reported.
 */

const listId = '0f8fad5b-d9cb-469f-a165-70867728950e';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function client<S extends typeof appSchema>(
  t: TestServer<typeof appSchema>,
  options: Partial<SyncClientOptions> & { schema?: S } = {},
): Promise<{ db: Database<typeof appSchema>; sync: SyncClient }> {
  const db = await openDatabase(options.schema ?? appSchema, sqlite());
  const sync = syncClient(db, {
    url: t.url,
    token: await t.token('u1'),
    backoff: { initialMs: 20, maxMs: 100 },
    ...options,
  });
  cleanups.push(async () => {
    await sync.stop();
    await db.close();
  });
  return { db, sync };
}

for (const driver of serverDrivers) {
  describe(`sync client refusals [${driver}]`, () => {
    it('start() rejects with AuthError on a bad token, and the client stops', async () => {
      const t = await startTestServer(appSchema, { driver });
      const { sync } = await client(t, { token: 'not-a-jwt' });
      const errors: Error[] = [];
      sync.on('error', (error) => errors.push(error));
      await expect(sync.start()).rejects.toThrow(AuthError);
      expect(sync.status).toBe('offline');
      expect(errors).toHaveLength(1);
      expect(errors[0].message).toMatch(/refused the token/);
    });

    it('calls a token function on each connection', async () => {
      const t = await startTestServer(appSchema, { driver });
      let calls = 0;
      const token = await t.token('u1');
      const { sync } = await client(t, {
        token: async () => {
          calls++;
          return token;
        },
      });
      await sync.start();
      await sync.stop();
      await sync.start();
      expect(calls).toBe(2);
    });

    it('start() rejects with SchemaMismatchError for a schema whose columns do not fit, naming them', async () => {
      const t = await startTestServer(appSchema, { driver });
      const wider = table('lists', {
        id: uuid().primaryKey().defaultRandom(),
        name: text().notNull(),
        ownerId: text('owner_id').notNull(),
        color: text(),
      });
      const newer = schema({ lists: wider, todos }, { version: 2 });
      const { sync } = await client(t, { schema: newer as unknown as typeof appSchema });
      await expect(sync.start()).rejects.toThrow(SchemaMismatchError);
      await expect(sync.start()).rejects.toThrow(
        /schema \(version 2\) cannot be served by this server \(schema version 1\): column "lists.color" is not on the server/,
      );
    });

    it('serves another schema version whose synced tables are the same', async () => {
      const t = await startTestServer(appSchema, { driver });
      const sameTables = schema({ lists, todos }, { version: 2 });
      const { db, sync } = await client(t, { schema: sameTables as typeof appSchema });
      await sync.start();
      await db.insert(lists).values({ id: listId, name: 'Groceries', ownerId: 'u1' });
      await sync.flush();
      expect(await t.server.db.select({ name: lists.name }).from(lists)).toEqual([{ name: 'Groceries' }]);
    });

    it('rolls back a write the rules refuse and emits rejected', async () => {
      const t = await startTestServer(appSchema, {
        driver,
        rules: {
          lists: { read: () => true, write: (user, row) => row.ownerId === user.userId },
          todos: { read: () => true, write: () => true },
        },
      });
      const { db, sync } = await client(t);
      const rejected: RejectedEvent[] = [];
      sync.on('rejected', (event) => rejected.push(event));
      await sync.start();
      await db.insert(lists).values({ id: listId, name: 'Mine', ownerId: 'u1' });
      await sync.flush();
      await db.update(lists).set({ name: 'Stolen', ownerId: 'u2' }).where(eq(lists.id, listId));
      await db
        .insert(lists)
        .values({ id: '7c9e6679-7425-40de-944b-e07fc1f90ae7', name: 'Not mine', ownerId: 'u2' });
      await sync.flush();
      await waitFor(() => rejected.length === 2, 5000, 'two rejections');
      expect(rejected.map((r) => r.reason).join(' ')).toMatch(/lists/);
      expect(rejected[0].rows).toEqual([
        { table: 'lists', pk: { id: listId }, row: { id: listId, name: 'Mine', ownerId: 'u1' } },
      ]);
      expect(await db.select().from(lists)).toEqual([{ id: listId, name: 'Mine', ownerId: 'u1' }]);
      expect(await t.server.db.select().from(lists)).toEqual([{ id: listId, name: 'Mine', ownerId: 'u1' }]);
    });

    it('refuses a database that is not SQLite', async () => {
      const t = await startTestServer(appSchema, { driver });
      expect(() => syncClient(t.server.db, { url: t.url })).toThrow(UsageError);
      expect(() => syncClient(t.server.db, { url: t.url })).toThrow(/needs a Database opened on SQLite/);
    });
  });
}
