import { afterEach, describe, expect, it } from 'vitest';
import { asc, eq, sql } from '../../src/index.js';
import { lists, todos } from '../support/fixtures.js';
import {
  type ClientDriverKind,
  closeClients,
  directWriter,
  driverPairs,
  type E2eClient,
  e2eSchema,
  expectConverged,
  fixedKeys,
  items,
  nextMillisecond,
  openClients,
  pushedChanges,
  settle,
  within,
} from '../support/sync-fixture.js';
import { startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * Two sync clients and a backend (writing through `server.db`, and through a connection of its
 * own straight to the tables) edit the same rows and columns, both while the clients are offline
 * and while everyone is online at once. Every replica ends equal to the server, and the server
 * holds the last-writer-wins outcome: per column the newest stamp, a delete over every update,
 * and an insert newer than the tombstone re-creates the row. Live queries see what arrives.
 */

const listId = '0f8fad5b-d9cb-469f-a165-70867728950e';
const [T1, T2, T3, T4, T5, T6, T7, ...victims] = fixedKeys(12);
/** The row of the `items` tests. */
const K = '11111111-1111-4111-8111-111111111111';

let clients: E2eClient[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
});

async function setup(driver: 'pglite' | 'postgres', clientDriver: ClientDriverKind) {
  const t = await startTestServer(e2eSchema, { driver });
  const direct = await directWriter(t);
  await t.server.db.insert(lists).values({ id: listId, name: 'Groceries', ownerId: 'u1' });
  await t.server.db
    .insert(todos)
    .values([T1, T2, T3, T4, T5, ...victims].map((id, i) => ({ id, listId, title: `seed ${i}` })));
  clients = await openClients({ port: t.server.port, token: t.token }, 2, { clientDriver });
  await Promise.all(clients.map((c) => c.sync.start()));
  await settle(clients);
  const [a, b] = clients;
  return { t, direct, a, b };
}

/** B's todos, in id order, after every re-emission of a live query on them. */
function watchTodos(client: E2eClient) {
  const seen: Record<string, unknown>[][] = [];
  const stop = client.db
    .select()
    .from(todos)
    .orderBy(asc(todos.id))
    .watch()
    .subscribe((rows) => seen.push(rows));
  return { seen, stop };
}

