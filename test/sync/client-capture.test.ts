import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  type Database,
  eq,
  integer,
  openDatabase,
  schema,
  sql,
  table,
  text,
  UsageError,
} from '../../src/index.js';
import { batchChanges } from '../../src/sync/client/batch-changes.js';
import { LocalReplica } from '../../src/sync/client/local-replica.js';
import { allTypes, drafts, lists, openReplica, outbox, raw, todos } from './client-helpers.js';

/**
 * Capture on the client (docs/sync-internals.md, "Client tables"): triggers on every synced table
 * write local changes to `_syncline_outbox` while capture is on, whoever writes them.
 */

const listId = '0f8fad5b-d9cb-469f-a165-70867728950e';
let db: Database;
afterEach(async () => {
  await db?.close();
});

describe('client capture', () => {
  it('captures inserts, updates and deletes made with the query builder', async () => {
    ({ db } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'Groceries', ownerId: 'u1' });
    await db.update(lists).set({ name: 'Food' }).where(eq(lists.id, listId));
    await db.delete(lists).where(eq(lists.id, listId));
    const rows = await outbox(db);
    expect(rows.map((r) => [r.table_name, r.op, JSON.parse(r.pk), r.row && JSON.parse(r.row)])).toEqual([
      ['lists', 'insert', { id: listId }, { id: listId, name: 'Groceries', owner_id: 'u1' }],
      ['lists', 'update', { id: listId }, { name: 'Food' }],
      ['lists', 'delete', { id: listId }, null],
    ]);
    for (const row of rows) {
      expect(row.mutation_id).toBeNull();
      expect(Math.abs(row.wall_ms - Date.now())).toBeLessThan(24 * 3600 * 1000);
    }
  });

  it('captures raw SQL writes too', async () => {
    ({ db } = await openReplica());
    await db.execute(sql`insert into lists (id, name, owner_id) values (${listId}, 'Raw', 'u2')`);
    await db.execute(sql`update lists set owner_id = 'u3' where id = ${listId}`);
    const rows = await outbox(db);
    expect(rows.map((r) => [r.op, JSON.parse(r.row ?? 'null')])).toEqual([
      ['insert', { id: listId, name: 'Raw', owner_id: 'u2' }],
      ['update', { owner_id: 'u3' }],
    ]);
  });

  it('captures only the columns an update changed, and nothing for an update that changes nothing', async () => {
    ({ db } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    const [todo] = await db
      .insert(todos)
      .values({ listId, title: 'Milk', tags: ['x'] })
      .returning();
    await db.update(todos).set({ title: 'Milk', done: true }).where(eq(todos.id, todo.id));
    await db.update(todos).set({ title: 'Milk' }).where(eq(todos.id, todo.id));
    await db.update(todos).set({ note: null }).where(eq(todos.id, todo.id));
    const updates = (await outbox(db)).filter((r) => r.op === 'update');
    expect(updates.map((r) => JSON.parse(r.row!))).toEqual([{ done: 1 }]);
  });

  it('never captures local tables', async () => {
    ({ db } = await openReplica());
    await db.insert(drafts).values({ id: listId, body: 'not synced' });
    await db.update(drafts).set({ body: 'still not' }).allRows();
    await db.delete(drafts).allRows();
    expect(await outbox(db)).toEqual([]);
  });

  it('captures nothing while capture is off', async () => {
    ({ db } = await openReplica());
    await raw(db, 'UPDATE _syncline_capture SET enabled = 0');
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    await raw(db, 'UPDATE _syncline_capture SET enabled = 1');
    await db.update(lists).set({ name: 'B' }).allRows();
    expect((await outbox(db)).map((r) => r.op)).toEqual(['update']);
  });

  it('writes a primary key change as a delete of the old key and an insert of the new row', async () => {
    ({ db } = await openReplica());
    const other = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    await db.update(lists).set({ id: other }).where(eq(lists.id, listId));
    const rows = (await outbox(db)).slice(1);
    expect(rows.map((r) => [r.op, JSON.parse(r.pk), r.row && JSON.parse(r.row)])).toEqual([
      ['delete', { id: listId }, null],
      ['insert', { id: other }, { id: other, name: 'A', owner_id: 'u1' }],
    ]);
  });

  it('turns captured values into protocol JSON with each column type', async () => {
    ({ db } = await openReplica());
    const replica = new LocalReplica(db);
    const id = '9b2f3c1e-6a47-4d1b-8f0e-2c5d7a9e1b34';
    const row = {
      id,
      text: 'héllo',
      integer: -7,
      bigint: 2n ** 62n + 1n,
      real: 0.1 + 0.2,
      boolean: true,
      timestamp: new Date(1_700_000_000_123),
      json: { a: [1, 'two', null] },
      jsonList: ['x'],
      blob: new Uint8Array([0, 1, 254, 255]),
      numeric: '12345678901234567890.5',
      priority: 'high' as const,
      point: { x: 1.5, y: -2 },
    };
    await db.insert(allTypes).values(row);
    await db.insert(allTypes).values({ id: '9b2f3c1e-6a47-4d1b-8f0e-2c5d7a9e1b35' });
    const rows = (await outbox(db)).map((r) => ({ ...r, hlc: 'h' }));
    const changes = batchChanges(
      rows.map((r) => ({ table: r.table_name, op: r.op as 'insert', pk: r.pk, row: r.row, hlc: r.hlc })),
      replica.context.codecs,
    );
    expect(changes[0].values).toEqual({
      id,
      text: 'héllo',
      integer: -7,
      bigint: (2n ** 62n + 1n).toString(),
      real: 0.1 + 0.2,
      boolean: true,
      timestamp: 1_700_000_000_123,
      json: { a: [1, 'two', null] },
      json_list: ['x'],
      blob: 'AAH+/w==',
      numeric: '12345678901234567890.5',
      priority: 'high',
      point: { x: 1.5, y: -2 },
    });
    expect(changes[1].values).toMatchObject({ text: null, blob: null, bigint: null, json_list: [] });
  });

  it('installs idempotently, keeping the outbox and the client id', async () => {
    ({ db } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    const first = new LocalReplica(db);
    await first.open();
    const second = new LocalReplica(db);
    await second.open();
    expect(second.clientId).toBe(first.clientId);
    expect(second.clientId).toMatch(/^[0-9a-f-]{36}$/);
    await db.update(lists).set({ name: 'B' }).allRows();
    expect((await outbox(db)).map((r) => r.op)).toEqual(['insert', 'update']);
  });

  it('refuses a synced table without a primary key', async () => {
    const loose = table('loose', { name: text(), n: integer() });
    db = await openDatabase(schema({ loose }), sqlite());
    await expect(new LocalReplica(db).open()).rejects.toThrow(UsageError);
    await expect(new LocalReplica(db).open()).rejects.toThrow(/table "loose" has no primary key/);
  });
});
