import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { ConstraintError, type Database, eq, openDatabase, SyncProtocolError } from '../../src/index.js';
import { LocalReplica } from '../../src/sync/client/local-replica.js';
import { CursorGapError } from '../../src/sync/client/remote-apply.js';
import type { ChangeJson } from '../../src/sync/protocol/messages.js';
import { waitFor } from '../support/wait.js';
import {
  changesMessage,
  clientSchema,
  lists,
  openReplica,
  outbox,
  raw,
  serverStamp,
  setCursor,
  storedCursor,
  todos,
  uuidOf,
} from './client-helpers.js';

/**
 * Applying server changes on the client (docs/sync-internals.md, "Applying a remote change"):
 * upserts, updates and deletes with the cursor in one transaction, capture off, and columns with
 * newer pending local writes kept.
 */

const listId = '0f8fad5b-d9cb-469f-a165-70867728950e';
const todoId = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
let db: Database;
let replica: LocalReplica;
afterEach(async () => {
  await db?.close();
});

const past = () => serverStamp(Date.now() - 10_000);
const future = () => serverStamp(Date.now() + 10_000);

function insertList(name: string, hlc = past()): ChangeJson {
  return {
    table: 'lists',
    op: 'insert',
    pk: { id: listId },
    values: { id: listId, name, owner_id: 'u1' },
    hlc,
  };
}

function todoRow(title: string): Record<string, any> {
  return {
    id: todoId,
    list_id: listId,
    title,
    done: false,
    updated_at: 1_700_000_000_000,
    tags: ['a'],
    note: null,
    position: null,
  };
}

/** `todoRow` keyed by property names, for local inserts. */
function todoRowApp(title: string) {
  return { id: todoId, listId, title, done: false, updatedAt: new Date(1_700_000_000_000), tags: ['a'] };
}

async function list() {
  return (await db.select().from(lists))[0];
}

