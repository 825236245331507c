import { afterEach, describe, expect, it } from 'vitest';
import { type Database, eq } from '../../src/index.js';
import type { LocalReplica } from '../../src/sync/client/local-replica.js';
import { encodeHlc, HybridLogicalClock } from '../../src/sync/protocol/hlc.js';
import {
  type ChangeJson,
  DEFAULT_MESSAGE_LIMITS,
  type PushMessage,
} from '../../src/sync/protocol/messages.js';
import { applyPush } from '../../src/sync/server/apply-push.js';
import { RuleSet } from '../../src/sync/server/rules.js';
import { appSchema } from '../support/fixtures.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';
import { testPusher } from '../support/test-pusher.js';
import { changesMessage, lists, openReplica, todos } from './client-helpers.js';

/**
 * A pushed delete of a row the server does not have stores nothing (docs/sync-internals.md, the
 * conflict table), so another client's insert of that key stamped older than the delete, arriving
 * after it, is kept. The pushing client, until the ack, drops that insert's change as beaten by its
 * pending delete: so the ack carries the server's row, or that client never gets it. Found by the
 * e2e property test under load (FC_SEED=74631791): client A, not holding list 1, created it with a
 * todo and deleted it in one transaction (the todo went by the local cascade), which it pushes as
 * deletes; B's insert of list 1, written a moment before, landed on the server just after A's
 * batch and reached A before A's ack; A ended without list 1 and its todo, which the server has.
 */

const listId = '00000000-0000-4000-8000-000000000001';
const todoId = '00000000-0000-4000-8000-000000000003';
let db: Database | undefined;
afterEach(async () => {
  await db?.close();
  db = undefined;
});

/** B's insert of the list and a todo in it, stamped a second before now (written just before A's). */
function olderInserts(): ChangeJson[] {
  const hlc = encodeHlc({ wallMs: Date.now() - 1000, counter: 0, nodeId: 'client-b' });
  return [
    {
      table: 'lists',
      op: 'insert',
      pk: { id: listId },
      hlc,
      values: { id: listId, name: 'B', owner_id: 'b' },
    },
    {
      table: 'todos',
      op: 'insert',
      pk: { id: todoId },
      hlc,
      values: {
        id: todoId,
        list_id: listId,
        title: 'B',
        done: false,
        updated_at: 1704067200000,
        tags: [],
        note: null,
        position: null,
      },
    },
  ];
}

for (const driver of serverDrivers) {
  describe(`a pushed delete of a row the server does not have [${driver}]`, () => {
    it('is answered with the row as the server has it at the ack, so an older insert that landed after it reaches the pusher', async () => {
      const t = await startTestServer(appSchema, { driver });
      let replica: LocalReplica;
      ({ db, replica } = await openReplica());
      await db.transaction(async (tx) => {
        await tx.insert(lists).values({ id: listId, name: 'A', ownerId: 'a' });
        await tx.insert(todos).values({ id: todoId, listId, title: 'A' });
        await tx.delete(lists).where(eq(lists.id, listId));
      });
      expect(await db.select().from(todos)).toEqual([]);
      await replica.stamp();
      const push = JSON.parse((await replica.readPush(DEFAULT_MESSAGE_LIMITS))!.json) as PushMessage;
      expect(push.batches[0]!.changes.map((c) => [c.table, c.op])).toEqual([
        ['lists', 'delete'],
        ['todos', 'delete'],
      ]);

      // B's inserts land after A's batch and before A's ack, and reach A first: where the server
      // reads the rows an ack carries (after streaming everything committed so far), or, on a
      // server whose ack carries none, right after A's batches are settled.
      const pushB = testPusher(t, appSchema, undefined, 'b');
      const inserts = olderInserts();
      let landed = false;
      const landB = async () => {
        if (landed) return;
        landed = true;
        expect((await pushB(...inserts)).status).toBe('applied');
        await replica.applyChanges(changesMessage('0', '2', inserts), true);
        // A's pending deletes are newer: A leaves both rows out.
        expect(await db!.select().from(lists)).toEqual([]);
      };
      const results = await applyPush(
        {
          db: t.server.db,
          schema: appSchema,
          clientId: replica.clientId,
          user: { userId: 'a' },
          rules: new RuleSet(appSchema, undefined),
          clock: new HybridLogicalClock('server'),
          beforeAck: landB,
        },
        push.batches,
      );
      await landB();
      await replica.applyAck({ type: 'ack', v: 1, results });

      const server = {
        lists: await t.server.db.select().from(lists),
        todos: await t.server.db.select().from(todos),
      };
      expect(server.lists.map((r) => r.name)).toEqual(['B']);
      expect({ lists: await db.select().from(lists), todos: await db.select().from(todos) }).toEqual(server);
    });
  });
}
