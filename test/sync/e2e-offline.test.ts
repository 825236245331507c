import { afterEach, describe, expect, it } from 'vitest';
import { eq, sql } from '../../src/index.js';
import {
  closeClients,
  driverPairs,
  type E2eClient,
  e2eSchema,
  expectConverged,
  fixedKeys,
  items,
  nextMillisecond,
  openClients,
  rawSqlite,
  settle,
  within,
} from '../support/sync-fixture.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * A client that was offline pushes what it wrote meanwhile through connections cut in the middle
 * of a push frame, or cut after the server committed a push but before its ack arrived. The server
 * applies every batch exactly once: in the change log each (origin, mutation_id) belongs to one
 * transaction, every local write is logged once, `_syncline_clients.last_mutation_id` is the
 * client's last, and the server's rows are the client's.
 */

type Server = TestServer<typeof e2eSchema>;

let clients: E2eClient[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
});

const keys = fixedKeys(1200);

/** The last mutation id the server settled for a client (0 before its first push). */
async function serverLastMutation(t: Server, clientId: string): Promise<number> {
  const rows = await t.server.db.execute<{ last: string }>(
    sql`SELECT last_mutation_id::text AS last FROM _syncline_clients WHERE client_id = ${clientId}`,
  );
  return rows.length === 0 ? 0 : Number(rows[0].last);
}

/** The last mutation id the client gave out. */
async function clientLastMutation(client: E2eClient): Promise<number> {
  const [row] = await rawSqlite(
    client.db,
    "SELECT value FROM _syncline_state WHERE key = 'next_mutation_id'",
  );
  return Number(row?.value ?? 1) - 1;
}

/**
 * Checks that the server applied each of the client's batches exactly once: one transaction per
 * (origin, mutation_id), every id from 1 to the client's last present (each batch here changes
 * something), no row logged twice for one batch (a batch carries one change per row), no more
 * changes logged than the batch carried when it was pushed (the tap saw it; fewer when a change
 * only left a tombstone), the server's last mutation id equal to the client's, and nothing left in
 * the outbox. Returns how many changes were logged in all.
 */
async function expectAppliedOnce(t: Server, client: E2eClient): Promise<number> {
  const clientId = client.sync.clientId!;
  const perBatch = await t.server.db.execute<{ id: string; txids: number; changes: number; rows: number }>(
    sql`SELECT mutation_id::text AS id, count(DISTINCT txid)::int AS txids, count(*)::int AS changes,
               count(DISTINCT (table_name, pk))::int AS rows
          FROM _syncline_changes WHERE origin = ${clientId} GROUP BY mutation_id ORDER BY min(mutation_id)`,
  );
  expect(
    perBatch.filter((b) => b.txids !== 1 || b.rows !== b.changes),
    'batches logged by more than one transaction, or changing a row twice',
  ).toEqual([]);
  const last = await clientLastMutation(client);
  expect(perBatch.map((b) => Number(b.id))).toEqual(Array.from({ length: last }, (_, i) => i + 1));
  const pushed = new Map<number, number>();
  for (const frame of client.tap.pushes) {
    const { batches } = JSON.parse(frame) as { batches: { mutationId: number; changes: unknown[] }[] };
    for (const batch of batches) pushed.set(batch.mutationId, batch.changes.length);
  }
  expect(
    perBatch.filter((b) => b.changes > (pushed.get(Number(b.id)) ?? 0)),
    'batches that logged more changes than they carried',
  ).toEqual([]);
  expect(await serverLastMutation(t, clientId)).toBe(last);
  expect(await rawSqlite(client.db, 'SELECT seq FROM _syncline_outbox')).toEqual([]);
  return perBatch.reduce((n, b) => n + b.changes, 0);
}

/**
 * Makes `count` single-row transactions on `items` (inserts, updates and deletes, in an order
 * fixed by a small generator), starting from the rows `live` names; returns the keys alive after.
 */
async function writeMany(client: E2eClient, live: string[], count: number, firstKey: number) {
  let state = 20_240_601;
  const next = (n: number) => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state % n;
  };
  let fresh = firstKey;
  for (let i = 0; i < count; i++) {
    const roll = next(10);
    if (live.length === 0 || roll < 4) {
      const id = keys[fresh++];
      await client.db.insert(items).values({ id, title: `insert ${i}`, qty: i, tags: [`t${i % 3}`] });
      live.push(id);
    } else if (roll < 8) {
      const id = live[next(live.length)];
      await client.db
        .update(items)
        .set({ title: `update ${i}`, qty: i, done: i % 2 === 0, changedAt: new Date(1_700_000_000_000 + i) })
        .where(eq(items.id, id));
    } else {
      const [id] = live.splice(next(live.length), 1);
      await client.db.delete(items).where(eq(items.id, id));
    }
  }
  return live;
}

function isPush(text: string): boolean {
  return text.startsWith('{"type":"push"');
}

