import { describe, expect, it } from 'vitest';
import { itemKey, ownerKey } from '../../soak/plan.js';
import { soakSchema } from '../../soak/schema.js';
import { serverDrivers } from '../support/sync-server.js';
import { itemValues, startSoakReplay } from './soak-replay.js';

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

for (const driver of serverDrivers) {
  describe(`soak log order (${driver})`, () => {
    it('keeps the ticks of a batch applied between a read of the order and a prune', async () => {
      const r = await startSoakReplay(s, driver);
      // A backend write creates the owner.
      await r.backend(0, [
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
      // The away fault reads the order...
      await r.noteLogOrder();

      // ...client 1's batch inserts two items of the owner and is ticked (its ack is lost with
      // the connection)...
      const inserted = await r.push(
        1,
        items.map((id) => ({
          table: 'items',
          op: 'insert',
          pk: { id },
          values: itemValues(id, owner),
          hlc: r.stamp(0, 1),
        })),
      );
      await r.t.settled();
      // ...then prunes the whole log.
      expect((await r.t.server.pruneChangeLog({ olderThanMs: 0 })).changes).toBeGreaterThan(0);

      // Client 3 (its clock ahead) deletes the owner, cascading to the items, and hears its ack.
      const deleted = await r.push(3, [
        { table: 'owners', op: 'delete', pk: { id: owner }, hlc: r.stamp(10_000, 3) },
      ]);
      r.heard(3, deleted);
      // Client 1 reconnects and only now hears its batch was applied.
      r.heard(1, inserted);
      const { server, violations, notes } = await r.check();

      // Its own tick, kept through the prune (not a place between ticks).
      expect(Number.isInteger(r.place(1, inserted))).toBe(true);
      expect(r.place(3, deleted)).toBeGreaterThan(r.place(1, inserted)!);
      expect(server).toEqual({ owners: [], items: [] });
      expect(violations).toEqual([]);
      expect(notes).toEqual([]);
    });
  });
}