for (const [driver, clientDriver] of driverPairs) {
  describe(`e2e convergence [${driver}, ${clientDriver} clients]`, () => {
    it('edits made while both clients are offline merge per column, newest stamp first', async () => {
      const { t, direct, a, b } = await setup(driver, clientDriver);
      const live = watchTodos(b);
      await waitFor(() => live.seen.length > 0, 5000, 'the first result of the live query on B');

      a.proxy.setRefusing(true);
      b.proxy.setRefusing(true);
      await waitFor(
        () => a.sync.status === 'connecting' && b.sync.status === 'connecting',
        5000,
        'both clients to notice they are offline',
      );
      // Each step is stamped after the one before (the clock moves on in between), so the order
      // below is the stamp order the last-writer-wins rule settles on.
      const steps: (() => PromiseLike<unknown>)[] = [
        // T1: every column written by several writers. (A client's update only carries the columns
        // it changed locally, so each client write below changes its replica's value.)
        () =>
          a.db.update(todos).set({ title: 'A title', note: 'A note', position: 1 }).where(eq(todos.id, T1)),
        () =>
          t.server.db
            .update(todos)
            .set({ title: 'server title', tags: ['server'] })
            .where(eq(todos.id, T1)),
        () => b.db.update(todos).set({ title: 'B title', position: 2, done: true }).where(eq(todos.id, T1)),
        () => direct.query('UPDATE todos SET note = $1 WHERE id = $2', ['direct note', T1]),
        () =>
          a.db
            .update(todos)
            .set({ tags: ['from A'] })
            .where(eq(todos.id, T1)),
        () => t.server.db.update(todos).set({ position: 7 }).where(eq(todos.id, T1)),
        // T2: a delete beats a newer update.
        () => b.db.delete(todos).where(eq(todos.id, T2)),
        () => a.db.update(todos).set({ title: 'A edits a deleted row' }).where(eq(todos.id, T2)),
        // T3: a direct delete beats both clients' later updates.
        () => direct.query('DELETE FROM todos WHERE id = $1', [T3]),
        () => a.db.update(todos).set({ title: 'A after the direct delete' }).where(eq(todos.id, T3)),
        () => b.db.update(todos).set({ done: true }).where(eq(todos.id, T3)),
        // T4: deleted by both, then re-created by an insert newer than both tombstones.
        () => a.db.delete(todos).where(eq(todos.id, T4)),
        () => b.db.delete(todos).where(eq(todos.id, T4)),
        () => a.db.insert(todos).values({ id: T4, listId, title: 'reborn' }),
        // T5: re-created by B, then deleted by A's newer delete.
        () => b.db.delete(todos).where(eq(todos.id, T5)),
        () => b.db.insert(todos).values({ id: T5, listId, title: 'B re-creates' }),
        () => a.db.delete(todos).where(eq(todos.id, T5)),
        // New rows from a client and from the backend.
        () => a.db.insert(todos).values({ id: T6, listId, title: 'new from A' }),
        () => t.server.db.insert(todos).values({ id: T7, listId, title: 'new from the server' }),
      ];
      for (const step of steps) {
        await step();
        await nextMillisecond();
      }

      a.proxy.setRefusing(false);
      b.proxy.setRefusing(false);
      await settle([a, b]);
      const server = await expectConverged(t.server.db, [a, b]);
      const byId = new Map(server.todos.map((row) => [row.id, row]));
      expect([...byId.keys()]).toEqual([T1, T4, T6, T7, ...victims].sort());
      expect(byId.get(T1)).toMatchObject({
        title: 'B title',
        note: 'direct note',
        done: true,
        position: 7,
        tags: ['from A'],
      });
      expect(byId.get(T4)).toMatchObject({ title: 'reborn', done: false, note: null });
      expect(byId.get(T6)).toMatchObject({ title: 'new from A' });
      expect(a.rejected).toEqual([]);
      expect(b.rejected).toEqual([]);
      // B's live query re-emitted with what arrived from A and the backend.
      await waitFor(
        () => JSON.stringify(live.seen.at(-1)) === JSON.stringify(server.todos),
        5000,
        "B's live query to emit the converged rows",
      );
      live.stop();
    });

    it('concurrent edits while everyone is online converge on the newest stamp, and deletes win', async () => {
      const { t, direct, a, b } = await setup(driver, clientDriver);
      const live = watchTodos(b);
      await waitFor(() => live.seen.length > 0, 5000, 'the first result of the live query on B');
      await a.db.update(todos).set({ title: 'A, live' }).where(eq(todos.id, T5));
      await waitFor(
        () => live.seen.some((rows) => rows.some((r) => r.id === T5 && r.title === 'A, live')),
        10_000,
        "B's live query to re-emit with A's update",
      );

      for (let round = 0; round < victims.length; round++) {
        const victim = victims[round];
        await Promise.all([
          a.db
            .update(todos)
            .set({ title: `A ${round}` })
            .where(eq(todos.id, T1)),
          b.db
            .update(todos)
            .set({ title: `B ${round}` })
            .where(eq(todos.id, T1)),
          t.server.db
            .update(todos)
            .set({ title: `server ${round}` })
            .where(eq(todos.id, T1)),
          direct.query('UPDATE todos SET title = $1 WHERE id = $2', [`direct ${round}`, T1]),
          a.db.delete(todos).where(eq(todos.id, victim)),
          b.db
            .update(todos)
            .set({ title: `B keeps ${round}`, done: true })
            .where(eq(todos.id, victim)),
          direct.query('UPDATE todos SET note = $1 WHERE id = $2', [`direct ${round}`, victim]),
        ]);
      }
      await settle([a, b]);
      const server = await expectConverged(t.server.db, [a, b]);
      const ids = server.todos.map((row) => row.id);
      for (const victim of victims) expect(ids, 'a deleted row came back').not.toContain(victim);

      // The title of T1 is the one written with the newest stamp, among every writer's writes:
      // the clients' as they pushed them, the backend's as the change log stamped them.
      const written = [a, b].flatMap((c) =>
        pushedChanges(c.tap)
          .filter((ch) => ch.table === 'todos' && ch.pk.id === T1 && ch.values?.title !== undefined)
          .map((ch) => ({ hlc: ch.hlc, order: 0, title: ch.values!.title as string })),
      );
      const logged = await t.server.db.execute<{ hlc: string; order: number; title: string }>(
        sql`SELECT hlc, id::int AS "order", "row"->>'title' AS title FROM _syncline_changes
             WHERE table_name = 'todos' AND origin IS NULL AND op = 'U' AND pk->>'id' = ${T1} AND old_values ? 'title'`,
      );
      expect(written).toHaveLength(2 * victims.length);
      expect(logged).toHaveLength(2 * victims.length);
      // Two direct writes in one millisecond share a stamp (PostgreSQL's clock, node "postgres"):
      // between those, the one that committed last stands.
      const newest = [...written, ...logged].sort((x, y) =>
        x.hlc !== y.hlc ? (x.hlc < y.hlc ? 1 : -1) : y.order - x.order,
      )[0];
      expect(server.todos.find((row) => row.id === T1)?.title).toBe(newest.title);
      expect(a.rejected).toEqual([]);
      expect(b.rejected).toEqual([]);
      await waitFor(
        () => JSON.stringify(live.seen.at(-1)) === JSON.stringify(server.todos),
        5000,
        "B's live query to emit the converged rows",
      );
      live.stop();
    });

    it('a write that lost to a newer insert of an equal value is undone where it was made', async () => {
      const { t, a, b } = await setup(driver, clientDriver);
      b.proxy.setRefusing(true);
      await waitFor(() => b.sync.status === 'connecting', 5000, 'B to notice it is offline');
      await a.db.insert(items).values({ id: K, title: 'from A', qty: 0 });
      await within(a.sync.flush(), 10_000, 'A to push its insert');
      a.proxy.setRefusing(true);
      await waitFor(() => a.sync.status === 'connecting', 5000, 'A to notice it is offline');
      await a.db.update(items).set({ qty: 1 }).where(eq(items.id, K));
      await nextMillisecond();
      // B never saw the row: its insert is newer than A's update, and writes every column.
      await b.db.insert(items).values({ id: K, title: 'from B', qty: 0 });
      b.proxy.setRefusing(false);
      await within(b.sync.flush(), 10_000, 'B to push its insert');
      a.proxy.setRefusing(false);
      await settle([a, b]);
      // The server keeps qty 0 (B's stamp), but only logged the title, the column whose value
      // changed: A never learns that its qty lost, and keeps 1.
      expect((await t.server.db.select().from(items))[0]).toMatchObject({ title: 'from B', qty: 0 });
      await expectConverged(t.server.db, [a, b]);
    });

    it('a write that lost is undone where it was made even when the first ack was lost', async () => {
      const { t, a, b } = await setup(driver, clientDriver);
      b.proxy.setRefusing(true);
      await waitFor(() => b.sync.status === 'connecting', 5000, 'B to notice it is offline');
      await a.db.insert(items).values({ id: K, title: 'from A', qty: 0 });
      await within(a.sync.flush(), 10_000, 'A to push its insert');
      a.proxy.setRefusing(true);
      await waitFor(() => a.sync.status === 'connecting', 5000, 'A to notice it is offline');
      await a.db.update(items).set({ qty: 1 }).where(eq(items.id, K));
      await nextMillisecond();
      await b.db.insert(items).values({ id: K, title: 'from B', qty: 0 });
      b.proxy.setRefusing(false);
      await within(b.sync.flush(), 10_000, 'B to push its insert');
      // A's update loses on the server; the ack that would tell A so is lost with the connection.
      a.tap.dropIncoming = (text) => text.startsWith('{"type":"ack"');
      a.proxy.setRefusing(false);
      const last = Math.max(...pushedChanges(a.tap).map((c) => c.mutationId));
      await waitFor(
        async () =>
          (
            await t.server.db.execute<{ n: string }>(
              sql`SELECT last_mutation_id::text AS n FROM _syncline_clients WHERE client_id = ${a.sync.clientId!}`,
            )
          )[0]?.n === String(last + 1),
        10_000,
        "the server to apply A's update",
      );
      a.proxy.cutAll();
      a.tap.dropIncoming = undefined;
      await settle([a, b]);
      expect((await t.server.db.select().from(items))[0]).toMatchObject({ title: 'from B', qty: 0 });
      await expectConverged(t.server.db, [a, b]);
    });

    it('an offline update of a row another client deletes and re-creates ends the same whichever arrives first', async () => {
      const { t, a, b } = await setup(driver, clientDriver);
      const outcomes: Record<string, unknown>[] = [];
      for (const [row, first] of [
        [victims[0]!, a],
        [victims[1]!, b],
      ] as const) {
        for (const c of [a, b]) c.proxy.setRefusing(true);
        await waitFor(
          () => a.sync.status === 'connecting' && b.sync.status === 'connecting',
          5000,
          'both clients to notice they are offline',
        );
        // In stamp order: B deletes the row and inserts it again; A, which still holds the old
        // row, then marks it done. A's update is newer than B's insert, so it wins for `done`.
        await b.db.delete(todos).where(eq(todos.id, row));
        await nextMillisecond();
        await b.db.insert(todos).values({ id: row, listId, title: 'B again' });
        await nextMillisecond();
        await a.db.update(todos).set({ done: true }).where(eq(todos.id, row));
        // The server gets A's update before B's delete and insert, or after them.
        const second = first === a ? b : a;
        first.proxy.setRefusing(false);
        await within(first.sync.flush(), 10_000, `client ${first.name} to push`);
        second.proxy.setRefusing(false);
        await settle([a, b]);
        await expectConverged(t.server.db, [a, b]);
        outcomes.push((await t.server.db.select().from(todos).where(eq(todos.id, row)))[0]!);
      }
      expect(outcomes.map(({ title, done }) => ({ title, done }))).toEqual([
        { title: 'B again', done: true },
        { title: 'B again', done: true },
      ]);
      expect([...a.rejected, ...b.rejected]).toEqual([]);
    });

    it('a delete that lost to a newer insert of the row is undone where it was made', async () => {
      const { t, a, b } = await setup(driver, clientDriver);
      b.proxy.setRefusing(true);
      await waitFor(() => b.sync.status === 'connecting', 5000, 'B to notice it is offline');
      await t.server.db.insert(items).values({ id: K, title: 'from the server' });
      await within(a.sync.caughtUp(), 10_000, 'A to receive the row');
      a.proxy.setRefusing(true);
      await waitFor(() => a.sync.status === 'connecting', 5000, 'A to notice it is offline');
      await a.db.delete(items).where(eq(items.id, K));
      await nextMillisecond();
      // B never saw the row: its insert is newer than A's delete, so the row lives on.
      await b.db.insert(items).values({ id: K, title: 'from B' });
      b.proxy.setRefusing(false);
      await within(b.sync.flush(), 10_000, 'B to push its insert');
      a.proxy.setRefusing(false);
      await settle([a, b]);
      // The server applied B's insert to the existing row and logged an update; A applies that
      // update to the row it deleted (nothing), its delete then loses on the server, and A
      // never gets the row back.
      expect(await t.server.db.select({ id: items.id, title: items.title }).from(items)).toEqual([
        { id: K, title: 'from B' },
      ]);
      await expectConverged(t.server.db, [a, b]);
    });

    if (driver === 'postgres') {
      it('a direct write to a row while a push to it is being applied does not deadlock', async () => {
        // A write rule that holds the push of title 'held' after it read (and locked) the row's
        // stamps and before it writes the row: the window a concurrent direct write falls into.
        let entered!: () => void;
        const inRule = new Promise<void>((resolve) => (entered = resolve));
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const t = await startTestServer(e2eSchema, {
          driver,
          rules: {
            lists: { read: () => true },
            todos: { read: () => true },
            items: {
              read: () => true,
              write: async (_user, row) => {
                if (row.title === 'held') {
                  entered();
                  await gate;
                }
                return true;
              },
            },
          },
        });
        const direct = await directWriter(t);
        await t.server.db.insert(items).values({ id: K, title: 'from the server' });
        clients = await openClients({ port: t.server.port, token: t.token }, 1, { clientDriver });
        const [a] = clients;
        await a.sync.start();
        await settle([a]);

        await a.db.update(items).set({ title: 'held' }).where(eq(items.id, K));
        await within(inRule, 10_000, 'the push to reach the write rule');
        const directWrite = direct.query('UPDATE items SET note = $1 WHERE id = $2', ['direct', K]);
        directWrite.catch(() => {});
        await waitFor(
          async () =>
            (
              await t.server.db.execute<{ n: number }>(
                sql`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted`,
              )
            )[0].n > 0,
          10_000,
          'the direct write to wait for the push',
        );
        release();
        // The push locks the row's stamps, then the row; the direct write locks the row, then (in
        // the capture trigger) its stamps: PostgreSQL breaks the cycle by failing the direct write.
        await expect(directWrite).resolves.toEqual([]);
        await settle([a]);
        expect((await t.server.db.select().from(items))[0]).toMatchObject({ title: 'held', note: 'direct' });
        await expectConverged(t.server.db, [a]);
      });
    }
  });
}