function mutationIdsOf(push: string): number[] {
  return (JSON.parse(push) as { batches: { mutationId: number }[] }).batches.map((b) => b.mutationId);
}

for (const [driver, clientDriver] of driverPairs) {
  describe(`e2e offline writes [${driver}, ${clientDriver} clients]`, () => {
    // The 1,000-write tests take 5-10 s each: on asynchronous clients they run on one server
    // driver only (the real server when there is one), to keep the file's run time down.
    const thousandWrites = clientDriver === 'sync' || driver === serverDrivers.at(-1);
    for (const offline of thousandWrites ? (['refused', 'stopped'] as const) : []) {
      it(`1,000 writes made offline (${offline}) survive pushes cut mid-frame, each batch applied once`, async () => {
        const t = await startTestServer(e2eSchema, { driver });
        clients = await openClients({ port: t.server.port, token: t.token }, 1, { clientDriver });
        const [a] = clients;
        await a.sync.start();
        const seeded = keys.slice(0, 50);
        await a.db.insert(items).values(seeded.map((id, i) => ({ id, title: `seed ${i}` })));
        await within(a.sync.flush(), 10_000, 'the seed rows to be pushed');

        if (offline === 'refused') {
          a.proxy.setRefusing(true);
          await waitFor(() => a.sync.status === 'connecting', 5000, 'the client to notice it is offline');
        } else {
          await a.sync.stop();
        }
        await writeMany(a, [...seeded], 1000, seeded.length);

        // Connection 1 is cut halfway through its first push frame, connection 2 halfway through
        // its second (after the first was acknowledged), so each cut leaves a frame half sent.
        const cutPush = new Map([
          [1, 1],
          [2, 2],
        ]);
        let connection = 0;
        let pushOfConnection = 0;
        const pushesBy = new Map<number, string[]>();
        a.tap.onSend = (text) => {
          if (text.startsWith('{"type":"hello"')) {
            connection++;
            pushOfConnection = 0;
            return;
          }
          if (!isPush(text)) return;
          pushOfConnection++;
          pushesBy.set(connection, [...(pushesBy.get(connection) ?? []), text]);
          if (cutPush.get(connection) === pushOfConnection) {
            a.proxy.cutAfterClientBytes(Math.floor(text.length / 2));
          }
        };
        const cutsBefore = a.proxy.cuts;
        if (offline === 'refused') a.proxy.setRefusing(false);
        else await a.sync.start();

        await settle([a], 40_000);
        // A push cut mid-frame never arrived whole: the next connection sent its batches again.
        const planned = [...cutPush].filter(([c, push]) => (pushesBy.get(c)?.length ?? 0) >= push);
        expect(planned.length, 'at least one push was cut mid-frame').toBeGreaterThan(0);
        expect(a.proxy.cuts - cutsBefore, 'the proxy cut every planned connection').toBe(planned.length);
        for (const [c, push] of planned) {
          const cut = mutationIdsOf(pushesBy.get(c)![push - 1]);
          const next = (pushesBy.get(c + 1) ?? []).flatMap(mutationIdsOf);
          expect(next, `connection ${c + 1} resent the batches of connection ${c}'s cut push`).toEqual(
            expect.arrayContaining(cut),
          );
        }

        await expectConverged(t.server.db, [a]);
        const logged = await expectAppliedOnce(t, a);
        // Offline or stopped, the client stamped each local transaction as a batch of its own,
        // so every single-row write was logged, once.
        expect(await clientLastMutation(a), 'one batch per local transaction').toBe(1 + 1000);
        expect(logged).toBe(seeded.length + 1000);
        expect(a.rejected).toEqual([]);
        // 1,000 transactions written, pushed through cut connections and applied one by one: on
        // a loaded 2-core machine this can take longer than the default 30 s.
      }, 90_000);
    }

    it('a push committed by the server whose ack never arrived is not applied twice', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      clients = await openClients({ port: t.server.port, token: t.token }, 1, { clientDriver });
      const [a] = clients;
      await a.sync.start();
      const clientId = a.sync.clientId!;
      // Acks are lost on the way: the client keeps its first push in flight and sends no other.
      a.tap.dropIncoming = (text) => text.startsWith('{"type":"ack"');
      for (let i = 0; i < 30; i++) {
        await a.db.insert(items).values({ id: keys[i], title: `row ${i}` });
        if (i % 3 === 2) await a.db.update(items).set({ qty: i }).where(eq(items.id, keys[i]));
      }
      await waitFor(() => a.tap.pushes.length >= 1, 5000, 'the first push to be sent');
      const first = mutationIdsOf(a.tap.pushes[0]);
      await waitFor(
        async () => (await serverLastMutation(t, clientId)) >= Math.max(...first),
        10_000,
        'the server to commit the first push',
      );
      expect(a.tap.pushes, 'no second push while the first is unacknowledged').toHaveLength(1);
      a.proxy.cutAll();
      a.tap.dropIncoming = undefined;

      await settle([a]);
      await expectConverged(t.server.db, [a]);
      expect(await expectAppliedOnce(t, a)).toBe(40);
    });

    it('a row deleted on the server while its insert was unacknowledged does not survive the next snapshot', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      clients = await openClients({ port: t.server.port, token: t.token }, 1, { clientDriver });
      const [a] = clients;
      // The first connection's snapshot and acks are lost: the client has no cursor yet and its
      // insert stays in the outbox, though the server applies it.
      a.tap.dropIncoming = (text) => /^\{"type":"(snapshot|ack)"/.test(text);
      await a.sync.start();
      const id = keys[0];
      await a.db.insert(items).values({ id, title: 'inserted by A' });
      await waitFor(
        async () => (await t.server.db.select().from(items)).length === 1,
        10_000,
        "the server to apply A's insert",
      );
      await t.server.db.delete(items).where(eq(items.id, id));
      a.tap.dropIncoming = undefined;
      a.proxy.cutAll();

      // The next connection sends a snapshot without the row, then the ack of the insert sent
      // again. The client keeps rows with pending writes out of the snapshot's pruning, whatever
      // their stamps: the row, older than the snapshot, survives on the client alone.
      await settle([a]);
      expect(await t.server.db.select().from(items)).toEqual([]);
      await expectConverged(t.server.db, [a]);
    });

    it('a write made before the first snapshot keeps its value when it wins on the server', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      const id = keys[0];
      await t.server.db.insert(items).values({ id, title: 'from the server', qty: 0 });
      clients = await openClients({ port: t.server.port, token: t.token }, 2, { clientDriver });
      const [a, b] = clients;
      await b.sync.start();
      await settle([b]);
      b.proxy.setRefusing(true);
      await waitFor(() => b.sync.status === 'connecting', 5000, 'B to notice it is offline');
      await b.db.update(items).set({ qty: 2 }).where(eq(items.id, id));
      // A is started (its capture installed) but has not reached the server yet.
      a.proxy.setRefusing(true);
      await a.sync.start();
      await nextMillisecond();
      // A, which never synced, writes the row whole: newer than B's update, the same qty.
      await a.db.insert(items).values({ id, title: 'from A', qty: 2 });
      // A's first connection gets its snapshot (qty 0, without B's update), but its push is lost.
      a.tap.dropOutgoing = (text) => text.startsWith('{"type":"push"');
      a.proxy.setRefusing(false);
      await within(a.sync.caughtUp(), 10_000, 'A to apply its first snapshot');
      b.proxy.setRefusing(false);
      await within(b.sync.flush(), 10_000, 'B to push its update');
      await within(a.sync.caughtUp(), 10_000, "A to receive B's update");
      a.tap.dropOutgoing = undefined;
      a.proxy.cutAll();
      await settle([a, b]);
      // A's insert wins every column. The snapshot replaced A's pending values with the server's
      // (it counts a pending write stamped before the welcome as older than the snapshot), B's
      // update then kept them (A's pending write is newer), and the server logged only the
      // columns A's insert changed: qty (2 already) never reaches A, which keeps 0.
      expect((await t.server.db.select().from(items))[0]).toMatchObject({ title: 'from A', qty: 2 });
      await expectConverged(t.server.db, [a, b]);
    });

    // Capture starts when syncClient() is made, and on a database's first install the rows its
    // synced tables already hold go into the outbox: an app used offline before sync was set up
    // keeps what it wrote (the first snapshot would otherwise prune it as unknown to the server).
    it('rows written before the first start() reach the server instead of being pruned', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      clients = await openClients({ port: t.server.port, token: t.token }, 1, { clientDriver });
      const [a] = clients;
      // An app used offline before signing in: it writes, then starts sync for the first time.
      await a.db.insert(items).values({ id: keys[0], title: 'written before start()' });
      await a.sync.start();
      await settle([a]);
      expect(await a.db.select({ title: items.title }).from(items)).toEqual([
        { title: 'written before start()' },
      ]);
      await expectConverged(t.server.db, [a]);
    });

    it('rows written before syncClient() was made reach the server, as inserts', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      clients = await openClients(
        { port: t.server.port, token: t.token },
        2,
        { clientDriver },
        async (db) => {
          await db.insert(items).values({ id: keys[1], title: 'before sync existed', qty: 3 });
        },
      );
      const [a, b] = clients;
      await a.sync.start();
      await settle([a]);
      // B wrote its own copy of the same row before sync: both arrive as inserts, B's is newer.
      await b.sync.start();
      await settle([a, b]);
      expect(await t.server.db.select({ title: items.title, qty: items.qty }).from(items)).toEqual([
        { title: 'before sync existed', qty: 3 },
      ]);
      expect(a.rejected).toEqual([]);
      await expectConverged(t.server.db, [a, b]);
    });
  });
}