describe('client remote apply', () => {
  it('applies the changes of a message in order, however its inserts are grouped into statements', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    const id = uuidOf;
    const insert = (i: number, name: string): ChangeJson => ({
      table: 'lists',
      op: 'insert',
      pk: { id: id(i) },
      values: { id: id(i), name, owner_id: 'u1' },
      hlc: past(),
    });
    const changes: ChangeJson[] = [];
    for (let i = 0; i < 700; i++) changes.push(insert(i, `first ${i}`));
    changes.push(
      insert(1, 'again'),
      { table: 'lists', op: 'update', pk: { id: id(2) }, values: { name: 'updated' }, hlc: past() },
      { table: 'lists', op: 'delete', pk: { id: id(3) }, hlc: past() },
      insert(4, 'again'),
      { table: 'lists', op: 'delete', pk: { id: id(4) }, hlc: past() },
      {
        table: 'todos',
        op: 'insert',
        pk: { id: todoId },
        values: { ...todoRow('t'), list_id: id(5) },
        hlc: past(),
      },
      insert(3, 'back'),
      insert(5, 'again'),
      insert(5, 'last'),
    );
    await replica.applyChanges(changesMessage('0', '1', changes));
    const names = new Map((await db.select().from(lists)).map((l) => [l.id, l.name]));
    expect(names.size).toBe(699);
    expect([1, 2, 3, 4, 5, 6].map((i) => names.get(id(i)))).toEqual([
      'again',
      'updated',
      'back',
      undefined,
      'last',
      'first 6',
    ]);
    expect((await db.select().from(todos)).map((t) => t.listId)).toEqual([id(5)]);
    expect(await outbox(db)).toEqual([]);
  });

  it('applies inserts as upserts, updates of existing rows, deletes, and moves the cursor', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '10');
    await replica.applyChanges(
      changesMessage('10', '12', [
        insertList('A'),
        { table: 'lists', op: 'update', pk: { id: listId }, values: { name: 'B' }, hlc: past() },
        { table: 'todos', op: 'insert', pk: { id: todoId }, values: todoRow('Milk'), hlc: past() },
      ]),
    );
    expect(await list()).toEqual({ id: listId, name: 'B', ownerId: 'u1' });
    const [todo] = await db.select().from(todos);
    expect(todo).toMatchObject({
      title: 'Milk',
      done: false,
      tags: ['a'],
      updatedAt: new Date(1_700_000_000_000),
    });
    const applied = await replica.applyChanges(
      changesMessage('12', '15', [
        insertList('C'),
        { table: 'todos', op: 'delete', pk: { id: todoId }, hlc: past() },
        { table: 'todos', op: 'update', pk: { id: todoId }, values: { title: 'gone' }, hlc: past() },
        { table: 'todos', op: 'delete', pk: { id: todoId }, hlc: past() },
      ]),
    );
    expect([...applied.tables].sort()).toEqual(['lists', 'todos']);
    expect(await list()).toMatchObject({ name: 'C' });
    expect(await db.select().from(todos)).toEqual([]);
    expect(replica.cursor).toBe('15');
    expect(await storedCursor(db)).toBe('15');
    // Capture was off: nothing echoes into the outbox; and it is on again afterwards.
    expect(await outbox(db)).toEqual([]);
    expect(await raw(db, 'SELECT enabled FROM _syncline_capture')).toEqual([{ enabled: 1 }]);
  });

  it('applies nothing and keeps the cursor when a change fails in the middle', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '3');
    const bad = changesMessage('3', '5', [
      insertList('A'),
      { table: 'lists', op: 'update', pk: { id: listId }, values: { name: 42 }, hlc: past() },
    ]);
    await expect(replica.applyChanges(bad)).rejects.toThrow(SyncProtocolError);
    await expect(replica.applyChanges(bad)).rejects.toThrow(/lists\.name/);
    expect(await db.select().from(lists)).toEqual([]);
    expect(replica.cursor).toBe('3');
    expect(await storedCursor(db)).toBe('3');
    expect(await raw(db, 'SELECT enabled FROM _syncline_capture')).toEqual([{ enabled: 1 }]);
  });

  it('applied carefully, a change the database refuses is skipped and reported; the rest apply and the cursor moves', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '3');
    const other = uuidOf(9);
    const bad = changesMessage('3', '6', [
      insertList('A'),
      { table: 'lists', op: 'update', pk: { id: listId }, values: { name: 42 }, hlc: past() },
      {
        table: 'lists',
        op: 'insert',
        pk: { id: other },
        values: { id: other, name: 'B', owner_id: 'u1' },
        hlc: past(),
      },
    ]);
    const applied = await replica.applyChanges(bad, false, true);
    expect(applied.failed.map((e) => [e.table, e.pk])).toEqual([['lists', { id: listId }]]);
    expect(applied.failed[0].message).toMatch(/could not apply the server's update of lists .*lists\.name/);
    expect(applied.refetch).toEqual([{ table: 'lists', pk: { id: listId } }]);
    expect((await db.select().from(lists)).map((l) => [l.id, l.name])).toEqual([
      [listId, 'A'],
      [other, 'B'],
    ]);
    expect(await storedCursor(db)).toBe('6');
    expect(await raw(db, 'SELECT enabled FROM _syncline_capture')).toEqual([{ enabled: 1 }]);
  });

  it('never creates a row from an insert without every column: it fetches the row, and fills in one it holds', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '3');
    const partial = (id: string): ChangeJson => ({
      table: 'lists',
      op: 'insert',
      pk: { id },
      values: { id, name: 'partial' },
      hlc: past(),
    });
    await replica.applyChanges(changesMessage('3', '4', [insertList('whole')]));
    const other = uuidOf(9);
    const applied = await replica.applyChanges(changesMessage('4', '6', [partial(listId), partial(other)]));
    expect(applied.refetch).toEqual([
      { table: 'lists', pk: { id: listId } },
      { table: 'lists', pk: { id: other } },
    ]);
    expect(await db.select().from(lists)).toEqual([{ id: listId, name: 'partial', ownerId: 'u1' }]);
  });

  it('remembers the rows to fetch again across a restart', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'syncline-unresolved-')), 'client.db');
    db = await openDatabase(clientSchema, sqlite({ path }));
    replica = new LocalReplica(db);
    await replica.open();
    replica.unresolve([{ table: 'lists', pk: { id: listId } }]);
    await waitFor(
      async () =>
        (await raw(db, "SELECT value FROM _syncline_state WHERE key = 'unresolved_rows'")).length > 0,
      5000,
      'the rows to be stored',
    );
    await db.close();
    db = await openDatabase(clientSchema, sqlite({ path }));
    replica = new LocalReplica(db);
    await replica.open();
    expect([...replica.unresolved.values()]).toEqual([{ table: 'lists', pk: { id: listId } }]);
    await replica.applyFetched({
      type: 'rows',
      v: 1,
      rows: [{ table: 'lists', pk: { id: listId }, row: null }],
    });
    expect(replica.unresolved.size).toBe(0);
  });

  it('refuses changes that do not start at the cursor, and skips a duplicate', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '7');
    await expect(replica.applyChanges(changesMessage('8', '9', [insertList('A')]))).rejects.toThrow(
      CursorGapError,
    );
    await expect(replica.applyChanges(changesMessage('6', '9', [insertList('A')]))).rejects.toThrow(
      /changes from position 6, but this client's cursor is 7/,
    );
    const duplicate = await replica.applyChanges(changesMessage('5', '7', [insertList('A')]));
    expect(duplicate.skipped).toBe(true);
    expect(await db.select().from(lists)).toEqual([]);
  });

  it('keeps a column whose pending local write is newer, and takes the server value of the others', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    await replica.applyChanges(changesMessage('0', '1', [insertList('A')]));
    await db.update(lists).set({ name: 'local' }).where(eq(lists.id, listId));
    await replica.stamp();
    await replica.applyChanges(
      changesMessage('1', '2', [
        {
          table: 'lists',
          op: 'update',
          pk: { id: listId },
          values: { name: 'server', owner_id: 'u9' },
          hlc: past(),
        },
      ]),
    );
    expect(await list()).toEqual({ id: listId, name: 'local', ownerId: 'u9' });
    // A newer server write wins over the pending one.
    await replica.applyChanges(
      changesMessage('2', '3', [
        { table: 'lists', op: 'update', pk: { id: listId }, values: { name: 'newer' }, hlc: future() },
      ]),
    );
    expect(await list()).toMatchObject({ name: 'newer' });
  });

  it('a row a remote parent delete cascaded away comes back with its pending local values, not older remote ones', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    await replica.applyChanges(changesMessage('0', '1', [insertList('A')]));
    // A local todo, pending (newer than anything the server sends below).
    await db.insert(todos).values({ ...todoRowApp('mine'), done: true });
    await replica.stamp();
    const older = past();
    const otherList = uuidOf(7);
    await replica.applyChanges(
      changesMessage('1', '5', [
        // Another client deleted the list (its todo with it) and inserted the todo in another
        // list, older than the local insert.
        { table: 'todos', op: 'delete', pk: { id: todoId }, hlc: older },
        { table: 'lists', op: 'delete', pk: { id: listId }, hlc: older },
        {
          table: 'lists',
          op: 'insert',
          pk: { id: otherList },
          values: { id: otherList, name: 'B', owner_id: 'u2' },
          hlc: older,
        },
        {
          table: 'todos',
          op: 'insert',
          pk: { id: todoId },
          values: { ...todoRow('theirs'), list_id: otherList, done: false },
          hlc: older,
        },
      ]),
    );
    // The local insert is newer: every column keeps its local value, as the server will have it.
    const [todo] = await db.select().from(todos);
    expect(todo).toMatchObject({ id: todoId, title: 'mine', done: true, listId });
  });

  it('treats a pending write not stamped yet as newer than anything', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    await replica.applyChanges(changesMessage('0', '1', [insertList('A')]));
    await db.update(lists).set({ name: 'unstamped' }).where(eq(lists.id, listId));
    await replica.applyChanges(changesMessage('1', '2', [insertList('server', future())]));
    expect(await list()).toMatchObject({ name: 'unstamped' });
  });

  it('applies a remote delete over pending updates, but not over a newer pending insert', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    await replica.applyChanges(changesMessage('0', '1', [insertList('A')]));
    await db.update(lists).set({ name: 'edited' }).where(eq(lists.id, listId));
    await replica.stamp();
    await replica.applyChanges(
      changesMessage('1', '2', [{ table: 'lists', op: 'delete', pk: { id: listId }, hlc: future() }]),
    );
    expect(await db.select().from(lists)).toEqual([]);

    await db.insert(lists).values({ id: listId, name: 'mine', ownerId: 'u1' });
    await replica.stamp();
    await replica.applyChanges(
      changesMessage('2', '3', [{ table: 'lists', op: 'delete', pk: { id: listId }, hlc: past() }]),
    );
    expect(await list()).toMatchObject({ name: 'mine' });
  });

  it('does not bring back a row a newer pending delete removed', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    await replica.applyChanges(changesMessage('0', '1', [insertList('A')]));
    await db.delete(lists).where(eq(lists.id, listId));
    await replica.stamp();
    await replica.applyChanges(changesMessage('1', '2', [insertList('older')]));
    expect(await db.select().from(lists)).toEqual([]);
    await replica.applyChanges(changesMessage('2', '3', [insertList('newer', future())]));
    expect(await list()).toMatchObject({ name: 'newer' });
  });

  it('applies a child before its parent, and enforces foreign keys again afterwards', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    await replica.applyChanges(
      changesMessage('0', '1', [
        { table: 'todos', op: 'insert', pk: { id: todoId }, values: todoRow('orphan'), hlc: past() },
      ]),
    );
    expect(await db.select().from(todos)).toHaveLength(1);
    await expect(
      db.insert(todos).values({ listId: '3f333df6-90a4-4fda-8dd3-9485d27cee36', title: 'x' }),
    ).rejects.toThrow(ConstraintError);
  });

  it('applies with foreign keys on when nothing breaks them, and again with them off, once, when something does', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    const orphanId = '9b2e3c1a-5d4f-4e6a-8b7c-0d1e2f3a4b5c';
    await replica.applyChanges(
      changesMessage('0', '3', [
        insertList('Groceries'),
        { table: 'todos', op: 'insert', pk: { id: todoId }, values: todoRow('milk'), hlc: past() },
        {
          table: 'todos',
          op: 'insert',
          pk: { id: orphanId },
          values: { ...todoRow('orphan'), id: orphanId, list_id: '3f333df6-90a4-4fda-8dd3-9485d27cee36' },
          hlc: past(),
        },
      ]),
    );
    // The first try broke a foreign key and was rolled back: every row is there once.
    expect((await db.select().from(todos)).map((t) => t.title).sort()).toEqual(['milk', 'orphan']);
    expect(await storedCursor(db)).toBe('3');
    expect(await outbox(db)).toEqual([]);
    expect(await raw(db, 'PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);

    // A delete that breaks nothing runs with the schema's own foreign keys: the list's todos go
    // with it, as they did on the server (whose deletes of them may come in a later message).
    await replica.applyChanges(
      changesMessage('3', '4', [{ table: 'lists', op: 'delete', pk: { id: listId }, hlc: past() }]),
    );
    expect((await db.select().from(todos)).map((t) => t.title)).toEqual(['orphan']);
    expect(await outbox(db)).toEqual([]);
  });

  it('merges received stamps, so later local stamps are newer', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    const ahead = serverStamp(Date.now() + 30_000, 5);
    await replica.applyChanges(changesMessage('0', '1', [insertList('A', ahead)]));
    await db.update(lists).set({ name: 'B' }).where(eq(lists.id, listId));
    await replica.stamp();
    expect((await outbox(db))[0].hlc! > ahead).toBe(true);
  });

  it('names the table when the server sends one this client does not sync', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '0');
    const drafts: ChangeJson = { table: 'drafts', op: 'delete', pk: { id: listId }, hlc: past() };
    await expect(replica.applyChanges(changesMessage('0', '1', [drafts]))).rejects.toThrow(
      /table "drafts", which is not a synced table/,
    );
  });

  it("keeps the cursor and the clock's last stamp in the capture row, and moves an older client's cursor there", async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '4');
    const stamp = serverStamp(Date.now() - 1_000);
    await replica.applyChanges(changesMessage('4', '5', [insertList('A', stamp)]));
    const [row] = await raw(db, 'SELECT enabled, cursor, last_hlc FROM _syncline_capture');
    expect(row).toEqual({ enabled: 1, cursor: '5', last_hlc: replica.clock.last });
    expect(row.last_hlc > stamp).toBe(true);

    // The layout of an older client: a capture row of one column, the cursor in _syncline_state.
    await raw(db, 'DROP TABLE _syncline_capture');
    await raw(db, 'CREATE TABLE _syncline_capture (enabled INTEGER NOT NULL)');
    await raw(db, 'INSERT INTO _syncline_capture (enabled) VALUES (1)');
    await raw(db, "INSERT INTO _syncline_state (key, value) VALUES ('cursor', '7')");
    const later = serverStamp(Date.now() + 5_000);
    await raw(
      db,
      "INSERT INTO _syncline_state (key, value) VALUES ('last_hlc', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      [later],
    );
    const again = new LocalReplica(db);
    await again.open();
    expect(again.cursor).toBe('7');
    expect(await storedCursor(db)).toBe('7');
    expect(await raw(db, "SELECT value FROM _syncline_state WHERE key = 'cursor'")).toEqual([]);
    // The stamping pass's last stamp (in _syncline_state) is the later one here: it counts.
    expect(again.clock.last! > later).toBe(true);
    await again.applyChanges(changesMessage('7', '8', [insertList('B', stamp)]));
    expect(await storedCursor(db)).toBe('8');
    expect(await list()).toMatchObject({ name: 'B' });
    // And when the capture row's last stamp is the later one, that one counts.
    const latest = serverStamp(Date.now() + 9_000);
    await raw(db, 'UPDATE _syncline_capture SET last_hlc = ?', [latest]);
    const third = new LocalReplica(db);
    await third.open();
    expect(third.clock.last! > latest).toBe(true);
  });
});
