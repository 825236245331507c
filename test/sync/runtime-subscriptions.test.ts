import { afterEach, describe, expect, it } from 'vitest';
import { eq, sql } from '../../src/index.js';
import { shapeToJson } from '../../src/sync/protocol/messages.js';
import { lists, todos } from '../support/fixtures.js';
import {
  closeClients,
  type E2eClient,
  e2eSchema,
  fixedKeys,
  openClients,
  within,
} from '../support/sync-fixture.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';
import { openReplica } from './client-helpers.js';

/**
 * Issue 18, "Subscriptions at runtime": `sync.subscribe(shape)` adds a shape on the connection the
 * client has (a message, not a reconnect); the server snapshots that shape alone while the others
 * keep streaming; `unsubscribe()` removes the rows no remaining shape holds (never one with a
 * pending local write); the same shape twice is one subscription; `ttl` keeps it a while; the
 * shapes held survive a reconnect without a new snapshot.
 */

let clients: E2eClient[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
});

const [L1, L2, T1, T2, T3, T4] = fixedKeys(6) as [string, string, string, string, string, string];

/** Records the frames a client receives and the hellos it sends. */
function record(client: E2eClient): { received: string[]; hellos: () => number } {
  const received: string[] = [];
  let hellos = 0;
  client.tap.dropIncoming = (text) => {
    received.push(text);
    return false;
  };
  client.tap.onSend = (text) => {
    if (text.startsWith('{"type":"hello"')) hellos++;
  };
  return { received, hellos: () => hellos };
}

async function seed(t: TestServer<typeof e2eSchema>): Promise<void> {
  await t.server.db.execute(
    sql`INSERT INTO lists (id, name, owner_id) VALUES (${L1}, 'one', 'u'), (${L2}, 'two', 'u')`,
  );
  await t.server.db.execute(
    sql`INSERT INTO todos (id, list_id, title) VALUES (${T1}, ${L1}, 'a'), (${T2}, ${L1}, 'b'), (${T3}, ${L2}, 'c')`,
  );
}

const titles = async (c: E2eClient) =>
  (await c.db.select({ title: todos.title }).from(todos).orderBy(todos.title)).map((r) => r.title);

