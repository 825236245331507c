import { describe, expect, it } from 'vitest';
import { checkHistory } from '../../soak/check-history.js';
import { History } from '../../soak/history.js';
import { readLogOrder, recordLogOrder } from '../../soak/log-order.js';
import { itemKey, ownerKey } from '../../soak/plan.js';
import { soakSchema } from '../../soak/schema.js';
import { applyServerWrites } from '../../soak/writes.js';
import { HybridLogicalClock } from '../../src/sync/protocol/hlc.js';
import type { ChangeJson } from '../../src/sync/protocol/messages-client.js';
import type { JsonRow } from '../../src/sync/protocol/value-codec.js';
import { applyPush } from '../../src/sync/server/apply-push.js';
import { RuleSet } from '../../src/sync/server/rules.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';

/**
 * The soak's log order survives a prune. Soak seed 7 (PostgreSQL): the `away` fault read the log
 * order and then pruned; a batch ticked between the two lost its ticks, so the checker placed it
 * by its ack, which came after a reconnect, after the delete of its items' owner. The model then
 * applied its inserts after the owner was gone, kept them, and reported two lost writes that the
 * server had rightly cascaded away.
 */

const s = soakSchema('plain');
const owner = ownerKey(3);
const items = [itemKey(0), itemKey(4)];

function itemValues(id: string): JsonRow {
  return {
    id,
    owner_id: owner,
    title: 'title',
    qty: '9007199261217021',
    payload: null,
    due_at: null,
    tags: [],
    note: null,
  };
}

for (const driver of serverDrivers) {
  describe(`soak log order (${driver})`, () => {
    it('keeps the ticks of a batch applied between a read of the order and a prune', async () => {
      const t = await startTestServer(s.schema, { driver });
      const db = t.server.db;
      await recordLogOrder(db);
      const history = new History();
      const pusher = (clientId: string) => {
        const ctx = {
          db,
          schema: s.schema,
          clientId,
          user: { userId: 'u1' },
          rules: new RuleSet(s.schema, undefined),
          clock: new HybridLogicalClock('server'),
        };
        return async (client: number, mutationId: number, changes: ChangeJson[]) => {
          history.pushed(client, { clientId, batches: [{ mutationId, changes }] });
          const [result] = await applyPush(ctx, [{ mutationId, changes }]);
          expect(result!.status).toBe('applied');
        };
      };
      const client1 = pusher('client-1');
      const client3 = pusher('client-3');

      // A backend write creates the owner.
      const logged = await applyServerWrites(db, s, [
        {
          table: 'owners',
          op: 'insert',
          key: owner,
          values: {
            name: 'name-3',
            order: 1,
            created_at: new Date('2026-01-02T00:00:00.000Z'),
            meta: { v: 1 },
          },
        },
      ]);
      history.backendWrite(0, logged);
      await t.settled();
      // The away fault reads the order...
      history.noteLogOrder(await readLogOrder(db));

      // ...client 1's batch #5 inserts two items of the owner and is ticked (its ack is lost with
      // the connection)...
      const now = Date.now();
      await client1(
        1,
        5,
        items.map((id) => ({
          table: 'items',
          op: 'insert',
          pk: { id },
          values: itemValues(id),
          hlc: `${now}-00000-client-1`,
        })),
      );
      await t.settled();
      // ...then prunes the whole log.
      expect((await t.server.pruneChangeLog({ olderThanMs: 0 })).changes).toBeGreaterThan(0);

      // Client 3 (its clock ahead) deletes the owner, cascading to the items, and hears its ack.
      await client3(3, 12, [
        { table: 'owners', op: 'delete', pk: { id: owner }, hlc: `${now + 20_000}-00000-client-3` },
      ]);
      history.acked({ clientId: 'client-3', results: [{ mutationId: 12, status: 'applied' }] });
      // Client 1 reconnects and only now hears #5 was applied.
      history.acked({ clientId: 'client-1', results: [{ mutationId: 5, status: 'applied' }] });
      await t.settled();
      history.noteLogOrder(await readLogOrder(db));

      const inserted = history.ticks.batch.get('client-1:5');
      const deleted = history.ticks.batch.get('client-3:12');
      expect(inserted).toBeDefined();
      expect(deleted).toBeGreaterThan(inserted!);

      const server = {
        owners: (await db.select().from(s.owners as any)) as Record<string, unknown>[],
        items: (await db.select().from(s.items as any)) as Record<string, unknown>[],
      };
      expect(server).toEqual({ owners: [], items: [] });
      const checked = checkHistory(s, history, server);
      expect(checked.violations).toEqual([]);
      expect(checked.notes).toEqual([]);
    });
  });
}
