import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { and, eq, exists, inArray, like, type SQL, sql } from '../../src/index.js';
import type { SyncRules } from '../../src/sync/server/index.js';
import { lists, members, shareSchema, todos } from '../support/share-schema.js';
import { closeClients, type E2eClient, openClients, within } from '../support/sync-fixture.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * Issue 18, "Rows that move in and out", for shapes: a client's shape may filter through another
 * table (`inArray(todos.listId, db.select(...).from(members)...)`, a correlated `exists`), in
 * `syncClient({ shapes })` and in `sync.subscribe()`. When alice is added to or removed from a
 * list's members, the shape is sent again and its rows move in and out, while writes go on; at
 * every quiet point her replica is what the shape and the rules allow. The subquery sees only
 * the members rows the rules let her read, so it cannot reveal other users' memberships.
 */

/** Every list and todo for everyone; of `members`, only one's own rows. */
const rules: SyncRules<typeof shareSchema> = {
  lists: { read: () => true, write: () => true },
  members: { read: (user) => eq(members.userId, user.userId), write: () => true },
  todos: { read: () => true, write: () => true },
};

let clients: E2eClient<typeof shareSchema>[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
});

interface Lists {
  readonly shared: string;
  readonly own: string;
  /** A list only user-B is a member of. */
  readonly others: string;
}

async function seed(t: TestServer<typeof shareSchema>): Promise<Lists> {
  const ids = { shared: randomUUID(), own: randomUUID(), others: randomUUID() };
  await t.server.db.insert(lists).values(Object.entries(ids).map(([name, id]) => ({ id, name })));
  await t.server.db.insert(members).values([
    { id: randomUUID(), listId: ids.own, userId: 'user-A' },
    { id: randomUUID(), listId: ids.others, userId: 'user-B' },
  ]);
  for (const [name, id] of Object.entries(ids)) {
    await t.server.db.execute(
      sql`INSERT INTO todos (id, list_id, title) SELECT gen_random_uuid(), ${id}, ${name} || ' ' || g FROM generate_series(1, ${name === 'shared' ? 300 : 5}) g`,
    );
  }
  return ids;
}

/** The ids of alice's todos, sorted. */
const idsOf = async (alice: E2eClient<typeof shareSchema>, where?: SQL<boolean>) =>
  (await alice.db.select({ id: todos.id }).from(todos).where(where)).map((r) => r.id).sort();

/** The todos of the lists user-A is a member of, on the server, as sorted ids. */
async function allowed(t: TestServer<typeof shareSchema>): Promise<string[]> {
  const db = t.server.db;
  const hers = db.select({ id: members.listId }).from(members).where(eq(members.userId, 'user-A'));
  return (await db.select({ id: todos.id }).from(todos).where(inArray(todos.listId, hers)))
    .map((r) => r.id)
    .sort();
}

/** Caught up, and her todos are what the shape allows. */
async function quiet(t: TestServer<typeof shareSchema>, alice: E2eClient<typeof shareSchema>, what: string) {
  await within(alice.sync.caughtUp(), 10_000, what);
  await waitFor(
    async () => JSON.stringify(await idsOf(alice)) === JSON.stringify(await allowed(t)),
    5000,
    what,
  );
}

/** Grants and revokes user-A's membership of the shared list three times while todos are written. */
async function grantAndRevoke(
  t: TestServer<typeof shareSchema>,
  alice: E2eClient<typeof shareSchema>,
  ids: Lists,
): Promise<void> {
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing && i < 200; i++) {
      const listId = [ids.shared, ids.own, ids.others][i % 3]!;
      await t.server.db.insert(todos).values({ id: randomUUID(), listId, title: `w${i}` });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const sharedCount = async () => (await idsOf(alice, eq(todos.listId, ids.shared))).length;
  for (let round = 0; round < 3; round++) {
    const grant = randomUUID();
    await t.server.db.insert(members).values({ id: grant, listId: ids.shared, userId: 'user-A' });
    await waitFor(async () => (await sharedCount()) >= 300, 10_000, `round ${round}: the grant`);
    await quiet(t, alice, `round ${round}: after the grant`);
    await t.server.db.delete(members).where(eq(members.id, grant));
    await waitFor(async () => (await sharedCount()) === 0, 10_000, `round ${round}: the revoke`);
    await quiet(t, alice, `round ${round}: after the revoke`);
  }
  writing = false;
  await writer;
  await quiet(t, alice, 'at the end');
}