for (const driver of serverDrivers) {
  describe(`runtime subscriptions [${driver}]`, () => {
    it('adds a shape on the open connection, snapshotting only it, and removes it again', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      await seed(t);
      clients = await openClients({ port: t.server.port, token: t.token }, 1, { shapes: [{ table: lists }] });
      const [a] = clients as [E2eClient];
      const seen = record(a);
      await within(a.sync.start(), 10_000, 'the client to start');
      await within(a.sync.caughtUp(), 10_000, 'the lists');
      expect(await titles(a)).toEqual([]);
      const before = seen.received.length;

      const sub = a.sync.subscribe({ table: todos, where: eq(todos.listId, L1) });
      await within(sub.caughtUp(), 10_000, 'the subscription');
      expect(await titles(a)).toEqual(['a', 'b']);
      // One snapshot, of the new shape alone, on the same connection.
      const snapshots = seen.received.slice(before).filter((m) => m.startsWith('{"type":"snapshot"'));
      expect(snapshots.map((m) => JSON.parse(m).shapeId)).toEqual([sub.id]);
      expect(seen.hellos()).toBe(1);

      // Both shapes stream: a new todo of L1 and a new list arrive; L2's todo does not.
      await t.server.db.execute(
        sql`INSERT INTO todos (id, list_id, title) VALUES (${T4}, ${L1}, 'd'), (gen_random_uuid(), ${L2}, 'z')`,
      );
      await t.server.db.execute(
        sql`INSERT INTO lists (id, name, owner_id) VALUES (gen_random_uuid(), 'three', 'u')`,
      );
      await waitFor(async () => (await titles(a)).includes('d'), 5000, 'the new todo');
      await waitFor(
        async () => (await a.db.select().from(lists)).length === 3,
        5000,
        'the new list through the first shape',
      );
      expect(await titles(a)).toEqual(['a', 'b', 'd']);

      sub.unsubscribe();
      sub.unsubscribe(); // a second call does nothing
      await waitFor(async () => (await titles(a)).length === 0, 5000, "the shape's rows to leave");
      expect((await a.db.select().from(lists)).length).toBe(3);
      // Gone from the server's side too: a later todo of L1 does not arrive.
      await t.server.db.execute(sql`INSERT INTO todos (list_id, title) VALUES (${L1}, 'late')`);
      await t.server.db.execute(
        sql`INSERT INTO lists (id, name, owner_id) VALUES (gen_random_uuid(), 'four', 'u')`,
      );
      await waitFor(async () => (await a.db.select().from(lists)).length === 4, 5000, 'the fourth list');
      expect(await titles(a)).toEqual([]);
      expect(seen.hellos()).toBe(1);
      expect(a.errors).toEqual([]);
    }, 30_000);

    it('counts the same shape twice as one, keeps it for its ttl, and resumes it after a reconnect', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      await seed(t);
      clients = await openClients({ port: t.server.port, token: t.token }, 1, { shapes: [{ table: lists }] });
      const [a] = clients as [E2eClient];
      const seen = record(a);
      // Before start(): sent once connected.
      const one = a.sync.subscribe({ table: todos, where: eq(todos.listId, L2) });
      const two = a.sync.subscribe({ table: todos, where: eq(todos.listId, L2) }, { ttl: 400 });
      expect(two.id).toBe(one.id);
      await within(a.sync.start(), 10_000, 'the client to start');
      await within(two.caughtUp(), 10_000, 'the subscription');
      expect(await titles(a)).toEqual(['c']);

      one.unsubscribe();
      await within(a.sync.caughtUp(), 5000, 'a round trip');
      expect(await titles(a)).toEqual(['c']); // still subscribed once

      // Held across a reconnect: the hello names it, no snapshot comes again.
      await a.sync.stop();
      const before = seen.received.length;
      await within(a.sync.start(), 10_000, 'the restart');
      await within(a.sync.caughtUp(), 10_000, 'the catch-up');
      expect(seen.received.slice(before).some((m) => m.startsWith('{"type":"snapshot"'))).toBe(false);
      await t.server.db.execute(sql`UPDATE todos SET title = 'c2' WHERE id = ${T3}`);
      await waitFor(async () => (await titles(a)).includes('c2'), 5000, 'the update after the reconnect');

      // The last release waits for the ttl: back within it, nothing is snapshotted again.
      two.unsubscribe();
      const three = a.sync.subscribe({ table: todos, where: eq(todos.listId, L2) });
      await within(three.caughtUp(), 5000, 'the shape kept by its ttl');
      three.unsubscribe();
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(await titles(a)).toEqual(['c2']);
      await waitFor(async () => (await titles(a)).length === 0, 5000, 'the rows to leave after the ttl');
      expect(a.errors).toEqual([]);
    }, 30_000);

    it('takes a subscription made after stop() on the next start, and releases once however often unsubscribe() is called', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      await seed(t);
      clients = await openClients({ port: t.server.port, token: t.token }, 1, { shapes: [{ table: lists }] });
      const [a] = clients as [E2eClient];
      await within(a.sync.start(), 10_000, 'the client to start');
      await a.sync.stop();
      const late = a.sync.subscribe({ table: todos, where: eq(todos.listId, L2) });
      const other = a.sync.subscribe({ table: todos, where: eq(todos.listId, L2) });
      await within(a.sync.start(), 10_000, 'the restart');
      await within(late.caughtUp(), 10_000, 'the subscription made while stopped');
      expect(await titles(a)).toEqual(['c']);
      late.unsubscribe();
      late.unsubscribe(); // a no-op: `other` still holds the shape
      await within(a.sync.caughtUp(), 5000, 'a round trip');
      expect(await titles(a)).toEqual(['c']);
      other.unsubscribe();
      await waitFor(async () => (await titles(a)).length === 0, 5000, 'the rows to leave');
      expect(a.errors).toEqual([]);
    }, 30_000);

    it('refuses a shape the rules forbid without stopping the others', async () => {
      const t = await startTestServer(e2eSchema, {
        driver,
        rules: { lists: { read: () => true, write: () => true } },
      });
      await seed(t);
      clients = await openClients({ port: t.server.port, token: t.token }, 1, { shapes: [{ table: lists }] });
      const [a] = clients as [E2eClient];
      await within(a.sync.start(), 10_000, 'the client to start');
      const sub = a.sync.subscribe({ table: todos });
      await expect(within(sub.caughtUp(), 5000, 'the refusal')).rejects.toThrow(/read rules do not let user/);
      expect(a.errors.map((e) => e.message)).toEqual([expect.stringMatching(/read rules do not let user/)]);
      await t.server.db.execute(
        sql`INSERT INTO lists (id, name, owner_id) VALUES (gen_random_uuid(), 'new', 'u')`,
      );
      await waitFor(async () => (await a.db.select().from(lists)).length === 3, 5000, 'the lists to go on');
      expect(() => a.sync.subscribe({ table: todos, id: 'lists' })).toThrow(/already used by another shape/);
      expect(() => a.sync.subscribe({ table: todos }, { ttl: -1 })).toThrow(/ttl must be/);
    }, 30_000);
  });
}

describe('dropping a shape on the client', () => {
  it('deletes the rows no remaining shape holds, except rows with pending local writes', async () => {
    const { db, replica } = await openReplica();
    await db.insert(lists).values([
      { id: L1, name: 'one', ownerId: 'u' },
      { id: L2, name: 'two', ownerId: 'u' },
    ]);
    await db.insert(todos).values([
      { id: T1, listId: L1, title: 'a' },
      { id: T2, listId: L1, title: 'b' },
      { id: T3, listId: L2, title: 'c' },
    ]);
    // Written as the server's (nothing pending), except T2, edited locally since.
    await db.execute(sql`DELETE FROM _syncline_outbox`);
    await db.update(todos).set({ title: 'b (mine)' }).where(eq(todos.id, T2));
    const l1 = shapeToJson('l1', todos, eq(todos.listId, L1));
    const l2 = shapeToJson('l2', todos, eq(todos.listId, L2));
    const tables = await replica.dropShape(l1, [l2, shapeToJson('lists', lists)]);
    expect([...tables]).toEqual(['todos']);
    expect((await db.select({ id: todos.id }).from(todos).orderBy(todos.title)).map((r) => r.id)).toEqual([
      T2,
      T3,
    ]);
    // A whole-table shape left holds every row.
    await replica.dropShape(l2, [shapeToJson('todos', todos)]);
    expect((await db.select().from(todos)).length).toBe(2);
    expect(replica.heldShapes).toEqual([shapeToJson('todos', todos)]);
    await db.close();
  });
});
