import { describe, expect, it } from 'vitest';
import { encodeHlc } from '../../src/sync/protocol/hlc.js';
import { type ChangeJson, PROTOCOL_VERSION, type PushMessage } from '../../src/sync/protocol/messages.js';
import type { SyncRules } from '../../src/sync/server/index.js';
import { appSchema } from '../support/fixtures.js';
import { helloMessage, RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';

/**
 * Pushes (docs/sync-internals.md, "Server flow" step 3): a client's batches are applied one push at
 * a time, and the `ack` comes only after the push's own changes have been streamed back, so a
 * client always holds the server's outcome before it drops a batch from its outbox. A push sent
 * before the connection is live waits for it; a batch the rules refuse is rejected and changes
 * nothing.
 */

const L1 = '00000000-0000-4000-8000-0000000000a1';
const L2 = '00000000-0000-4000-8000-0000000000b2';

const rules: SyncRules<typeof appSchema> = {
  lists: { read: (user) => user.userId !== '', write: (user, row) => row.ownerId === user.userId },
  todos: { read: () => true },
};

/** A push of one batch with one insert, stamped now by the client. */
function pushInsert(
  clientId: string,
  mutationId: number,
  table: string,
  values: ChangeJson['values'] & { id: string },
): PushMessage {
  const change: ChangeJson = {
    table,
    op: 'insert',
    pk: { id: values.id },
    values,
    hlc: encodeHlc({ wallMs: Date.now(), counter: 0, nodeId: clientId }),
  };
  return { type: 'push', v: PROTOCOL_VERSION, batches: [{ mutationId, changes: [change] }] };
}

const insertList = (clientId: string, mutationId: number, id: string, ownerId: string) =>
  pushInsert(clientId, mutationId, 'lists', { id, name: `list ${mutationId}`, owner_id: ownerId });

for (const driver of serverDrivers) {
  describe(`sync server pushes [${driver}]`, () => {
    it('acks a push after streaming its own changes back, and a resent batch is applied once', async () => {
      const t = await startTestServer(appSchema, { driver, rules });
      const clientId = crypto.randomUUID();
      const client = await RawClient.connect(t.url);
      // The push goes right behind the hello: it waits until the connection is live.
      client.send(
        helloMessage(appSchema, {
          clientId,
          token: await t.token('u1'),
          shapes: [{ id: 'l', table: 'lists' }],
        }),
      );
      client.send(insertList(clientId, 1, L1, 'u1'));
      const ack = await client.nextOf('ack');
      expect(ack.results).toEqual([{ mutationId: 1, status: 'applied' }]);
      const types = client.received.map((m) => m.type);
      expect(types.slice(0, 2)).toEqual(['welcome', 'snapshot']);
      const own = client.received.findIndex(
        (m) => m.type === 'changes' && m.changes.some((c) => c.pk.id === L1 && c.op === 'insert'),
      );
      expect(own).toBeGreaterThan(1);
      expect(own).toBeLessThan(types.indexOf('ack'));

      client.send(insertList(clientId, 1, L1, 'u1'));
      expect((await client.nextOf('ack')).results).toMatchObject([
        { mutationId: 1, status: 'applied', rows: [{ table: 'lists' }] },
      ]);
      expect(await t.external('SELECT id, owner_id FROM lists')).toEqual([{ id: L1, owner_id: 'u1' }]);

      // A new connection of the same client learns what was applied.
      const again = await RawClient.connect(t.url);
      again.send(helloMessage(appSchema, { clientId, token: await t.token('u1') }));
      expect((await again.next('welcome')).lastMutationId).toBe(1);
    });

    it('rejects a batch the write rules refuse, and the data stays as it was', async () => {
      const t = await startTestServer(appSchema, { driver, rules });
      const clientId = crypto.randomUUID();
      const client = await RawClient.connect(t.url);
      await client.sync(helloMessage(appSchema, { clientId, token: await t.token('u1') }));
      client.send(insertList(clientId, 1, L2, 'u2'));
      const [result] = (await client.nextOf('ack')).results;
      expect(result).toMatchObject({ mutationId: 1, status: 'rejected' });
      expect(result!.status === 'rejected' && result!.reason).toMatch(/lists/);
      expect(await t.external('SELECT id FROM lists')).toEqual([]);

      // todos has a read rule and no write rule: read-only.
      client.send(pushInsert(clientId, 2, 'todos', { id: L2, list_id: L1, title: 'x' }));
      const [refused] = (await client.nextOf('ack')).results;
      expect(refused).toMatchObject({ mutationId: 2, status: 'rejected' });
      expect(refused!.status === 'rejected' && refused!.reason).toMatch(/todos/);
      expect(await t.external('SELECT id FROM todos')).toEqual([]);
    });
  });
}
