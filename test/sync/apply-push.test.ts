import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import {
  bigint,
  boolean,
  type Database,
  eq,
  integer,
  numeric,
  primaryKey,
  schema,
  sql,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';
import type { AnyTable } from '../../src/schema/table.js';
import { encodeHlc, HybridLogicalClock } from '../../src/sync/protocol/hlc.js';
import type { BatchJson, ChangeJson } from '../../src/sync/protocol/messages-client.js';
import { encodeRow } from '../../src/sync/protocol/value-codec.js';
import { applyPush, lastMutationId, type PushContext } from '../../src/sync/server/apply-push.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { ChangeLogReader } from '../../src/sync/server/change-log-reader.js';
import { decodeLogRow } from '../../src/sync/server/log-values.js';
import { RuleSet } from '../../src/sync/server/rules.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';

/**
 * Applying pushed batches on the server (docs/sync-internals.md): each batch once, whole or not
 * at all, conflicts settled per column by stamp so that the outcome depends only on the set of
 * batches, rejections recorded and answered with the server's rows, direct writes stamped too.
 */

const lists = table('lists', {
  id: uuid().primaryKey(),
  name: text().notNull().unique(),
  ownerId: text('owner_id').notNull(),
});

const todos = table('todos', {
  id: uuid().primaryKey(),
  listId: uuid('list_id')
    .notNull()
    .references(() => lists.id, { onDelete: 'cascade' }),
  title: text().notNull(),
  done: boolean().notNull().default(false),
  size: bigint(),
});

const seats = table(
  'seats',
  { row: integer().notNull(), seat: integer().notNull(), holder: text(), price: bigint() },
  (t) => [primaryKey({ columns: [t.row, t.seat] })],
);

const ledger = table(
  'ledger',
  { account: bigint().notNull(), at: timestamp().notNull(), amount: numeric().notNull() },
  (t) => [primaryKey({ columns: [t.account, t.at] })],
);

const pushSchema = schema({ lists, todos, seats, ledger });
type Db = Database<typeof pushSchema>;

/** Stamps well inside the clock's 60 s window: `at(n)` is n ms after a fixed base. */
const base = Date.now() - 30_000;
const at = (ms: number, node = 'client-a', counter = 0) =>
  encodeHlc({ wallMs: base + ms, counter, nodeId: node });

function key(t: AnyTable, pk: Record<string, unknown>) {
  return encodeRow(t, pk);
}
const ins = (t: AnyTable, row: Record<string, unknown>, hlc: string): ChangeJson => {
  const pk = Object.fromEntries(t.$primaryKeyColumns.map((c) => [c.name, row[c.name]]));
  return { table: t.$name, op: 'insert', pk: key(t, pk), values: encodeRow(t, row), hlc };
};
const upd = (
  t: AnyTable,
  pk: Record<string, unknown>,
  values: Record<string, unknown>,
  hlc: string,
): ChangeJson => ({
  table: t.$name,
  op: 'update',
  pk: key(t, pk),
  values: encodeRow(t, values),
  hlc,
});
const del = (t: AnyTable, pk: Record<string, unknown>, hlc: string): ChangeJson => ({
  table: t.$name,
  op: 'delete',
  pk: key(t, pk),
  hlc,
});

dialectSuite(
  'apply push',
  (env) => {
    async function open() {
      const db = await env.open(pushSchema);
      await installCapture(db, pushSchema.tableList);
      return db;
    }
    function client(db: Db, overrides: Partial<PushContext> = {}): PushContext {
      return {
        db,
        schema: pushSchema,
        clientId: randomUUID(),
        user: { userId: 'u1' },
        rules: new RuleSet(pushSchema, undefined),
        clock: new HybridLogicalClock('server'),
        ...overrides,
      };
    }
    let nextId = 1;
    const batch = (...changes: ChangeJson[]): BatchJson => ({ mutationId: nextId++, changes });
    const listRow = async (db: Db, id: string) => (await db.select().from(lists).where(eq(lists.id, id)))[0];
    const stampsOf = async (db: Db, t: string, pk: Record<string, unknown>) =>
      (
        await db.execute<{
          cols: Record<string, string>;
          created: string | null;
          deleted: string | null;
          image: Record<string, unknown> | null;
        }>(
          sql`select cols, created, deleted, image from _syncline_stamps where table_name = ${t} and pk = ${JSON.stringify(pk)}::jsonb`,
        )
      )[0];

    it('insert of a missing row: inserted, every column stamped, created set', async () => {
      const db = await open();
      const ctx = client(db);
      const id = randomUUID();
      const result = await applyPush(ctx, [batch(ins(lists, { id, name: 'A', owner_id: 'u1' }, at(1)))]);
      expect(result).toEqual([{ mutationId: nextId - 1, status: 'applied' }]);
      expect(await listRow(db, id)).toEqual({ id, name: 'A', ownerId: 'u1' });
      expect(await stampsOf(db, 'lists', { id })).toEqual({
        cols: { id: at(1), name: at(1), owner_id: at(1) },
        created: at(1),
        deleted: null,
        image: null,
      });
    });

    it('insert of a missing row behind a newer tombstone is dropped; behind an older one it re-creates', async () => {
      const db = await open();
      const ctx = client(db);
      const [x, y] = [randomUUID(), randomUUID()];
      // Tombstones of rows that existed: one left by a delete of a key no one wrote stops nothing
      // (test/security/phantom-tombstones.test.ts).
      await applyPush(ctx, [
        batch(
          ins(lists, { id: x, name: 'X0', owner_id: 'u1' }, at(0)),
          ins(lists, { id: y, name: 'Y0', owner_id: 'u1' }, at(0)),
        ),
        batch(del(lists, { id: x }, at(5)), del(lists, { id: y }, at(1))),
      ]);
      await applyPush(ctx, [
        batch(ins(lists, { id: x, name: 'X', owner_id: 'u1' }, at(5, 'client-0'))),
        batch(ins(lists, { id: y, name: 'Y', owner_id: 'u1' }, at(2))),
      ]);
      expect(await listRow(db, x)).toBeUndefined();
      expect(await listRow(db, y)).toEqual({ id: y, name: 'Y', ownerId: 'u1' });
      expect((await stampsOf(db, 'lists', { id: y }))?.deleted).toBeNull();
    });

    it('insert or update of an existing row sets exactly the columns whose stamps are older', async () => {
      const db = await open();
      const ctx = client(db);
      const id = randomUUID();
      await applyPush(ctx, [
        batch(ins(lists, { id, name: 'first', owner_id: 'u1' }, at(1))),
        batch(upd(lists, { id }, { name: 'newest' }, at(9))),
      ]);
      await applyPush(client(db), [
        batch(ins(lists, { id, name: 'late insert', owner_id: 'u2' }, at(5, 'client-b'))),
      ]);
      expect(await listRow(db, id)).toEqual({ id, name: 'newest', ownerId: 'u2' });
      await applyPush(client(db), [
        batch(upd(lists, { id }, { name: 'old', owner_id: 'u3' }, at(7, 'client-c'))),
      ]);
      expect(await listRow(db, id)).toEqual({ id, name: 'newest', ownerId: 'u3' });
      expect(await stampsOf(db, 'lists', { id })).toMatchObject({
        cols: { id: at(1), name: at(9), owner_id: at(7, 'client-c') },
        created: at(5, 'client-b'),
      });
    });

    it('update of a missing row is dropped, even with the newest stamp', async () => {
      const db = await open();
      const ctx = client(db);
      const id = randomUUID();
      await applyPush(ctx, [
        batch(ins(lists, { id, name: 'gone', owner_id: 'u1' }, at(1))),
        batch(del(lists, { id }, at(2))),
      ]);
      const [result] = await applyPush(ctx, [batch(upd(lists, { id }, { name: 'revived?' }, at(50)))]);
      expect(result!.status).toBe('applied');
      expect(await listRow(db, id)).toBeUndefined();
      await applyPush(ctx, [batch(upd(lists, { id: randomUUID() }, { name: 'never was' }, at(51)))]);
      expect(await db.select().from(lists)).toEqual([]);
    });

    it('delete: removes a row created before it, spares one re-created after it, keeps the newest tombstone', async () => {
      const db = await open();
      const ctx = client(db);
      const [x, y, z] = [randomUUID(), randomUUID(), randomUUID()];
      await applyPush(ctx, [
        batch(
          ins(lists, { id: x, name: 'X', owner_id: 'u1' }, at(1)),
          ins(lists, { id: y, name: 'Y', owner_id: 'u1' }, at(1)),
          ins(lists, { id: z, name: 'Z', owner_id: 'u1' }, at(1)),
        ),
        batch(del(lists, { id: x }, at(3))),
      ]);
      await applyPush(client(db), [batch(del(lists, { id: y }, at(0, 'client-old')))]);
      await applyPush(client(db), [batch(del(lists, { id: z }, at(8)))]);
      await applyPush(client(db), [batch(del(lists, { id: z }, at(4)))]);
      expect(await listRow(db, x)).toBeUndefined();
      expect((await stampsOf(db, 'lists', { id: x }))?.deleted).toBe(at(3));
      expect(await listRow(db, y)).toEqual({ id: y, name: 'Y', ownerId: 'u1' });
      expect((await stampsOf(db, 'lists', { id: z }))?.deleted).toBe(at(8));
    });

    it('rows that existed before capture count as older than every stamp', async () => {
      const db = await env.open(pushSchema);
      const id = randomUUID();
      await db.insert(lists).values({ id, name: 'legacy', ownerId: 'u0' });
      await installCapture(db, pushSchema.tableList);
      await applyPush(client(db), [batch(upd(lists, { id }, { name: 'synced' }, at(-20_000)))]);
      expect((await listRow(db, id))?.name).toBe('synced');
      await applyPush(client(db), [batch(del(lists, { id }, at(-20_000, 'b')))]);
      expect(await listRow(db, id)).toBeUndefined();
    });

    it('within one batch later changes of a row win: insert, update, delete, insert again', async () => {
      const db = await open();
      const h = at(1);
      const [x, y] = [randomUUID(), randomUUID()];
      await applyPush(client(db), [
        batch(
          ins(lists, { id: x, name: 'x1', owner_id: 'u1' }, h),
          upd(lists, { id: x }, { name: 'x2' }, h),
          upd(lists, { id: x }, { name: 'x3' }, h),
          ins(lists, { id: y, name: 'y1', owner_id: 'u1' }, h),
          del(lists, { id: y }, h),
          ins(lists, { id: y, name: 'y2', owner_id: 'u2' }, h),
        ),
      ]);
      expect(await db.select().from(lists).orderBy(lists.name)).toEqual([
        { id: x, name: 'x3', ownerId: 'u1' },
        { id: y, name: 'y2', ownerId: 'u2' },
      ]);
    });

    it('the outcome is the same whatever order concurrent batches arrive in', async () => {
      const db = await open();
      const order = (items: number[]): number[][] =>
        items.length <= 1
          ? [items]
          : items.flatMap((x) => order(items.filter((y) => y !== x)).map((p) => [x, ...p]));
      const outcomes = new Set<string>();
      for (const permutation of order([0, 1, 2, 3])) {
        const [listId, x, y] = [randomUUID(), randomUUID(), randomUUID()];
        const name = `list ${listId}`;
        // The insert comes first (the others were made by clients that had seen it); the rest
        // are concurrent: two updates of x, a delete of y, and a newer re-insert of y.
        const concurrent: ChangeJson[][] = [
          [upd(todos, { id: x }, { title: 'b', size: 2n ** 60n }, at(30, 'b'))],
          [upd(todos, { id: x }, { title: 'c', done: true }, at(20, 'c'))],
          [del(todos, { id: y }, at(40, 'd'))],
          [ins(todos, { id: y, list_id: listId, title: 'y again', done: true, size: null }, at(50, 'e'))],
        ];
        await applyPush(client(db), [
          batch(
            ins(lists, { id: listId, name, owner_id: 'u1' }, at(10, 'a')),
            ins(todos, { id: x, list_id: listId, title: 'a', done: false, size: 1n }, at(10, 'a')),
            ins(todos, { id: y, list_id: listId, title: 'y', done: false, size: null }, at(10, 'a')),
          ),
        ]);
        for (const i of permutation) await applyPush(client(db), [batch(...concurrent[i]!)]);
        const rows = await db.select().from(todos).where(eq(todos.listId, listId));
        const shown = rows
          .map((r) => ({ ...r, id: r.id === x ? 'x' : 'y', listId: '-', size: String(r.size) }))
          .sort((a, b) => (a.id < b.id ? -1 : 1));
        outcomes.add(JSON.stringify(shown));
      }
      expect([...outcomes]).toEqual([
        JSON.stringify([
          { id: 'x', listId: '-', title: 'b', done: true, size: String(2n ** 60n) },
          { id: 'y', listId: '-', title: 'y again', done: true, size: 'null' },
        ]),
      ]);
    });

    it('a row deleted and re-created ends the same whatever order updates of it arrive in', async () => {
      const db = await open();
      const order = (items: number[]): number[][] =>
        items.length <= 1
          ? [items]
          : items.flatMap((x) => order(items.filter((y) => y !== x)).map((p) => [x, ...p]));
      const outcomes = new Map<string, string>();
      for (const permutation of order([0, 1, 2, 3])) {
        const [listId, y] = [randomUUID(), randomUUID()];
        await applyPush(client(db), [
          batch(
            ins(lists, { id: listId, name: `list ${listId}`, owner_id: 'u1' }, at(10, 'a')),
            ins(todos, { id: y, list_id: listId, title: 'y', done: false, size: 1n }, at(10, 'a')),
          ),
        ]);
        // Concurrent with each other, all made by clients that had seen the first y: a delete, an
        // update between it and the newer re-insert (the insert's values win), one newer than the
        // re-insert (it wins for its column, also when it arrives while y is deleted).
        const concurrent: ChangeJson[][] = [
          [del(todos, { id: y }, at(40, 'c'))],
          [upd(todos, { id: y }, { title: 'between', size: 9n }, at(45, 'd'))],
          [ins(todos, { id: y, list_id: listId, title: 'again', done: false, size: 5n }, at(50, 'e'))],
          [upd(todos, { id: y }, { done: true }, at(60, 'f'))],
        ];
        for (const i of permutation) await applyPush(client(db), [batch(...concurrent[i]!)]);
        const rows = await db.select().from(todos).where(eq(todos.listId, listId));
        const shown = JSON.stringify(rows.map((r) => ({ ...r, id: '-', listId: '-', size: String(r.size) })));
        outcomes.set(shown, `${outcomes.get(shown) ?? ''} ${permutation.join('')}`);
      }
      expect([...outcomes.keys()]).toEqual([
        JSON.stringify([{ id: '-', listId: '-', title: 'again', done: true, size: '5' }]),
      ]);
    });

    it('an update of a deleted row is asked about as of the delete, and kept only when newer than it', async () => {
      const db = await open();
      const rules = new RuleSet(pushSchema, {
        lists: { read: () => true, write: (user, row) => row.ownerId === user.userId },
      });
      const as = (userId: string) => client(db, { user: { userId }, rules });
      const id = randomUUID();
      await applyPush(as('u1'), [batch(ins(lists, { id, name: 'mine', owner_id: 'u1' }, at(1)))]);
      await applyPush(as('u1'), [batch(del(lists, { id }, at(5)))]);
      // The row as it was deleted belonged to u1: u2 may not change it, as before the delete.
      const [refused] = await applyPush(as('u2'), [batch(upd(lists, { id }, { name: 'hijack' }, at(9)))]);
      expect(refused).toMatchObject({
        status: 'rejected',
        rows: [{ table: 'lists', pk: { id }, row: null }],
      });
      const [older] = await applyPush(as('u1'), [batch(upd(lists, { id }, { name: 'too old' }, at(4)))]);
      const [newer] = await applyPush(as('u1'), [batch(upd(lists, { id }, { name: 'renamed' }, at(9)))]);
      expect([older, newer]).toMatchObject([{ status: 'applied' }, { status: 'applied' }]);
      expect(await listRow(db, id)).toBeUndefined();
      // The image is the row as the delete logged it; the rename that won is kept beside it.
      expect(await stampsOf(db, 'lists', { id })).toEqual({
        cols: { id: at(1), name: { hlc: at(9), value: 'renamed' }, owner_id: at(1) },
        created: at(1),
        deleted: at(5),
        image: { id, name: 'mine', owner_id: 'u1' },
      });
      // A re-insert newer than the delete and older than the rename: the rename still wins.
      await applyPush(as('u1'), [batch(ins(lists, { id, name: 'back', owner_id: 'u1' }, at(7)))]);
      expect(await listRow(db, id)).toEqual({ id, name: 'renamed', ownerId: 'u1' });
      expect(await stampsOf(db, 'lists', { id })).toEqual({
        cols: { id: at(7), name: at(9), owner_id: at(7) },
        created: at(7),
        deleted: null,
        image: null,
      });
    });

    it('stamps an older version left for a row it deleted (every column with its value, no image) still settle', async () => {
      const db = await open();
      const id = randomUUID();
      const cols = {
        id: { hlc: at(1), value: id },
        name: { hlc: at(1), value: 'old' },
        owner_id: { hlc: null, value: 'u1' },
      };
      await db.execute(
        sql`insert into _syncline_stamps (table_name, pk, cols, created, deleted)
            values ('lists', ${JSON.stringify({ id })}::jsonb, ${JSON.stringify(cols)}::jsonb, ${at(1)}, ${at(5)})`,
      );
      await applyPush(client(db), [batch(upd(lists, { id }, { name: 'renamed' }, at(9)))]);
      expect((await stampsOf(db, 'lists', { id }))?.cols).toEqual({
        ...cols,
        name: { hlc: at(9), value: 'renamed' },
      });
      // Re-created older than the rename: the rename wins; the column without a stamp takes the insert's.
      await applyPush(client(db), [batch(ins(lists, { id, name: 'back', owner_id: 'u2' }, at(7)))]);
      expect(await listRow(db, id)).toEqual({ id, name: 'renamed', ownerId: 'u2' });
      expect(await stampsOf(db, 'lists', { id })).toEqual({
        cols: { id: at(7), name: at(9), owner_id: at(7) },
        created: at(7),
        deleted: null,
        image: null,
      });
    });

    it('a batch sent twice is applied once and answered applied again', async () => {
      const db = await open();
      const ctx = client(db);
      const id = randomUUID();
      const once = batch(ins(lists, { id, name: 'once', owner_id: 'u1' }, at(1)));
      await applyPush(ctx, [once]);
      await db.update(lists).set({ name: 'changed directly' }).where(eq(lists.id, id));
      const reader = new ChangeLogReader(db);
      const before = (await reader.readNew()).to;
      // Answered applied again, with the server's rows (the first ack may have carried rows that lost).
      expect(await applyPush(ctx, [once])).toEqual([
        {
          mutationId: once.mutationId,
          status: 'applied',
          rows: [{ table: 'lists', pk: { id }, row: { id, name: 'changed directly', owner_id: 'u1' } }],
        },
      ]);
      expect((await listRow(db, id))?.name).toBe('changed directly');
      expect((await reader.readNew()).to).toBe(before);
      expect(await lastMutationId(db, ctx.clientId)).toBe(once.mutationId);
      expect(await lastMutationId(db, randomUUID())).toBe(0);
      // The client id is bound to its user: another user cannot move its mutation ids.
      await expect(applyPush({ ...ctx, user: { userId: 'mallory' } }, [once])).rejects.toThrow(
        /belongs to another user/,
      );
    });

    it('the log carries the batch stamp, client and mutation id, and values that decode', async () => {
      const db = await open();
      const ctx = client(db);
      const reader = new ChangeLogReader(db);
      const id = randomUUID();
      const listId = randomUUID();
      const first = batch(
        ins(lists, { id: listId, name: 'L', owner_id: 'u1' }, at(1)),
        ins(todos, { id, list_id: listId, title: 't', done: false, size: 2n ** 62n }, at(1)),
      );
      const second = batch(upd(todos, { id }, { done: true, size: -1n }, at(2)));
      await applyPush(ctx, [first, second]);
      await db.update(todos).set({ title: 'direct' }).where(eq(todos.id, id));
      const { changes } = await reader.readNew();
      expect(changes.map((c) => [c.table, c.op, c.hlc, c.origin, c.mutationId])).toEqual([
        ['lists', 'insert', at(1), ctx.clientId, first.mutationId],
        ['todos', 'insert', at(1), ctx.clientId, first.mutationId],
        ['todos', 'update', at(2), ctx.clientId, second.mutationId],
        ['todos', 'update', expect.stringMatching(/^\d{13}-00000-postgres$/), undefined, undefined],
      ]);
      expect(decodeLogRow(todos, changes[1]!.row)).toEqual({
        id,
        list_id: listId,
        title: 't',
        done: false,
        size: 2n ** 62n,
      });
      expect(decodeLogRow(todos, changes[2]!.oldValues!)).toEqual({ done: false, size: 2n ** 62n });
      expect(changes[3]!.oldValues).toEqual({ title: 't' });
    });

    it('direct writes are stamped by the trigger, so a later push with an older stamp loses', async () => {
      const db = await open();
      const id = randomUUID();
      await db.insert(lists).values({ id, name: 'direct', ownerId: 'u1' });
      const stamps = await stampsOf(db, 'lists', { id });
      expect(stamps?.created).toMatch(/^\d{13}-00000-postgres$/);
      expect(stamps?.cols).toEqual({ id: stamps?.created, name: stamps?.created, owner_id: stamps?.created });
      await applyPush(client(db), [batch(upd(lists, { id }, { name: 'stale', owner_id: 'u2' }, at(1)))]);
      expect(await listRow(db, id)).toEqual({ id, name: 'direct', ownerId: 'u1' });
      // A stamp newer than the direct write wins; a direct update stamps only the columns it changed.
      const newer = encodeHlc({ wallMs: Date.now() + 5_000, counter: 0, nodeId: 'client-a' });
      await applyPush(client(db), [batch(upd(lists, { id }, { name: 'fresh' }, newer))]);
      await db.update(lists).set({ ownerId: 'u9', name: 'fresh' }).where(eq(lists.id, id));
      const after = await stampsOf(db, 'lists', { id });
      expect(after?.cols.name).toBe(newer);
      expect(after?.cols.owner_id).toMatch(/-postgres$/);
      await db.delete(lists).where(eq(lists.id, id));
      // A direct delete keeps the row's image, as a pushed one does.
      expect(await stampsOf(db, 'lists', { id })).toMatchObject({
        deleted: expect.stringMatching(/-postgres$/),
        image: { id, name: 'fresh', owner_id: 'u9' },
      });
    });

    it('finds the stamps of direct writes under bigint, timestamp and composite keys', async () => {
      const db = await open();
      const pk = { account: 2n ** 62n + 1n, at: new Date('2024-03-04T05:06:07.890Z') };
      await db.insert(ledger).values({ ...pk, amount: '10.00' });
      const sqlKey = { account: pk.account, at: pk.at };
      await applyPush(client(db), [batch(upd(ledger, sqlKey, { amount: '1' }, at(1)))]);
      expect((await db.select().from(ledger))[0]?.amount).toBe('10.00');
      const newer = encodeHlc({ wallMs: Date.now() + 5_000, counter: 0, nodeId: 'client-a' });
      await applyPush(client(db), [batch(upd(ledger, sqlKey, { amount: '99.5' }, newer))]);
      expect((await db.select().from(ledger))[0]?.amount).toBe('99.5');
      const stamps = await db.execute<{ pk: unknown }>(
        sql`select pk from _syncline_stamps where table_name = 'ledger'`,
      );
      expect(stamps).toEqual([{ pk: { account: String(pk.account), at: '2024-03-04T05:06:07.89+00:00' } }]);
    });

    it('writes many rows per statement: composite keys, bulk inserts and bulk updates', async () => {
      const db = await open();
      const ctx = client(db);
      const all = Array.from({ length: 300 }, (_, i) => ({ row: Math.floor(i / 20), seat: i % 20 }));
      await applyPush(ctx, [
        batch(...all.map((k) => ins(seats, { ...k, holder: null, price: 100n }, at(1)))),
      ]);
      await applyPush(ctx, [
        batch(
          ...all.map((k) => upd(seats, k, { holder: `h${k.row}-${k.seat}`, price: 2n ** 63n - 1n }, at(2))),
          ...all.slice(0, 10).map((k) => del(seats, k, at(2))),
        ),
      ]);
      const rows = await db.select().from(seats).orderBy(seats.row, seats.seat);
      expect(rows.length).toBe(290);
      expect(rows[0]).toEqual({ row: 0, seat: 10, holder: 'h0-10', price: 2n ** 63n - 1n });
      expect(await stampsOf(db, 'seats', { row: 14, seat: 19 })).toMatchObject({ cols: { holder: at(2) } });
    });

    it('rejects a batch with a stamp too far ahead, an unknown table or column, or a changed key', async () => {
      const db = await open();
      const ctx = client(db);
      const id = randomUUID();
      const future = encodeHlc({ wallMs: Date.now() + 3_600_000, counter: 0, nodeId: 'client-a' });
      const results = await applyPush(ctx, [
        batch(ins(lists, { id, name: 'future', owner_id: 'u1' }, future)),
        batch({ table: 'nope', op: 'delete', pk: { id }, hlc: at(1) }),
        batch({ table: 'lists', op: 'update', pk: { id }, values: { colour: 'red' }, hlc: at(1) }),
        batch({ table: 'lists', op: 'update', pk: { id }, values: { id: randomUUID() }, hlc: at(1) }),
        batch({ table: 'lists', op: 'delete', pk: { name: 'x' }, hlc: at(1) }),
      ]);
      expect(results.map((r) => r.status)).toEqual([
        'rejected',
        'rejected',
        'rejected',
        'rejected',
        'rejected',
      ]);
      const reasons = results.map((r) => (r.status === 'rejected' ? r.reason : ''));
      expect(reasons[0]).toMatch(/ahead of this clock/);
      expect(reasons[1]).toMatch(/unknown table "nope"/);
      expect(reasons[2]).toMatch(/has no column "colour"/);
      expect(reasons[3]).toMatch(/cannot alter the primary key column id/);
      expect(reasons[4]).toMatch(/primary key must have exactly the columns id/);
      expect(results[0]).toMatchObject({ rows: [{ table: 'lists', pk: { id }, row: null }] });
      expect(await db.select().from(lists)).toEqual([]);
    });

    it('a constraint violation rejects the whole batch, restores its rows, and is answered the same when resent', async () => {
      const db = await open();
      const ctx = client(db);
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
      await applyPush(ctx, [batch(ins(lists, { id: a, name: 'taken', owner_id: 'u1' }, at(1)))]);
      const reader = new ChangeLogReader(db);
      const logged = (await reader.readNew()).to;
      const bad = batch(
        upd(lists, { id: a }, { owner_id: 'u2' }, at(2)),
        ins(lists, { id: b, name: 'fine', owner_id: 'u1' }, at(2)),
        ins(lists, { id: c, name: 'taken', owner_id: 'u1' }, at(2)),
      );
      const [result] = await applyPush(ctx, [bad]);
      const expected = {
        mutationId: bad.mutationId,
        status: 'rejected',
        reason: expect.stringMatching(/^unique constraint .* failed on lists\.name/),
        rows: [
          { table: 'lists', pk: { id: a }, row: { id: a, name: 'taken', owner_id: 'u1' } },
          { table: 'lists', pk: { id: b }, row: null },
          { table: 'lists', pk: { id: c }, row: null },
        ],
      };
      expect(result).toEqual(expected);
      expect(await db.select().from(lists)).toEqual([{ id: a, name: 'taken', ownerId: 'u1' }]);
      expect((await reader.readNew()).to).toBe(logged);
      expect(await lastMutationId(db, ctx.clientId)).toBe(bad.mutationId);
      expect(await applyPush(ctx, [bad])).toEqual([
        { ...expected, reason: (result as { reason: string }).reason },
      ]);
      // Once the client pushes past it, the rejection is forgotten.
      await applyPush(ctx, [batch(upd(lists, { id: a }, { name: 'renamed' }, at(3)))]);
      const left = await db.execute(
        sql`select mutation_id from _syncline_rejections where client_id = ${ctx.clientId}`,
      );
      expect(left).toEqual([]);
    });

    it('not-null and foreign-key violations reject the batch with the database reason', async () => {
      const db = await open();
      const ctx = client(db);
      const [listId, todo] = [randomUUID(), randomUUID()];
      const results = await applyPush(ctx, [
        batch(
          ins(lists, { id: listId, name: 'L', owner_id: 'u1' }, at(1)),
          ins(todos, { id: todo, list_id: listId, title: null, done: false, size: null }, at(1)),
        ),
        batch(ins(todos, { id: todo, list_id: randomUUID(), title: 't', done: false, size: null }, at(2))),
        batch(ins(lists, { id: listId, name: 'L', owner_id: 'u1' }, at(3))),
      ]);
      expect(results.map((r) => [r.status, r.status === 'rejected' ? r.reason : ''])).toEqual([
        ['rejected', expect.stringMatching(/not-null constraint failed on todos\.title/)],
        ['rejected', expect.stringMatching(/foreign key constraint .* failed on todos\.list_id/)],
        ['applied', ''],
      ]);
      expect(await db.select().from(todos)).toEqual([]);
    });

    if (env.driver.name === 'postgres') {
      it('concurrent pushes of the same new rows wait for each other and merge per column', async () => {
        const db = await open();
        const ids = Array.from({ length: 20 }, () => randomUUID());
        const rows = (who: string, ms: number) =>
          batch(...ids.map((id, i) => ins(lists, { id, name: `${who}${i}`, owner_id: who }, at(ms, who))));
        const results = await Promise.all([
          applyPush(client(db), [rows('a', 1)]),
          applyPush(client(db), [rows('b', 2)]),
          applyPush(client(db), [rows('c', 3)]),
        ]);
        expect(results.flat().map((r) => r.status)).toEqual(['applied', 'applied', 'applied']);
        const names = (await db.select().from(lists)).map((r) => r.name).sort();
        expect(names).toEqual(ids.map((_, i) => `c${i}`).sort());
      });
    }
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);
