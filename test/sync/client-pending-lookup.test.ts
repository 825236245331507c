import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  bigint,
  blob,
  boolean,
  type Database,
  eq,
  integer,
  openDatabase,
  primaryKey,
  real,
  schema,
  table,
  text,
  timestamp,
} from '../../src/index.js';
import { LocalReplica } from '../../src/sync/client/local-replica.js';
import { OUTBOX_KEY_INDEX_FROM } from '../../src/sync/client/pending-writes.js';
import type { ChangeJson } from '../../src/sync/protocol/messages.js';
import type { JsonValue } from '../../src/sync/protocol/value-codec.js';
import {
  changesMessage,
  lists,
  openReplica,
  outbox,
  raw,
  serverStamp,
  setCursor,
  uuidOf,
} from './client-helpers.js';

/**
 * Applying a server message reads only the pending writes to the rows it touches, by the outbox's
 * `(table_name, pk)` index once the outbox is long (the whole short outbox otherwise): the protection of pending local columns must hold however many
 * unrelated rows are pending, for every kind of primary key the capture triggers write.
 */

let db: Database;
let replica: LocalReplica;
afterEach(async () => {
  await db?.close();
});

const past = () => serverStamp(Date.now() - 10_000);

/** `count` pending inserts of lists that no server message below touches. */
async function unrelatedPending(count: number): Promise<void> {
  const rows = Array.from({ length: count }, (_, i) => ({
    id: uuidOf(100_000 + i),
    name: 'x',
    ownerId: 'u',
  }));
  for (let i = 0; i < rows.length; i += 500) await db.insert(lists).values(rows.slice(i, i + 500));
}

async function keyIndexes(): Promise<string[]> {
  const rows = await raw(
    db,
    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '_syncline_outbox'",
  );
  return rows.map((r) => r.name);
}

function renameList(i: number, name: string): ChangeJson {
  return { table: 'lists', op: 'update', pk: { id: uuidOf(i) }, values: { name }, hlc: past() };
}

