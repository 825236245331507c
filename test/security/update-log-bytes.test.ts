import { afterEach, describe, expect, it } from 'vitest';
import { and, eq, isNotNull, like, sql } from '../../src/index.js';
import { UNCHANGED_LOGGED_BYTES } from '../../src/sync/server/capture.js';
import {
  closeClients,
  type E2eClient,
  e2eSchema,
  fixedKeys,
  items,
  openClients,
  within,
} from '../support/sync-fixture.js';
import { serverDrivers, startTestServer, type TestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';
import { writeBigRows } from './big-rows.js';

/**
 * Issue 17, point 4: "an update logs only the columns it changed". A small update of big rows used
 * to log each whole row again (150 rows of 900 KB and a 20 KB push of updates added 134 MB to the
 * change log); now the logged row leaves out unchanged values over UNCHANGED_LOGGED_BYTES. Shapes
 * and read rules that test such a column still judge every change right: the filter reads the
 * value from the table (a row deleted since is judged without it), and a client that must create
 * the row fetches it whole.
 */

let clients: E2eClient[] = [];
afterEach(async () => {
  await closeClients(clients);
  clients = [];
});

/** The bytes of the logged rows of the updates in the change log. */
async function updateLogBytes(t: TestServer<any>): Promise<number> {
  const [{ bytes }] = await t.server.db.execute<{ bytes: string | number | null }>(
    sql`SELECT sum(octet_length("row"::text) + coalesce(octet_length(old_values::text), 0)) AS bytes
          FROM _syncline_changes WHERE op = 'U'`,
  );
  return Number(bytes ?? 0);
}

const BIG = `doc ${'x'.repeat(UNCHANGED_LOGGED_BYTES * 3)}`;

for (const driver of serverDrivers) {
  describe(`an update logs only what it changed [${driver}]`, () => {
    it('a small update of 40 rows of 200 KB, from the backend and from a push, logs a few KB', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      await writeBigRows(t, 40, 200_000);
      await t.server.db.execute(sql`UPDATE items SET qty = qty + 1`);
      const direct = await updateLogBytes(t);
      // 40 whole rows would be 8 MB; each update logs its key, its small columns and the old qty.
      expect(direct).toBeLessThan(40 * 400);

      clients = await openClients({ port: t.server.port, token: t.token }, 1);
      const [a] = clients as [E2eClient];
      await within(a.sync.start(), 20_000, 'the client to start');
      await within(a.sync.caughtUp(), 20_000, 'the snapshot of 8 MB');
      await a.db.update(items).set({ done: true }).allRows();
      await within(a.sync.flush(), 10_000, 'the push of 40 updates');
      expect((await updateLogBytes(t)) - direct).toBeLessThan(40 * 400);
      // A key change logs the whole row: its new key is a new row for every client.
      const [{ id }] = await t.server.db.execute<{ id: string }>(sql`SELECT id FROM items LIMIT 1`);
      const before = await updateLogBytes(t);
      await t.server.db.execute(sql`UPDATE items SET id = gen_random_uuid() WHERE id = ${id}`);
      expect((await updateLogBytes(t)) - before).toBeGreaterThan(200_000);
    }, 60_000);

    for (const [kind, rule] of [
      // Decided in TypeScript.
      ['TypeScript', () => and(eq(items.done, false), isNotNull(items.note))!],
      // Decided by PostgreSQL (LIKE).
      ['SQL', () => and(eq(items.done, false), like(items.note, 'doc%'))!],
    ] as const) {
      it(`a read rule on a big column (${kind}) sees every update of a row whose logged image leaves it out`, async () => {
        const t = await startTestServer(e2eSchema, {
          driver,
          rules: { items: { read: rule, write: () => true } },
        });
        clients = await openClients({ port: t.server.port, token: t.token }, 1, {
          shapes: [{ table: items }],
        });
        const [b] = clients as [E2eClient];
        await within(b.sync.start(), 10_000, 'the client to start');
        const [k1, k2] = fixedKeys(2) as [string, string];
        const held = async (id: string) => (await b.db.select().from(items).where(eq(items.id, id)))[0];

        await t.server.db.execute(
          sql`INSERT INTO items (id, title, note) VALUES (${k1}, 'one', ${BIG}), (${k2}, 'two', ${BIG})`,
        );
        await waitFor(
          async () => (await held(k1))?.note === BIG && (await held(k2)) !== undefined,
          5000,
          'both rows',
        );

        // in → in: the update reaches the client though the rule's column was left out of the log.
        await t.server.db.execute(sql`UPDATE items SET qty = 7 WHERE id = ${k1}`);
        const [logged] = await t.server.db.execute<{ row: unknown }>(
          sql`SELECT "row"::text AS row FROM _syncline_changes WHERE op = 'U' ORDER BY id DESC LIMIT 1`,
        );
        expect(JSON.parse(logged!.row as string)).not.toHaveProperty('note');
        await waitFor(async () => (await held(k1))?.qty === 7, 5000, 'the qty update');

        // in → out: a delete.
        await t.server.db.execute(sql`UPDATE items SET done = true WHERE id = ${k1}`);
        await waitFor(async () => (await held(k1)) === undefined, 5000, 'the row to move out');

        // out → in: the logged row lacks the note; the client fetches the row whole.
        await t.server.db.execute(sql`UPDATE items SET done = false, title = 'back' WHERE id = ${k1}`);
        await waitFor(async () => (await held(k1))?.title === 'back', 5000, 'the row to move back in');
        expect((await held(k1))?.note).toBe(BIG);

        // in → out, then deleted before the server read it: judged without the note (the row is
        // gone), it still leaves the client; the delete's own image (done) is out of the rule.
        await t.server.db.transaction(async (tx) => {
          await tx.execute(sql`UPDATE items SET done = true WHERE id = ${k2}`);
          await tx.execute(sql`DELETE FROM items WHERE id = ${k2}`);
        });
        await waitFor(
          async () => (await held(k2)) === undefined,
          5000,
          'the moved-out, deleted row to leave',
        );

        // The client holds exactly what the rule lets it see.
        await within(b.sync.caughtUp(), 5000, 'the client to catch up');
        expect((await b.db.select().from(items)).map((r) => [r.id, r.title, r.qty, r.note === BIG])).toEqual([
          [k1, 'back', 7, true],
        ]);
        expect(b.errors).toEqual([]);
      }, 30_000);
    }
  });
}