for (const driver of serverDrivers) {
  describe(`shapes that filter through another table [${driver}]`, () => {
    it('inArray with a subquery in syncClient({ shapes }): rows move in and out while writes go on', async () => {
      const t = await startTestServer(shareSchema, { driver, rules });
      const ids = await seed(t);
      // Any Database of the schema builds the subquery: it travels as a filter tree.
      const hers = t.server.db
        .select({ id: members.listId })
        .from(members)
        .where(eq(members.userId, 'user-A'));
      // Alice does not sync members: her device cannot run the subquery, the server does.
      clients = await openClients({ port: t.server.port, token: t.token }, 1, {
        schema: shareSchema,
        shapes: [{ table: todos, where: inArray(todos.listId, hers) }, { table: lists }],
      });
      const [alice] = clients as [E2eClient<typeof shareSchema>];
      await within(alice.sync.start(), 10_000, 'alice to start');
      await quiet(t, alice, 'the first snapshot');
      expect((await idsOf(alice)).length).toBe(5);

      await grantAndRevoke(t, alice, ids);

      // Another user's membership cannot change what her subquery returns: no refresh.
      const refreshes: string[] = [];
      alice.tap.dropIncoming = (text) => {
        if (text.startsWith('{"type":"snapshot"') && text.includes('"refresh":true')) refreshes.push(text);
        return false;
      };
      await t.server.db.insert(members).values({ id: randomUUID(), listId: ids.shared, userId: 'user-B' });
      await within(alice.sync.caughtUp(), 10_000, "the other user's membership");
      expect(refreshes).toHaveLength(0);
      expect(alice.errors).toEqual([]);
    }, 60_000);

    it('a correlated exists through sync.subscribe() sees only the members rows the rules let her read', async () => {
      const t = await startTestServer(shareSchema, { driver, rules });
      const ids = await seed(t);
      clients = await openClients({ port: t.server.port, token: t.token }, 1, {
        schema: shareSchema,
        shapes: [{ table: lists }, { table: members }],
      });
      const [alice] = clients as [E2eClient<typeof shareSchema>];
      await within(alice.sync.start(), 10_000, 'alice to start');
      await within(alice.sync.caughtUp(), 10_000, 'the first snapshot');
      // No user in the condition: the members read rule, folded into the subquery, limits it to
      // her own memberships, so user-B's list stays out.
      const db = alice.db;
      const sub = alice.sync.subscribe({
        table: todos,
        where: exists(db.select().from(members).where(eq(members.listId, todos.listId))),
      });
      await within(sub.caughtUp(), 10_000, 'the subscription');
      await quiet(t, alice, 'after subscribing');
      expect(await idsOf(alice, eq(todos.listId, ids.others))).toEqual([]);

      await grantAndRevoke(t, alice, ids);
      expect(await idsOf(alice, eq(todos.listId, ids.others))).toEqual([]);
      expect(alice.errors).toEqual([]);
    }, 60_000);

    it('dropping another shape never deletes rows a subquery shape may hold', async () => {
      const t = await startTestServer(shareSchema, { driver, rules });
      const ids = await seed(t);
      await t.server.db.insert(todos).values([
        { id: randomUUID(), listId: ids.own, title: 'x own' },
        { id: randomUUID(), listId: ids.shared, title: 'x shared' },
      ]);
      const mine = exists(
        t.server.db
          .select()
          .from(members)
          .where(and(eq(members.listId, todos.listId), eq(members.userId, 'user-A'))),
      );
      clients = await openClients({ port: t.server.port, token: t.token }, 1, {
        schema: shareSchema,
        shapes: [{ table: todos, where: mine }],
      });
      const [alice] = clients as [E2eClient<typeof shareSchema>];
      await within(alice.sync.start(), 10_000, 'alice to start');
      await quiet(t, alice, 'the first snapshot');
      const xs = alice.sync.subscribe({ table: todos, where: like(todos.title, 'x%') });
      await within(xs.caughtUp(), 10_000, 'the x shape');
      expect((await idsOf(alice)).length).toBe(7);

      // 'x own' is in both shapes: it stays though alice cannot tell locally that her shape
      // holds it (she has no members rows).
      let unsubscribed = false;
      alice.tap.dropIncoming = (text) => {
        if (text.startsWith('{"type":"unsubscribed"')) unsubscribed = true;
        return false;
      };
      xs.unsubscribe();
      await waitFor(() => unsubscribed, 5000, 'the server to drop the x shape');
      await within(alice.sync.caughtUp(), 10_000, 'after the unsubscribe');
      expect((await idsOf(alice, eq(todos.listId, ids.own))).length).toBe(6);
      // 'x shared' may stay until her shape is next sent again; then only what it holds is left.
      await t.server.db.insert(members).values({ id: randomUUID(), listId: ids.own, userId: 'user-A' });
      await quiet(t, alice, 'after her shape was sent again');
      expect(alice.errors).toEqual([]);
    }, 60_000);
  });
}
