import { expect, it } from 'vitest';
import { bigint, type Database, integer, primaryKey, schema, sql, table, text } from '../../src/index.js';
import { installCapture } from '../../src/sync/server/capture.js';
import { dialectSuite, testDrivers } from '../support/drivers.js';

/**
 * Updates are captured per statement (their transition tables, old and new rows paired by key),
 * except rows whose key changed, which a row trigger captures one by one: every updated row is
 * logged exactly once, with its own old values and old key, whatever else the statement did
 * (keys swapped between rows, keys moved onto keys other rows left, several statements of one
 * transaction, composite keys), and only rows whose values changed.
 */

const items = table('items', {
  id: integer().primaryKey(),
  value: integer().notNull(),
  label: text().notNull(),
  total: bigint(),
});

const pairs = table('pairs', { a: integer().notNull(), b: text().notNull(), note: text().notNull() }, (t) => [
  primaryKey({ columns: [t.a, t.b] }),
]);

const updatesSchema = schema({ items, pairs });
type Db = Database<typeof updatesSchema>;

interface Logged {
  op: string;
  pk: Record<string, unknown>;
  old_pk: Record<string, unknown> | null;
  row: Record<string, unknown>;
  old_values: Record<string, unknown> | null;
}

dialectSuite(
  'update capture',
  (env) => {
    async function open(): Promise<Db> {
      const db = await env.open(updatesSchema);
      await installCapture(db, updatesSchema.tableList);
      // Swapping keys in one statement needs a key checked at the end of it.
      await db.execute(sql`alter table items drop constraint items_pkey`);
      await db.execute(sql`alter table items add primary key (id) deferrable initially immediate`);
      await db.execute(sql`alter table pairs drop constraint pairs_pkey`);
      await db.execute(sql`alter table pairs add primary key (a, b) deferrable initially immediate`);
      return db;
    }

    const updates = (db: Db) =>
      db.execute<Logged>(
        sql`select op, pk, old_pk, "row", old_values from _syncline_changes where op = 'U' order by id`,
      );
    const byKey = (logged: Logged[]) =>
      [...logged].sort((x, y) => JSON.stringify(x.pk).localeCompare(JSON.stringify(y.pk)));

    async function seed(db: Db, n: number): Promise<void> {
      await db.execute(
        sql`insert into items (id, value, label, total) select i, i, 'row ' || i, i * 10000000000 from generate_series(1, ${n}::int) i`,
      );
    }

    it('logs each changed row of a statement once, with the old values of what changed, and skips unchanged rows', async () => {
      const db = await open();
      await seed(db, 4);
      await db.execute(sql`update items set value = value + case when id <= 2 then 1 else 0 end`);
      await db.execute(sql`update items set label = label, total = total + 1 where id = 3`);
      expect(byKey(await updates(db))).toEqual([
        {
          op: 'U',
          pk: { id: 1 },
          old_pk: null,
          row: { id: 1, value: 2, label: 'row 1', total: '10000000000' },
          old_values: { value: 1 },
        },
        {
          op: 'U',
          pk: { id: 2 },
          old_pk: null,
          row: { id: 2, value: 3, label: 'row 2', total: '20000000000' },
          old_values: { value: 2 },
        },
        {
          op: 'U',
          pk: { id: 3 },
          old_pk: null,
          row: { id: 3, value: 3, label: 'row 3', total: '30000000001' },
          old_values: { total: '30000000000' },
        },
      ]);
    });

    it('keys swapped in one statement are each logged once, with their own old key and values', async () => {
      const db = await open();
      await seed(db, 3);
      await db.execute(
        sql`update items set id = case id when 1 then 2 when 2 then 1 else id end, value = value * 10`,
      );
      expect(byKey(await updates(db))).toEqual([
        {
          op: 'U',
          pk: { id: 1 },
          old_pk: { id: 2 },
          row: { id: 1, value: 20, label: 'row 2', total: '20000000000' },
          old_values: { id: 2, value: 2 },
        },
        {
          op: 'U',
          pk: { id: 2 },
          old_pk: { id: 1 },
          row: { id: 2, value: 10, label: 'row 1', total: '10000000000' },
          old_values: { id: 1, value: 1 },
        },
        {
          op: 'U',
          pk: { id: 3 },
          old_pk: null,
          row: { id: 3, value: 30, label: 'row 3', total: '30000000000' },
          old_values: { value: 3 },
        },
      ]);
      // Stamps: each old key got a tombstone and was written again whole by the other row.
      const stamps = await db.execute<{ pk: { id: number }; deleted: string | null; image: unknown }>(
        sql`select pk, deleted, image from _syncline_stamps order by pk`,
      );
      expect(stamps.map((s) => [s.pk.id, s.deleted === null, s.image])).toEqual([
        [1, true, null],
        [2, true, null],
        [3, true, null],
      ]);
    });

    it('a key moved onto a key another row left, and a row that kept its key, in one statement', async () => {
      const db = await open();
      await seed(db, 3);
      // 1 → 4, 2 → 1; 3 keeps its key: pairing old and new rows by key alone would pair row 1's
      // old values with row 2's new ones.
      await db.execute(
        sql`update items set id = case id when 1 then 4 when 2 then 1 else id end, label = 'moved ' || id where id in (1, 2)`,
      );
      await db.execute(sql`update items set label = 'kept' where id = 3`);
      const logged = byKey(await updates(db));
      expect(logged.map((l) => [l.pk, l.old_pk, l.row.label, l.old_values])).toEqual([
        [{ id: 1 }, { id: 2 }, 'moved 2', { id: 2, label: 'row 2' }],
        [{ id: 3 }, null, 'kept', { label: 'row 3' }],
        [{ id: 4 }, { id: 1 }, 'moved 1', { id: 1, label: 'row 1' }],
      ]);
      const stamps = await db.execute<{ pk: { id: number }; deleted: string | null }>(
        sql`select pk, deleted from _syncline_stamps order by pk`,
      );
      // Key 2 was left and not written again: deleted. Key 1 was left and taken: it exists.
      expect(stamps.map((s) => [s.pk.id, s.deleted !== null])).toEqual([
        [1, false],
        [2, true],
        [3, false],
        [4, false],
      ]);
    });

    it('a later statement of the transaction updating a moved row is logged as an update of its new key', async () => {
      const db = await open();
      await seed(db, 2);
      await db.transaction(async (tx) => {
        await tx.execute(sql`update items set id = 7 where id = 1`);
        await tx.execute(sql`update items set value = 70 where id = 7`);
        await tx.execute(sql`update items set value = 71 where id in (2, 7)`);
      });
      const logged = (await updates(db)).map((l) => [l.pk, l.old_pk, l.old_values]);
      expect(logged.slice(0, 2)).toEqual([
        [{ id: 7 }, { id: 1 }, { id: 1 }],
        [{ id: 7 }, null, { value: 1 }],
      ]);
      expect(logged.slice(2).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual([
        [{ id: 2 }, null, { value: 2 }],
        [{ id: 7 }, null, { value: 70 }],
      ]);
    });

    it('composite keys: a swap of one key part, and a row that kept its key', async () => {
      const db = await open();
      await db.execute(
        sql`insert into pairs (a, b, note) values (1, 'x', 'one'), (2, 'x', 'two'), (3, 'y', 'three')`,
      );
      await db.execute(
        sql`update pairs set a = case a when 1 then 2 when 2 then 1 else a end, note = note || '!'`,
      );
      const logged = byKey(await updates(db));
      expect(logged.map((l) => [l.pk, l.old_pk, l.row.note])).toEqual([
        [{ a: 1, b: 'x' }, { a: 2, b: 'x' }, 'two!'],
        [{ a: 2, b: 'x' }, { a: 1, b: 'x' }, 'one!'],
        [{ a: 3, b: 'y' }, null, 'three!'],
      ]);
    });

    it('a direct insert of deleted keys stamps them whole again, under read committed and repeatable read', async () => {
      const db = await open();
      await seed(db, 3);
      await db.execute(sql`delete from items where id in (1, 2)`);
      await db.execute(sql`insert into items (id, value, label) values (1, 10, 'again'), (4, 40, 'new')`);
      await db.transaction(async (tx) => {
        await tx.execute(sql`set transaction isolation level repeatable read`);
        await tx.execute(sql`insert into items (id, value, label) values (2, 20, 'again'), (5, 50, 'new')`);
      });
      const stamps = await db.execute<{
        pk: { id: number };
        deleted: string | null;
        image: unknown;
        whole: boolean;
      }>(
        sql`select pk, deleted, image, cols ?& array['id', 'value', 'label', 'total'] and created is not null as whole
              from _syncline_stamps order by pk`,
      );
      expect(stamps.map((s) => [s.pk.id, s.deleted, s.image, s.whole])).toEqual([
        [1, null, null, true],
        [2, null, null, true],
        [3, null, null, true],
        [4, null, null, true],
        [5, null, null, true],
      ]);
    });

    it('a statement that changes nothing logs nothing; a big one logs every row once', async () => {
      const db = await open();
      await seed(db, 2_000);
      await db.execute(sql`update items set value = value`);
      expect(await updates(db)).toEqual([]);
      await db.execute(sql`update items set value = -value`);
      const [{ n, distinct }] = await db.execute<{ n: number; distinct: number }>(
        sql`select count(*)::int as n, count(distinct pk)::int as distinct from _syncline_changes where op = 'U'`,
      );
      expect([n, distinct]).toEqual([2_000, 2_000]);
    });
  },
  testDrivers.filter((d) => d.dialect === 'postgres'),
);