describe('client pending lookup', () => {
  it('keeps pending local columns among thousands of unrelated pending rows, in messages of any size', async () => {
    ({ db, replica } = await openReplica());
    await raw(db, 'UPDATE _syncline_capture SET enabled = 0');
    const rows = Array.from({ length: 2000 }, (_, i) => ({ id: uuidOf(i), name: 'server', ownerId: 'u1' }));
    for (let i = 0; i < rows.length; i += 500) await db.insert(lists).values(rows.slice(i, i + 500));
    await raw(db, 'UPDATE _syncline_capture SET enabled = 1');
    await unrelatedPending(3000);
    // Pending local renames of rows 7 and 1,999 (the latter past the first lookup statement).
    await db
      .update(lists)
      .set({ name: 'local 7' })
      .where(eq(lists.id, uuidOf(7)));
    await db
      .update(lists)
      .set({ name: 'local 1999' })
      .where(eq(lists.id, uuidOf(1999)));
    await setCursor(db, replica, '1');

    await replica.applyChanges(changesMessage('1', '2', [renameList(7, 'remote'), renameList(8, 'remote')]));
    const names = async (ids: number[]) =>
      Promise.all(
        ids.map(
          async (i) =>
            (
              await db
                .select()
                .from(lists)
                .where(eq(lists.id, uuidOf(i)))
            )[0]?.name,
        ),
      );
    expect(await names([7, 8])).toEqual(['local 7', 'remote']);

    const many = Array.from({ length: 2000 }, (_, i) => renameList(i, 'bulk'));
    await replica.applyChanges(changesMessage('2', '3', many));
    expect(await names([0, 7, 1998, 1999])).toEqual(['bulk', 'local 7', 'bulk', 'local 1999']);
    // A remote delete of a row with a pending local insert does not remove it either.
    await replica.applyChanges(
      changesMessage('3', '4', [{ table: 'lists', op: 'delete', pk: { id: uuidOf(100_005) }, hlc: past() }]),
    );
    expect(await names([100_005])).toEqual(['x']);
    expect(await outbox(db)).toHaveLength(3002);
    expect(await keyIndexes()).toEqual(['_syncline_outbox_key']);
  });

  it('keeps no key index while the outbox is short, makes it once it is long, and drops it when emptied', async () => {
    ({ db, replica } = await openReplica());
    await setCursor(db, replica, '1');
    await db.insert(lists).values({ id: uuidOf(7), name: 'local', ownerId: 'u1' });
    await replica.stamp();
    // A short outbox: the lookup reads it whole, and still keeps the pending row.
    await replica.applyChanges(changesMessage('1', '2', [renameList(7, 'remote'), renameList(8, 'remote')]));
    expect(await keyIndexes()).toEqual([]);
    expect(
      (
        await db
          .select()
          .from(lists)
          .where(eq(lists.id, uuidOf(7)))
      )[0]?.name,
    ).toBe('local');
    // Long: the next lookup makes the index, and finds the pending rows through it.
    await unrelatedPending(OUTBOX_KEY_INDEX_FROM);
    await replica.stamp();
    await replica.applyChanges(
      changesMessage('2', '3', [renameList(7, 'again'), renameList(100_003, 'remote')]),
    );
    expect(await keyIndexes()).toEqual(['_syncline_outbox_key']);
    expect(await db.select().from(lists).where(eq(lists.name, 'again'))).toEqual([]);
    expect(await db.select().from(lists).where(eq(lists.name, 'remote'))).toEqual([]);
    // An ack that leaves rows keeps it; the one that empties the outbox drops it.
    await replica.applyAck({ type: 'ack', v: 1, results: [{ mutationId: 1, status: 'applied' }] });
    expect(await keyIndexes()).toEqual(['_syncline_outbox_key']);
    await replica.applyAck({ type: 'ack', v: 1, results: [{ mutationId: 2, status: 'applied' }] });
    expect(await outbox(db)).toEqual([]);
    expect(await keyIndexes()).toEqual([]);
  });

  it('keeps pending columns of restored rows and of snapshot rows among unrelated pending rows', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: uuidOf(1), name: 'server', ownerId: 'u1' });
    await replica.stamp();
    await replica.applyAck({ type: 'ack', v: 1, results: [{ mutationId: 1, status: 'applied' }] });
    await db
      .update(lists)
      .set({ name: 'refused' })
      .where(eq(lists.id, uuidOf(1)));
    await replica.stamp();
    await unrelatedPending(1500);
    await db
      .update(lists)
      .set({ ownerId: 'u2' })
      .where(eq(lists.id, uuidOf(1)));
    const restoredRow = { id: uuidOf(1), name: 'server', owner_id: 'u1' };
    await replica.applyAck({
      type: 'ack',
      v: 1,
      results: [
        {
          mutationId: 2,
          status: 'rejected',
          reason: 'refused',
          rows: [{ table: 'lists', pk: { id: uuidOf(1) }, row: restoredRow }],
        },
      ],
    });
    expect(
      await db
        .select()
        .from(lists)
        .where(eq(lists.id, uuidOf(1))),
    ).toEqual([{ id: uuidOf(1), name: 'server', ownerId: 'u2' }]);

    // A snapshot without row 1 nor the unrelated rows: all keep their pending local state.
    const snapshot = replica.snapshot([{ id: 'lists', table: 'lists' }], 'key', serverStamp(0), 100);
    const snapshotRows = [
      { id: uuidOf(1), name: 'snap', owner_id: 'u9' },
      { id: uuidOf(2), name: 'snap', owner_id: 'u9' },
    ];
    await snapshot.apply({
      type: 'snapshot',
      v: 1,
      shapeId: 'lists',
      position: '9',
      chunk: 0,
      last: true,
      totalRows: 2,
      rows: snapshotRows,
    });
    expect(
      await db
        .select()
        .from(lists)
        .where(eq(lists.id, uuidOf(1))),
    ).toEqual([{ id: uuidOf(1), name: 'snap', ownerId: 'u2' }]);
    expect(await db.select().from(lists)).toHaveLength(1502);
  });

  it('finds pending writes for every kind of primary key the triggers write', async () => {
    const keyed = {
      byInt: table('by_int', { id: integer().primaryKey(), v: text() }),
      byBigint: table('by_bigint', { id: bigint().primaryKey(), v: text() }),
      byReal: table('by_real', { id: real().primaryKey(), v: text() }),
      byBlob: table('by_blob', { id: blob().primaryKey(), v: text() }),
      byText: table('by_text', { id: text().primaryKey(), v: text() }),
      byTime: table('by_time', { id: timestamp().primaryKey(), v: text() }),
      byBool: table('by_bool', { id: boolean().primaryKey(), v: text() }),
      byPair: table('by_pair', { a: text().notNull(), b: integer().notNull(), v: text() }, (t) => [
        primaryKey({ columns: [t.a, t.b] }),
      ]),
    };
    db = await openDatabase(schema(keyed, { version: 1 }), sqlite());
    replica = new LocalReplica(db);
    await replica.open();
    const tricky = 'quote " back \\ slash \u0001 tab\t é 🙂 \u2028';
    // Each table: [app key of the pending row, its wire pk, the wire pk of a row with no pending write].
    const cases: [
      keyof typeof keyed,
      Record<string, unknown>,
      Record<string, JsonValue>,
      Record<string, JsonValue>,
    ][] = [
      ['byInt', { id: 42 }, { id: 42 }, { id: 43 }],
      ['byBigint', { id: 2n ** 60n + 1n }, { id: String(2n ** 60n + 1n) }, { id: '5' }],
      ['byReal', { id: 2 }, { id: 2 }, { id: 0.1 }],
      ['byBlob', { id: new Uint8Array([0, 255, 16]) }, { id: 'AP8Q' }, { id: 'AQ==' }],
      ['byText', { id: tricky }, { id: tricky }, { id: 'plain' }],
      ['byTime', { id: new Date(1_700_000_000_123) }, { id: 1_700_000_000_123 }, { id: 5 }],
      ['byBool', { id: true }, { id: true }, { id: false }],
      ['byPair', { a: tricky, b: 7 }, { a: tricky, b: 7 }, { a: tricky, b: 8 }],
    ];
    for (const [name, key] of cases) await db.insert(keyed[name] as any).values({ ...key, v: 'local' });
    await setCursor(db, replica, '1');
    const changes: ChangeJson[] = [];
    for (const [name, , pk, other] of cases) {
      const sqlName = keyed[name].$name;
      changes.push({ table: sqlName, op: 'insert', pk, values: { ...pk, v: 'remote' }, hlc: past() });
      changes.push({
        table: sqlName,
        op: 'insert',
        pk: other,
        values: { ...other, v: 'remote' },
        hlc: past(),
      });
    }
    await replica.applyChanges(changesMessage('1', '2', changes));
    for (const [name] of cases) {
      const values = (await db.select().from(keyed[name] as any)).map((row: any) => row.v).sort();
      expect([name, values]).toEqual([name, ['local', 'remote']]);
    }
  });
});
