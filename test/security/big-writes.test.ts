import { afterEach, describe, expect, it } from 'vitest';
import { eq, is, sql } from '../../src/index.js';
import { WriteTooLargeError } from '../../src/sync/client/write-too-large.js';
import { DEFAULT_MESSAGE_LIMITS } from '../../src/sync/protocol/messages.js';
import { installCapture } from '../../src/sync/server/capture.js';
import {
  closeClients,
  type E2eClient,
  e2eSchema,
  fixedKeys,
  items,
  openClients,
  within,
} from '../support/sync-fixture.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';
import { lists, openReplica, todos } from '../sync/client-helpers.js';
import { waitForItem } from './big-rows.js';

/**
 * Issue 17, point 4: writes too big to sync. A client's local write bigger than any push the
 * server takes (its maxMessageBytes) used to stay first in the outbox forever, so nothing the
 * client wrote after it was ever pushed and flush() never settled; now it leaves the outbox with a
 * WriteTooLargeError and the writes after it go on. A row bigger than the row size guard's limit
 * is refused at write time, whoever writes it: a backend INSERT fails with the reason, a push is
 * rejected with it (the client rolls back), and other writes go on.
 */

const keys = fixedKeys(4);
let clients: E2eClient[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
});

for (const driver of serverDrivers) {
  describe(`big writes [${driver}]`, () => {
    it('a local write over maxMessageBytes leaves the outbox with an error; later writes are pushed', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      clients = await openClients({ port: t.server.port, token: t.token }, 2);
      const [a, b] = clients as [E2eClient, E2eClient];
      await Promise.all(clients.map((c) => within(c.sync.start(), 10_000, 'a client to start')));

      // 1.1 MB of text, over the default 1 MiB per message.
      await a.db.insert(items).values({ id: keys[0]!, title: 'huge', note: 'x'.repeat(1_100_000) });
      await a.db.insert(items).values({ id: keys[1]!, title: 'after the huge one' });
      await within(a.sync.flush(), 5000, 'the flush after an oversized write');
      await waitForItem(b, keys[1]!, 'after the huge one');

      // Told to the app as a rejection is, and undone locally: the row is fetched back from the
      // server, which never had it.
      expect(a.rejected.map((r) => r.reason)).toEqual([
        expect.stringMatching(/table "items" takes \d+ bytes, over the server's limit of 1048576 bytes/),
      ]);
      expect(a.errors.filter((e) => is(e, WriteTooLargeError))).toEqual([]);
      const onServer = await t.server.db.select().from(items).where(eq(items.id, keys[0]!));
      expect(onServer).toEqual([]);
      await waitFor(
        async () => (await a.db.select().from(items).where(eq(items.id, keys[0]!))).length === 0,
        5000,
        'the oversized row to be undone locally',
      );
    }, 30_000);

    it('a row over the size guard is refused at write time, from the backend and from a push', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      await installCapture(t.server.db, e2eSchema.tableList, { maxRowBytes: 256 << 10 });
      clients = await openClients({ port: t.server.port, token: t.token }, 2);
      const [a, b] = clients as [E2eClient, E2eClient];
      await Promise.all(clients.map((c) => within(c.sync.start(), 10_000, 'a client to start')));

      await expect(
        t.server.db.execute(
          sql`INSERT INTO items (id, title, note) VALUES (${keys[2]!}, 'backend', repeat('y', 300000))`,
        ),
      ).rejects.toThrow(/over the limit of 262144 bytes for a synced row/);

      // 300 KB fits in a push (1 MiB) but not in the guard: the server rejects the batch.
      await a.db.insert(items).values({ id: keys[0]!, title: 'too big to sync', note: 'z'.repeat(300_000) });
      await a.db.insert(items).values({ id: keys[1]!, title: 'small enough' });
      await within(a.sync.flush(), 5000, 'the flush after a rejected write');
      await waitForItem(b, keys[1]!, 'small enough');
      expect(a.rejected.map((r) => r.reason)).toEqual([expect.stringMatching(/maxRowBytes/)]);
      // Rolled back as a rejection is: the row the server never had is gone locally.
      expect(await a.db.select().from(items).where(eq(items.id, keys[0]!))).toEqual([]);
    }, 30_000);
  });
}

it('readPush drops a change no push can carry and reports it with the rest of the push', async () => {
  const { db, replica } = await openReplica();
  const listId = keys[3]!;
  await db.insert(lists).values({ id: listId, name: 'x'.repeat(5000), ownerId: 'u1' });
  await db.insert(todos).values({ listId, title: 'small' });
  await replica.stamp();
  const limits = { ...DEFAULT_MESSAGE_LIMITS, maxMessageBytes: 1000 };
  const plan = await replica.readPush(limits);
  expect(plan!.refused!.map((e) => [e.rows, e.limit])).toEqual([
    [[{ table: 'lists', pk: { id: listId } }], 1000],
  ]);
  // One local transaction, re-cut: the part that fits goes, after the part that cannot.
  expect(plan!.mutationIds).toEqual([plan!.refused![0]!.mutationId + 1]);
  // Gone for good: the next read has nothing of it.
  expect((await replica.readPush(limits))!.refused).toBeUndefined();
  await db.close();
});
