import { describe, expect, it } from 'vitest';
import { eq, inArray } from '../../src/index.js';
import { filterToJson } from '../../src/sync/protocol/filter-to-json.js';
import type { ChangeJson, ChangesMessage } from '../../src/sync/protocol/messages.js';
import { SYNC_CLOSE_CODES, type SyncRules } from '../../src/sync/server/index.js';
import { appSchema, lists, todos } from '../support/fixtures.js';
import { helloMessage, RawClient, serverDrivers, startTestServer } from '../support/sync-server.js';

/**
 * Shapes and read rules (docs/sync-internals.md, "Server flow" step 5): a client sees exactly the
 * rows its shapes AND the read rules admit, in its snapshot and in its change stream, where a row
 * that enters its view arrives as an insert of the whole row, a row that leaves it as a delete,
 * and a row that stays as an update of the changed columns only.
 */

const L1 = '00000000-0000-4000-8000-0000000000a1';
const L2 = '00000000-0000-4000-8000-0000000000b2';
const A = '00000000-0000-4000-8000-00000000000a';
const A2 = '00000000-0000-4000-8000-0000000000a2';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';
const X = '00000000-0000-4000-8000-00000000000e';
const Y = '00000000-0000-4000-8000-00000000000f';

/** Lists by owner; todos of the lists the user owns (a subquery, so it runs in SQL). */
function ownerRules(): SyncRules<typeof appSchema> {
  return {
    lists: {
      read: (user) => eq(lists.ownerId, user.userId),
      write: (user, row) => row.ownerId === user.userId,
    },
    todos: {
      read: (user, db) =>
        inArray(todos.listId, db.select({ id: lists.id }).from(lists).where(eq(lists.ownerId, user.userId))),
      write: () => true,
    },
  };
}

async function caughtUp(client: RawClient, from: string): Promise<ChangeJson[]> {
  const pong = await client.ping();
  const messages = client.received.filter((m): m is ChangesMessage => m.type === 'changes');
  const start = messages.findIndex((m) => m.from === from);
  const tail = start < 0 ? [] : messages.slice(start);
  expect(tail.at(-1)?.to ?? from).toBe(pong.position);
  return tail.flatMap((m) => m.changes);
}

const brief = (changes: ChangeJson[]) =>
  changes.map(
    (c) =>
      `${c.op} ${c.table} ${String(c.pk.id).slice(-2)}${c.values ? ` ${Object.keys(c.values).sort().join(',')}` : ''}`,
  );

