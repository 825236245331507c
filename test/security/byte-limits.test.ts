import { afterEach, describe, expect, it } from 'vitest';
import { eq, like } from '../../src/index.js';
import type { ServerMessage } from '../../src/sync/protocol/messages.js';
import {
  closeClients,
  type E2eClient,
  e2eSchema,
  fixedKeys,
  items,
  openClients,
  within,
} from '../support/sync-fixture.js';
import { helloMessage, RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';
import { waitForItem, writeBigRows } from './big-rows.js';

/**
 * Issue 17, point 4: limits count bytes, not only rows. Big rows written straight to PostgreSQL
 * reach a client that catches up from cursor 0, and one that takes a snapshot, in messages of
 * about a MiB each (not one message of everything, which no client could read), and a legitimate
 * client on the same server goes on syncing meanwhile.
 */

const MiB = 1 << 20;
const keys = fixedKeys(2);

let clients: E2eClient[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
});

/** The bytes of each message of `types` that `client` received, as sent on the wire. */
function messageBytes(client: RawClient, types: ServerMessage['type'][]): number[] {
  return client.received
    .filter((m) => types.includes(m.type))
    .map((m) => Buffer.byteLength(JSON.stringify(m)));
}

/** A legitimate client's write reaches another client within a second. */
async function expectStillSyncing(a: E2eClient, b: E2eClient, title: string): Promise<void> {
  await a.db.insert(items).values({ id: keys[0]!, title });
  await waitForItem(b, keys[0]!, title);
  await a.db.delete(items).where(eq(items.id, keys[0]!));
}

for (const driver of serverDrivers) {
  describe(`byte limits [${driver}]`, () => {
    it('a catch-up from cursor 0 over a log of big rows comes in messages of about a MiB', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      clients = await openClients({ port: t.server.port, token: t.token }, 2, {
        shapes: [{ table: items, where: like(items.title, 'legit%') }],
      });
      await Promise.all(clients.map((c) => within(c.sync.start(), 10_000, 'a client to start')));
      // 24 rows of 300 KB: before byte budgets, one page of 7 MB (and 1,000 rows of them, 300 MB).
      await writeBigRows(t, 24, 300_000);
      await t.settled();

      const catchingUp = await RawClient.connect(t.url);
      catchingUp.send(
        helloMessage(e2eSchema, {
          token: await t.token('reader'),
          cursor: '0',
          shapes: [{ id: 'items', table: 'items' }],
        }),
      );
      await catchingUp.next('welcome');
      await expectStillSyncing(clients[0]!, clients[1]!, 'legit during the catch-up');
      await catchingUp.ping();

      const sizes = messageBytes(catchingUp, ['changes']);
      const rows = catchingUp.received.flatMap((m) => (m.type === 'changes' ? m.changes : []));
      expect(rows.filter((c) => c.table === 'items' && c.op === 'insert').length).toBeGreaterThanOrEqual(24);
      expect(sizes.length).toBeGreaterThanOrEqual(6);
      // A page stops before the change that would pass 1 MiB of logged JSON.
      expect(Math.max(...sizes)).toBeLessThan(1.1 * MiB);
    }, 30_000);

    it('a snapshot of big rows comes in chunks of about a MiB', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      clients = await openClients({ port: t.server.port, token: t.token }, 2, {
        shapes: [{ table: items, where: like(items.title, 'legit%') }],
      });
      await Promise.all(clients.map((c) => within(c.sync.start(), 10_000, 'a client to start')));
      await writeBigRows(t, 24, 300_000);

      const snapshotting = await RawClient.connect(t.url);
      const { rows } = await snapshotting.sync(
        helloMessage(e2eSchema, {
          token: await t.token('reader'),
          shapes: [{ id: 'items', table: 'items' }],
        }),
      );
      await expectStillSyncing(clients[0]!, clients[1]!, 'legit after the snapshot');

      expect(rows.get('items')?.length).toBe(24);
      const sizes = messageBytes(snapshotting, ['snapshot']);
      // Before: one chunk of 2,000 rows, 7 MB here.
      expect(sizes.length).toBeGreaterThanOrEqual(6);
      expect(Math.max(...sizes)).toBeLessThan(1.1 * MiB);
    }, 30_000);
  });
}
