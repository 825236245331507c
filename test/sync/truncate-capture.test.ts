import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { integer, schema, sql, table, text } from '../../src/index.js';
import { CHANGES_CHANNEL, installCapture } from '../../src/sync/server/capture.js';
import { ChangeLogReader } from '../../src/sync/server/change-log-reader.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';
import { lists } from '../support/fixtures.js';
import {
  closeClients,
  type E2eClient,
  e2eSchema,
  expectConverged,
  fixedKeys,
  items,
  openClients,
  settle,
} from '../support/sync-fixture.js';
import { serverDrivers, startTestServer } from '../support/sync-server.js';
import { waitFor } from '../support/wait.js';

/**
 * TRUNCATE empties a table without row triggers: a BEFORE TRUNCATE trigger logs every row it is
 * about to remove as a delete, with a tombstone and the row's image, so clients drop the rows as
 * they would after a DELETE, and an older write pushed later cannot bring them back.
 */

const notes = table('notes', { id: integer().primaryKey(), body: text().notNull() });
const tags = table('tags', { id: integer().primaryKey(), label: text().notNull() });
const truncateSchema = schema({ notes, tags });

dialectSuite(
  'capturing TRUNCATE',
  (env) => {
    it('logs every row as a delete, with a tombstone, and wakes the reader', async () => {
      const db = await env.open(truncateSchema);
      await installCapture(db, truncateSchema.tableList);
      const reader = new ChangeLogReader(db);
      await db.insert(notes).values([1, 2, 3].map((id) => ({ id, body: `note ${id}` })));
      await db.insert(tags).values({ id: 1, label: 'kept' });
      await reader.readNew();

      let notified = 0;
      const unlisten = await db.driver.listen!(CHANGES_CHANNEL, () => notified++);
      await db.execute(sql`truncate table ${notes}`);
      await waitFor(() => notified > 0, 5000, 'the notification of the TRUNCATE');
      await unlisten();
      const { changes } = await reader.readNew();
      expect(changes.map((c) => [c.table, c.op, c.pk.id, c.row.body])).toEqual([
        ['notes', 'delete', 1, 'note 1'],
        ['notes', 'delete', 2, 'note 2'],
        ['notes', 'delete', 3, 'note 3'],
      ]);
      const stamps = await db.execute<{ id: number; deleted: string | null; image: unknown }>(
        sql`select (pk->>'id')::int as id, deleted, image from _syncline_stamps where table_name = 'notes' order by 1`,
      );
      expect(stamps.map((s) => s.id)).toEqual([1, 2, 3]);
      expect(stamps.every((s) => s.deleted === changes[0]!.hlc)).toBe(true);
      // Each row keeps its image, as after a DELETE.
      expect(stamps.map((s) => s.image)).toEqual([1, 2, 3].map((id) => ({ id, body: `note ${id}` })));
      // An empty table truncates to nothing logged; the other table was untouched.
      await db.execute(sql`truncate table ${notes}`);
      expect((await reader.readNew()).changes).toEqual([]);
      expect(await db.select().from(tags)).toEqual([{ id: 1, label: 'kept' }]);
    });

    if (env.driver.name === 'postgres') {
      it('captures a TRUNCATE from a session whose search_path lacks the schema', async () => {
        const db = await env.open(truncateSchema);
        await installCapture(db, truncateSchema.tableList);
        const reader = new ChangeLogReader(db);
        await db.insert(notes).values({ id: 7, body: 'qualified' });
        await reader.readNew();
        const [{ schema: current }] = await db.execute<{ schema: string }>(
          sql`select current_schema() as schema`,
        );
        const other = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await other.connect();
        try {
          await other.query(`TRUNCATE "${current}".notes, "${current}".tags`);
        } finally {
          await other.end();
        }
        const { changes } = await reader.readNew();
        expect(changes.map((c) => [c.table, c.op, c.pk.id])).toEqual([['notes', 'delete', 7]]);
      });
    }
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);

const keys = fixedKeys(4);

for (const driver of serverDrivers) {
  describe(`TRUNCATE reaches clients [${driver}]`, () => {
    let clients: E2eClient[] = [];
    afterEach(() => closeClients(clients));

    it('clients drop the rows of a table truncated on the server', async () => {
      const t = await startTestServer(e2eSchema, { driver });
      clients = await openClients({ port: t.server.port, token: t.token }, 2);
      await Promise.all(clients.map((c) => c.sync.start()));
      await clients[0]!.db.insert(items).values(keys.slice(0, 3).map((id) => ({ id, title: 'before' })));
      await t.server.db.insert(lists).values({ id: keys[3]!, name: 'stays', ownerId: 'u1' });
      await settle(clients);
      expect((await clients[1]!.db.select().from(items)).length).toBe(3);

      await t.external('TRUNCATE items');
      await settle(clients);
      const state = await expectConverged(t.server.db, clients);
      expect(state.items).toEqual([]);
      expect(state.lists!.map((l) => l.name)).toEqual(['stays']);
    });
  });
}