for (const driver of serverDrivers) {
  describe(`sync server shapes and read rules [${driver}]`, () => {
    it('sends in, out and moving rows as inserts, deletes and updates of the changed columns', async () => {
      const t = await startTestServer(appSchema, { driver, rules: ownerRules() });
      const db = t.server.db;
      await db.insert(lists).values([
        { id: L1, name: 'mine', ownerId: 'u1' },
        { id: L2, name: 'theirs', ownerId: 'u2' },
      ]);
      await db.insert(todos).values([
        { id: X, listId: L1, title: 'x' },
        { id: Y, listId: L2, title: 'y' },
      ]);
      await t.settled();

      const client = await RawClient.connect(t.url);
      const { rows, position } = await client.sync(
        helloMessage(appSchema, {
          token: await t.token('u1'),
          shapes: [
            { id: 'open', table: 'todos', where: filterToJson(eq(todos.done, false), todos) },
            { id: 'lists', table: 'lists' },
          ],
        }),
      );
      expect(rows.get('open')!.map((r) => r.id)).toEqual([X]);
      expect(rows.get('lists')!.map((r) => r.id)).toEqual([L1]);

      await db.insert(todos).values({ id: A, listId: L1, title: 'a' }); // in
      await db.insert(todos).values({ id: B, listId: L2, title: 'b' }); // not my list
      await db.insert(todos).values({ id: C, listId: L1, title: 'c', done: true }); // not open
      await db.update(todos).set({ title: 'a!' }).where(eq(todos.id, A)); // stays in
      await db.update(todos).set({ done: true }).where(eq(todos.id, A)); // leaves the shape
      await db.update(todos).set({ done: false }).where(eq(todos.id, C)); // enters the shape
      await db.update(todos).set({ listId: L1 }).where(eq(todos.id, B)); // moves into my list
      await db.update(todos).set({ listId: L2 }).where(eq(todos.id, C)); // moves out of it
      await db.update(todos).set({ done: false }).where(eq(todos.id, A)); // back in
      await db.update(todos).set({ id: A2 }).where(eq(todos.id, A)); // new key
      await db.delete(todos).where(eq(todos.id, B)); // in: a delete
      await db.delete(todos).where(eq(todos.id, C)); // out: nothing
      const changes = await caughtUp(client, position!);
      const all = 'done,id,list_id,note,position,tags,title,updated_at';
      expect(brief(changes)).toEqual([
        `insert todos 0a ${all}`,
        'update todos 0a title',
        'delete todos 0a',
        `insert todos 0c ${all}`,
        `insert todos 0b ${all}`,
        'delete todos 0c',
        `insert todos 0a ${all}`,
        'delete todos 0a',
        `insert todos a2 ${all}`,
        'delete todos 0b',
      ]);
      expect(changes[1]!.values).toEqual({ title: 'a!' });
      expect(changes[4]!.values).toMatchObject({ id: B, list_id: L1, title: 'b', done: false });

      // Subqueries in read rules are evaluated when the change is read, not when it was made:
      // changing the lists they look at (done apart from the todos above) moves the lists only.
      const before = changes.length;
      await db.update(lists).set({ ownerId: 'u1' }).where(eq(lists.id, L2)); // a list becomes mine
      await db.update(lists).set({ name: 'renamed' }).where(eq(lists.id, L2));
      await db.update(lists).set({ ownerId: 'u2' }).where(eq(lists.id, L1)); // and mine goes
      expect(brief((await caughtUp(client, position!)).slice(before))).toEqual([
        'insert lists b2 id,name,owner_id',
        'update lists b2 name',
        'delete lists a1',
      ]);
    });

    it('gives a row to every client whose shapes hold it, and to no other', async () => {
      const t = await startTestServer(appSchema, { driver, rules: ownerRules() });
      await t.server.db.insert(lists).values([
        { id: L1, name: 'one', ownerId: 'u1' },
        { id: L2, name: 'two', ownerId: 'u2' },
      ]);
      const clients = [];
      for (const user of ['u1', 'u2']) {
        const client = await RawClient.connect(t.url);
        const { position } = await client.sync(
          helloMessage(appSchema, { token: await t.token(user), shapes: [{ id: 't', table: 'todos' }] }),
        );
        clients.push({ client, position: position! });
      }
      await t.server.db.insert(todos).values([
        { id: A, listId: L1, title: 'for u1' },
        { id: B, listId: L2, title: 'for u2' },
      ]);
      expect(
        brief(await caughtUp(clients[0]!.client, clients[0]!.position)).map((s) => s.slice(0, 15)),
      ).toEqual(['insert todos 0a']);
      expect(
        brief(await caughtUp(clients[1]!.client, clients[1]!.position)).map((s) => s.slice(0, 15)),
      ).toEqual(['insert todos 0b']);
    });

    it('refuses a shape on a table the rules do not let the user read, naming it', async () => {
      const t = await startTestServer(appSchema, {
        driver,
        rules: { todos: { read: (user) => user.userId !== 'guest' } },
      });
      for (const [user, table] of [
        ['u1', 'lists'],
        ['guest', 'todos'],
      ] as const) {
        const client = await RawClient.connect(t.url);
        client.send(helloMessage(appSchema, { token: await t.token(user), shapes: [{ id: 's', table }] }));
        const error = await client.next('error');
        expect(error).toMatchObject({ code: 'forbidden', fatal: true });
        expect(error.message).toBe(
          `shapes[0].table: the read rules do not let user "${user}" read table "${table}"; remove the shape, or give the table a read rule that admits this user`,
        );
        expect((await client.closed).code).toBe(SYNC_CLOSE_CODES.forbidden);
      }
    });
  });
}
