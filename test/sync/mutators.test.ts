import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { and, eq, openDatabase, sql } from '../../src/index.js';
import { defineMutators, type SyncClient, syncClient } from '../../src/sync/client/index.js';
import { lists, todos } from '../support/fixtures.js';
import {
  type ClientDriverKind,
  closeClients,
  driverPairs,
  type E2eClient,
  e2eSchema,
  items,
  openClients,
  rawSqlite,
  SocketTap,
  settle,
} from '../support/sync-fixture.js';
import { startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * Mutators (README "Mutators"): a client runs one at once on its SQLite and records it; the server
 * runs it again in the push's transaction, and its outcome replaces the client's. Each case runs on
 * every server driver with real clients over WebSockets.
 */

const mutators = defineMutators({
  clearCompleted: {
    args: z.object({ listId: z.string() }),
    run: async (tx, { listId }) => {
      await tx.delete(todos).where(and(eq(todos.listId, listId), eq(todos.done, true)));
    },
  },
  rename: {
    args: z.object({ id: z.string(), name: z.string().min(1) }),
    run: async (tx, { id, name }) => {
      await tx.update(lists).set({ name }).where(eq(lists.id, id));
    },
  },
  refuse: {
    args: z.object({ id: z.string() }),
    run: async (tx, { id }, ctx) => {
      await tx.update(lists).set({ name: 'refused' }).where(eq(lists.id, id));
      if (ctx.location === 'server') throw new Error(`list ${id} is locked`);
    },
  },
  bump: {
    args: z.object({ id: z.string() }),
    run: async (tx, { id }) => {
      await tx
        .update(items)
        .set({ qty: sql`${items.qty} + 1` })
        .where(eq(items.id, id));
    },
  },
});

/** The server's own versions: what it keeps differs from what clients guess. */
const serverMutators = {
  ...mutators,
  // The server keeps todos titled 'keep' even when done.
  clearCompleted: {
    ...mutators.clearCompleted,
    run: async (tx: Parameters<typeof mutators.clearCompleted.run>[0], { listId }: { listId: string }) => {
      await tx
        .delete(todos)
        .where(and(eq(todos.listId, listId), eq(todos.done, true), sql`${todos.title} <> 'keep'`));
    },
  },
  // The server appends a mark to every name.
  rename: {
    ...mutators.rename,
    run: async (
      tx: Parameters<typeof mutators.rename.run>[0],
      { id, name }: { id: string; name: string },
    ) => {
      await tx
        .update(lists)
        .set({ name: `${name} (server)` })
        .where(eq(lists.id, id));
    },
  },
};

type Mutating = SyncClient<typeof mutators>;

let clients: E2eClient[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
});

const LIST = '00000000-0000-4000-8000-0000000000a1';
const ITEM = '00000000-0000-4000-8000-0000000000b1';

async function twoClients(driver: 'pglite' | 'postgres', clientDriver: ClientDriverKind) {
  const t = await startTestServer(e2eSchema, { driver, mutators: serverMutators });
  clients = await openClients({ port: t.server.port, token: (u) => t.token(u) }, 2, {
    mutators,
    clientDriver,
  });
  const [a, b] = clients as [E2eClient, E2eClient];
  return { t, a, b, mutate: (a.sync as Mutating).mutate };
}

async function listName(client: E2eClient): Promise<string | undefined> {
  const [row] = await client.db.select({ name: lists.name }).from(lists).where(eq(lists.id, LIST));
  return row?.name;
}

async function todoTitles(client: E2eClient): Promise<string[]> {
  const rows = await client.db.select({ title: todos.title }).from(todos).orderBy(todos.title);
  return rows.map((r) => r.title);
}

