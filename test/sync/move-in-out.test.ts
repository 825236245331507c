import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { eq, inArray, sql } from '../../src/index.js';
import { lists, members, shareRules, shareSchema, todos } from '../support/share-schema.js';
import { closeClients, type E2eClient, openClients, within } from '../support/sync-fixture.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * Issue 18, "Rows that move in and out": a read rule that reads another table (todos are readable
 * through a membership table) moves rows in and out when that table changes, though the rows do
 * not change: when alice is added to a list its todos reach her at once, whole, and when she is
 * removed they leave her device, while writes go on; at every quiet point her replica is exactly
 * what the rule lets her read.
 */

let clients: E2eClient<typeof shareSchema>[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
});

for (const driver of serverDrivers) {
  describe(`rows that move in and out [${driver}]`, () => {
    it('grants and revokes reach the user at once, whole, while writes go on', async () => {
      const t = await startTestServer(shareSchema, { driver, rules: shareRules });
      const [shared, own] = [randomUUID(), randomUUID()];
      await t.server.db.insert(lists).values([
        { id: shared, name: 'shared' },
        { id: own, name: 'own' },
      ]);
      await t.server.db.insert(members).values({ id: randomUUID(), listId: own, userId: 'user-A' });
      await t.server.db.execute(
        sql`INSERT INTO todos (id, list_id, title) SELECT gen_random_uuid(), ${shared}, 'shared ' || g FROM generate_series(1, 300) g`,
      );
      await t.server.db.execute(
        sql`INSERT INTO todos (id, list_id, title) SELECT gen_random_uuid(), ${own}, 'own ' || g FROM generate_series(1, 5) g`,
      );
      clients = await openClients({ port: t.server.port, token: t.token }, 1, {
        schema: shareSchema,
        shapes: [{ table: todos }, { table: members }, { table: lists }],
      });
      const [alice] = clients as [E2eClient<typeof shareSchema>];
      await within(alice.sync.start(), 10_000, 'alice to start');
      await within(alice.sync.caughtUp(), 10_000, 'the first snapshot');

      /** Alice's todos, and what the rule lets her read now, as sorted ids. */
      const mine = async () => (await alice.db.select({ id: todos.id }).from(todos)).map((r) => r.id).sort();
      const allowed = async () =>
        (
          await t.server.db
            .select({ id: todos.id })
            .from(todos)
            .where(
              inArray(
                todos.listId,
                t.server.db.select({ id: members.listId }).from(members).where(eq(members.userId, 'user-A')),
              ),
            )
        )
          .map((r) => r.id)
          .sort();
      const quiet = async (what: string) => {
        await within(alice.sync.caughtUp(), 10_000, what);
        await waitFor(
          async () => JSON.stringify(await mine()) === JSON.stringify(await allowed()),
          5000,
          what,
        );
      };
      expect((await mine()).length).toBe(5);

      // Writes to both lists go on meanwhile.
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing && i < 200; i++) {
          await t.server.db
            .insert(todos)
            .values({ id: randomUUID(), listId: i % 2 ? shared : own, title: `w${i}` });
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();

      for (let round = 0; round < 3; round++) {
        const grant = randomUUID();
        await t.server.db.insert(members).values({ id: grant, listId: shared, userId: 'user-A' });
        await waitFor(
          async () => (await alice.db.select().from(todos).where(eq(todos.listId, shared))).length >= 300,
          10_000,
          `round ${round}: the shared list's todos to move in`,
        );
        await quiet(`round ${round}: after the grant`);
        await t.server.db.delete(members).where(eq(members.id, grant));
        await waitFor(
          async () => (await alice.db.select().from(todos).where(eq(todos.listId, shared))).length === 0,
          10_000,
          `round ${round}: the shared list's todos to move out`,
        );
        await quiet(`round ${round}: after the revoke`);
      }
      writing = false;
      await writer;
      await quiet('at the end');

      // Another user's membership cannot change what alice reads: her shape is not sent again.
      const refreshes: string[] = [];
      alice.tap.dropIncoming = (text) => {
        if (text.startsWith('{"type":"snapshot"') && text.includes('"refresh":true')) refreshes.push(text);
        return false;
      };
      await t.server.db.insert(members).values({ id: randomUUID(), listId: shared, userId: 'user-B' });
      await within(alice.sync.caughtUp(), 10_000, "the other user's membership");
      expect(refreshes).toHaveLength(0);
      await t.server.db.insert(members).values({ id: randomUUID(), listId: own, userId: 'user-A' });
      await waitFor(() => refreshes.length === 1, 5000, "alice's own membership to send her shape again");
      await quiet('after the other memberships');
      expect(refreshes).toHaveLength(1);
      expect(alice.errors).toEqual([]);
    }, 60_000);
  });
}