for (const [driver, clientDriver] of driverPairs) {
  describe(`mutators [${driver}, ${clientDriver} clients]`, () => {
    it('shows the optimistic result at once, offline, and live queries see it', async () => {
      const { t, a, b, mutate } = await twoClients(driver, clientDriver);
      await a.db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u' });
      await a.db.insert(todos).values([
        { listId: LIST, title: 'milk', done: true },
        { listId: LIST, title: 'bread', done: false },
      ]);
      const seen: string[][] = [];
      const watching = a.db
        .select({ title: todos.title })
        .from(todos)
        .orderBy(todos.title)
        .watch()
        .subscribe((rows) => seen.push(rows.map((r) => r.title)));
      await waitFor(() => seen.at(-1)?.length === 2, 5000, 'the live query shows both todos');
      // Not started: offline.
      const { mutationId } = await mutate.clearCompleted({ listId: LIST });
      expect(mutationId).toBeGreaterThan(0);
      expect(await todoTitles(a)).toEqual(['bread']);
      await waitFor(() => seen.at(-1)?.join() === 'bread', 5000, 'the live query shows the mutation');
      watching();

      await Promise.all([a.sync.start(), b.sync.start()]);
      await settle([a, b]);
      const onServer = await t.server.db.select({ title: todos.title }).from(todos);
      expect(onServer.map((r) => r.title)).toEqual(['bread']);
      expect(await todoTitles(b)).toEqual(['bread']);
      expect(a.rejected).toEqual([]);
      expect(a.errors).toEqual([]);
      // Pushed as a mutation, not as the rows it wrote.
      const batches = a.tap.pushes.flatMap((p) => JSON.parse(p).batches);
      const pushed = batches.find((batch: { mutation?: unknown }) => batch.mutation);
      expect(pushed).toMatchObject({
        changes: [],
        mutation: { name: 'clearCompleted', args: { listId: LIST } },
      });
    });

    it("replaces the optimistic outcome with the server's, rows it wrote and rows it left", async () => {
      const { t, a, b, mutate } = await twoClients(driver, clientDriver);
      await Promise.all([a.sync.start(), b.sync.start()]);
      await a.db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u' });
      await a.db.insert(todos).values([
        { listId: LIST, title: 'milk', done: true },
        { listId: LIST, title: 'keep', done: true },
        { listId: LIST, title: 'bread', done: false },
      ]);
      await settle([a, b]);
      // Pushes wait until both mutations are recorded, so the optimistic state can be seen.
      a.tap.dropOutgoing = (text) => text.startsWith('{"type":"push"');
      await mutate.rename({ id: LIST, name: 'Food' });
      await mutate.clearCompleted({ listId: LIST });
      expect(await listName(a)).toBe('Food');
      expect(await todoTitles(a)).toEqual(['bread']);
      a.tap.dropOutgoing = undefined;
      a.proxy.cutAll();
      await settle([a, b]);
      // The server's rename reached A as a change; its clearCompleted kept 'keep', which no change
      // brings back: the ack's rows do.
      expect(await listName(a)).toBe('Food (server)');
      expect(await todoTitles(a)).toEqual(['bread', 'keep']);
      expect(await listName(b)).toBe('Food (server)');
      expect(await todoTitles(b)).toEqual(['bread', 'keep']);
      const onServer = await t.server.db.select({ title: todos.title }).from(todos).orderBy(todos.title);
      expect(onServer.map((r) => r.title)).toEqual(['bread', 'keep']);
      expect(a.rejected).toEqual([]);
    });

    it('rolls back a mutation the server refuses, with its message in the rejected event', async () => {
      const { t, a, b, mutate } = await twoClients(driver, clientDriver);
      await Promise.all([a.sync.start(), b.sync.start()]);
      await a.db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u' });
      await settle([a, b]);
      a.tap.dropOutgoing = (text) => text.startsWith('{"type":"push"');
      const { mutationId } = await mutate.refuse({ id: LIST });
      expect(await listName(a)).toBe('refused');
      a.tap.dropOutgoing = undefined;
      a.proxy.cutAll();
      await settle([a, b]);
      expect(await listName(a)).toBe('Groceries');
      expect(await listName(b)).toBe('Groceries');
      expect(a.rejected).toEqual([
        {
          mutationId,
          reason: `list ${LIST} is locked`,
          rows: [{ table: 'lists', pk: { id: LIST }, row: { id: LIST, name: 'Groceries', ownerId: 'u' } }],
        },
      ]);
      const [row] = await t.server.db.select().from(lists);
      expect(row?.name).toBe('Groceries');
    });

    it('rejects a mutator the server lacks, and arguments its validator refuses, saying which', async () => {
      const t = await startTestServer(e2eSchema, { driver, mutators: serverMutators });
      // This client's versions: an extra mutator, and a rename whose validator lets an empty name by.
      const lax = defineMutators({
        ...mutators,
        rename: { ...mutators.rename, args: z.object({ id: z.string(), name: z.string() }) },
        archive: { args: z.object({ id: z.string() }), run: async () => {} },
      });
      clients = await openClients({ port: t.server.port, token: (u) => t.token(u) }, 1, {
        mutators: lax,
        clientDriver,
      });
      const a = clients[0]!;
      const mutate = (a.sync as SyncClient<typeof lax>).mutate;
      await a.sync.start();
      await a.db.insert(lists).values({ id: LIST, name: 'Groceries', ownerId: 'u' });
      await a.sync.flush();
      await mutate.archive({ id: LIST });
      await mutate.rename({ id: LIST, name: '' });
      // Refused locally before anything is recorded: the client checks arguments too.
      await expect(mutate.rename({ id: LIST, name: 7 as unknown as string })).rejects.toThrow(
        /mutator "rename": invalid arguments: name:/,
      );
      await a.sync.flush();
      expect(a.rejected.map((r) => r.reason)).toEqual([
        expect.stringMatching(/^unknown mutator "archive"/),
        expect.stringMatching(/^mutator "rename": invalid arguments: name: /),
      ]);
      expect(await listName(a)).toBe('Groceries');
    });

    it('keeps the order of mutations and row writes made offline', async () => {
      const { t, a, b, mutate } = await twoClients(driver, clientDriver);
      // Offline: a row write, a mutation, a row write to the column the mutation wrote, another mutation.
      await a.db.insert(lists).values({ id: LIST, name: 'first', ownerId: 'u' });
      await a.db.insert(todos).values({ listId: LIST, title: 'milk', done: true });
      await mutate.rename({ id: LIST, name: 'second' });
      await a.db.update(lists).set({ name: 'third' }).where(eq(lists.id, LIST));
      await a.db.insert(todos).values({ listId: LIST, title: 'eggs', done: true });
      await mutate.clearCompleted({ listId: LIST });
      await a.db.insert(todos).values({ listId: LIST, title: 'after', done: true });
      expect(await todoTitles(a)).toEqual(['after']);
      await Promise.all([a.sync.start(), b.sync.start()]);
      await settle([a, b]);
      // The update made after the rename wins over the server's rename; the clear ran after both
      // inserts before it and before the one after it.
      for (const client of [a, b]) {
        expect(await listName(client)).toBe('third');
        expect(await todoTitles(client)).toEqual(['after']);
      }
      const [row] = await t.server.db.select({ name: lists.name }).from(lists);
      expect(row?.name).toBe('third');
      const ids = a.tap.pushes.flatMap((p) =>
        JSON.parse(p).batches.map((batch: { mutationId: number; mutation?: { name: string } }) => [
          batch.mutationId,
          batch.mutation?.name ?? 'rows',
        ]),
      );
      expect(ids.map(([, what]: [number, string]) => what)).toEqual([
        'rows',
        'rows',
        'rename',
        'rows',
        'rows',
        'clearCompleted',
        'rows',
      ]);
      expect(ids.map(([id]: [number, string]) => id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    });

    // A file database on better-sqlite3: the same on both client drivers.
    it.skipIf(clientDriver === 'async')(
      'pushes the mutations a client recorded before a restart once, even when an ack is lost',
      async () => {
        const t = await startTestServer(e2eSchema, { driver, mutators: serverMutators });
        const dir = mkdtempSync(join(tmpdir(), 'syncline-mutators-'));
        try {
          const path = join(dir, 'client.db');
          const url = `ws://127.0.0.1:${t.server.port}/sync`;
          const token = await t.token('u1');
          // First run: offline, three bumps recorded, then the app closes.
          let db = await openDatabase(e2eSchema, sqlite({ path }));
          let sync = syncClient(db, { url, token, mutators });
          await db.insert(items).values({ id: ITEM, title: 'counter' });
          for (let i = 0; i < 3; i++) await sync.mutate.bump({ id: ITEM });
          expect((await db.select().from(items))[0]?.qty).toBe(3);
          await sync.stop();
          await db.close();
          // Second run: the first ack is lost, so the batches go again on the next connection.
          db = await openDatabase(e2eSchema, sqlite({ path }));
          let acks = 0;
          const tap = new SocketTap();
          tap.dropIncoming = (text) => text.startsWith('{"type":"ack"') && acks++ === 0;
          sync = syncClient(db, {
            url,
            token,
            mutators,
            WebSocket: tap.WebSocket,
            backoff: { initialMs: 10, maxMs: 50 },
          });
          await sync.start();
          await waitFor(() => acks > 0, 10_000, 'the first ack arrived (and was dropped)');
          // The client still waits for it: a new connection pushes the batches again.
          await sync.stop();
          await sync.start();
          await sync.flush();
          await sync.caughtUp();
          const [onServer] = await t.server.db.select().from(items);
          expect(onServer?.qty).toBe(3);
          expect((await db.select().from(items))[0]?.qty).toBe(3);
          const logged = await t.server.db.execute<{ n: number }>(
            sql`SELECT count(*)::int AS n FROM _syncline_changes WHERE table_name = 'items' AND op = 'U'`,
          );
          expect(logged[0]?.n).toBe(3);
          expect(await rawSqlite(db, 'SELECT count(*) AS n FROM _syncline_outbox')).toEqual([{ n: 0 }]);
          await sync.stop();
          await db.close();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  });
}
