import { afterEach, describe, expect, it } from 'vitest';
import { type Database, eq } from '../../src/index.js';
import { LocalReplica } from '../../src/sync/client/local-replica.js';
import { decodeHlc } from '../../src/sync/protocol/hlc.js';
import {
  DEFAULT_MESSAGE_LIMITS,
  type PushMessage,
  parseClientMessage,
} from '../../src/sync/protocol/messages.js';
import { dropBatch, lists, openReplica, outbox, raw, todos, uuidOf } from './client-helpers.js';

/**
 * The outbox between capture and push: stamping gives each local transaction a mutation id and
 * one HLC stamp, and a push carries the stamped batches in order within the server's limits.
 */

const listId = '0f8fad5b-d9cb-469f-a165-70867728950e';
let db: Database;
let replica: LocalReplica;
afterEach(async () => {
  await db?.close();
});

function push(json: string): PushMessage {
  return parseClientMessage(json, { maxMessageBytes: 1 << 30 }) as PushMessage;
}

describe('client outbox', () => {
  it('gives the rows of one stamping pass one mutation id and one stamp', async () => {
    ({ db, replica } = await openReplica());
    await db.transaction(async (tx) => {
      await tx.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
      await tx.insert(todos).values({ listId, title: 'one' });
    });
    expect(await replica.stamp()).toEqual([1]);
    await db.insert(todos).values({ listId, title: 'two' });
    expect(await replica.stamp()).toEqual([2]);
    expect(await replica.stamp()).toEqual([]);
    const rows = await outbox(db);
    expect(rows.map((r) => r.mutation_id)).toEqual([1, 1, 2]);
    expect(rows[0].hlc).toBe(rows[1].hlc);
    expect(rows[2].hlc! > rows[1].hlc!).toBe(true);
    expect(decodeHlc(rows[0].hlc!).nodeId).toBe(replica.clientId);
    // Issued at the rows' wall time: the stamp's wall clock is the one SQLite wrote.
    expect(decodeHlc(rows[0].hlc!).wallMs).toBeGreaterThanOrEqual(Math.max(rows[0].wall_ms, rows[1].wall_ms));
  });

  it('splits a transaction larger than maxChangesPerBatch over several mutation ids', async () => {
    ({ db, replica } = await openReplica());
    replica.maxChangesPerBatch = 3;
    await db.transaction(async (tx) => {
      await tx.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
      for (let i = 0; i < 6; i++) await tx.insert(todos).values({ listId, title: `t${i}` });
    });
    expect(await replica.stamp()).toEqual([1, 2, 3]);
    const rows = await outbox(db);
    expect(rows.map((r) => r.mutation_id)).toEqual([1, 1, 1, 2, 2, 2, 3]);
    const stamps = [...new Set(rows.map((r) => r.hlc!))];
    expect(stamps).toEqual([...stamps].sort());
    expect(stamps).toHaveLength(3);
  });

  it('keeps stamps and mutation ids growing across restarts', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    await replica.stamp();
    const before = (await outbox(db))[0].hlc!;
    const again = new LocalReplica(db);
    await again.open();
    await db.update(lists).set({ name: 'B' }).where(eq(lists.id, listId));
    expect(await again.stamp()).toEqual([2]);
    expect((await outbox(db))[1].hlc! > before).toBe(true);
  });

  it('stores the next mutation id and the last stamp with the rows it stamps', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    await replica.stamp();
    const state = new Map(
      (await raw(db, 'SELECT key, value FROM _syncline_state')).map((r) => [r.key, r.value] as const),
    );
    expect(state.get('next_mutation_id')).toBe('2');
    expect(state.get('last_hlc')).toBe((await outbox(db))[0].hlc);
  });

  it('stamps rows a crash left unstamped on the next pass, after a restart', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    await replica.stamp();
    // Two commits whose passes never ran (the app stopped after each commit).
    await db.insert(todos).values({ listId, title: 'one' });
    await db.insert(todos).values({ listId, title: 'two' });
    const again = new LocalReplica(db);
    await again.open();
    expect(await again.stamp()).toEqual([2]);
    const rows = await outbox(db);
    expect(rows.map((r) => r.mutation_id)).toEqual([1, 2, 2]);
    expect(new Set(rows.slice(1).map((r) => r.hlc)).size).toBe(1);
    expect(rows[1].hlc! > rows[0].hlc!).toBe(true);
  });

  it('stamps new rows after acknowledged ones emptied the outbox and seqs start over', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    await db.insert(todos).values({ listId, title: 'one' });
    expect(await replica.stamp()).toEqual([1]);
    const [, last] = await outbox(db);
    await dropBatch(db, 1);
    await db.insert(todos).values({ listId, title: 'two' });
    expect(await replica.stamp()).toEqual([2]);
    const rows = await outbox(db);
    // A table without AUTOINCREMENT gives the new row seq 1 again: below every seq stamped before.
    expect(rows[0].seq).toBeLessThanOrEqual(last.seq);
    expect(rows.map((r) => r.mutation_id)).toEqual([2]);
  });

  it('gives each noted commit its own mutation id when one pass stamps several', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    replica.noteCommit();
    await db.transaction(async (tx) => {
      await tx.insert(todos).values({ listId, title: 'one' });
      await tx.insert(todos).values({ listId, title: 'two' });
    });
    replica.noteCommit();
    // A commit that wrote nothing to the outbox notes the same end again: no empty batch.
    replica.noteCommit();
    await db.insert(todos).values({ listId, title: 'three' });
    replica.noteCommit();
    expect(await replica.stamp()).toEqual([1, 2, 3]);
    const rows = await outbox(db);
    expect(rows.map((r) => r.mutation_id)).toEqual([1, 2, 2, 3]);
    const stamps = rows.map((r) => r.hlc!);
    expect(stamps[1]).toBe(stamps[2]);
    expect(stamps[0] < stamps[1] && stamps[2] < stamps[3]).toBe(true);
    // Rows written after the last noted end (a commit not heard yet) form one more batch.
    await db.insert(todos).values({ listId, title: 'four' });
    await db.insert(todos).values({ listId, title: 'five' });
    expect(await replica.stamp()).toEqual([4]);
  });

  it('does not cut a later transaction at an end noted before an ack emptied the outbox', async () => {
    ({ db, replica } = await openReplica());
    const id = uuidOf;
    for (let i = 0; i < 3; i++) await db.insert(lists).values({ id: id(i), name: 'x', ownerId: 'u1' });
    expect(await replica.stamp()).toEqual([1]);
    // A commit that wrote no outbox row notes the end of stamped rows; the ack then empties the
    // outbox, and a new table without AUTOINCREMENT starts its seqs at 1 again.
    replica.noteCommit();
    await replica.applyAck({ type: 'ack', v: 1, results: [{ mutationId: 1, status: 'applied' }] });
    await db.transaction(async (tx) => {
      for (let i = 3; i < 8; i++) await tx.insert(lists).values({ id: id(i), name: 'x', ownerId: 'u1' });
    });
    replica.noteCommit();
    expect(await replica.stamp()).toEqual([2]);
    expect((await outbox(db)).map((r) => [r.seq, r.mutation_id])).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
      [4, 2],
      [5, 2],
    ]);
  });

  it('finds the rows of no batch after the last batch, whichever batches are gone', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    expect(await replica.stamp()).toEqual([1]);
    await db.insert(todos).values({ listId, title: 'one' });
    expect(await replica.stamp()).toEqual([2]);
    await db.insert(todos).values({ listId, title: 'two' });
    await db.insert(todos).values({ listId, title: 'three' });
    // The last batch is gone (acknowledged) while an older one stays at the head.
    await dropBatch(db, 2);
    expect(await replica.stamp()).toEqual([3]);
    expect((await outbox(db)).map((r) => r.mutation_id)).toEqual([1, 3, 3]);
    // After a restart too.
    await db.insert(todos).values({ listId, title: 'four' });
    const again = new LocalReplica(db);
    await again.open();
    expect(await again.stamp()).toEqual([4]);
    expect((await outbox(db)).map((r) => r.mutation_id)).toEqual([1, 3, 3, 4]);
  });

  it('turns the stamps an older client kept on its outbox rows into batches', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    await db.insert(todos).values({ listId, title: 'one' });
    await db.insert(todos).values({ listId, title: 'two' });
    // The outbox as an older client left it: each row's mutation id and stamp in columns of its own.
    await raw(db, 'ALTER TABLE _syncline_outbox ADD COLUMN mutation_id INTEGER');
    await raw(db, 'ALTER TABLE _syncline_outbox ADD COLUMN hlc TEXT');
    await raw(
      db,
      "UPDATE _syncline_outbox SET mutation_id = 7, hlc = '1700000000000-00000-old' WHERE seq <= 2",
    );
    await raw(db, "INSERT INTO _syncline_state (key, value) VALUES ('next_mutation_id', '8')");
    const again = new LocalReplica(db);
    await again.open();
    expect(await raw(db, 'SELECT mutation_id, first_seq, last_seq, hlc FROM _syncline_batches')).toEqual([
      { mutation_id: 7, first_seq: 1, last_seq: 2, hlc: '1700000000000-00000-old' },
    ]);
    expect(await raw(db, 'SELECT count(*) AS n FROM _syncline_outbox WHERE mutation_id IS NOT NULL')).toEqual(
      [{ n: 0 }],
    );
    // The third row, never stamped, is the next batch; opening again changes nothing.
    expect(await again.stamp()).toEqual([8]);
    await new LocalReplica(db).open();
    expect((await outbox(db)).map((r) => r.mutation_id)).toEqual([7, 7, 8]);
  });

  it('moves the next mutation id past the last one the server applied', async () => {
    ({ db, replica } = await openReplica());
    await replica.welcome({ type: 'welcome', v: 1, lastMutationId: 41, limits: DEFAULT_MESSAGE_LIMITS });
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    expect(await replica.stamp()).toEqual([42]);
  });

  it('pushes batches in order, folding the writes of one transaction to one row', async () => {
    ({ db, replica } = await openReplica());
    const [todo] = await db.transaction(async (tx) => {
      await tx.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
      const inserted = await tx.insert(todos).values({ listId, title: 'draft' }).returning();
      await tx.update(todos).set({ title: 'final', done: true }).where(eq(todos.id, inserted[0].id));
      return inserted;
    });
    await replica.stamp();
    await db.transaction(async (tx) => {
      await tx.update(todos).set({ title: 'x' }).where(eq(todos.id, todo.id));
      await tx.update(todos).set({ note: 'n' }).where(eq(todos.id, todo.id));
    });
    await replica.stamp();
    await db.transaction(async (tx) => {
      await tx.delete(todos).where(eq(todos.id, todo.id));
      await tx.insert(todos).values({ ...todo, title: 'again' });
    });
    await replica.stamp();
    const plan = await replica.readPush(DEFAULT_MESSAGE_LIMITS);
    const message = push(plan!.json);
    expect(plan!.mutationIds).toEqual([1, 2, 3]);
    const [first, second, third] = message.batches;
    expect(first.changes.map((c) => [c.table, c.op])).toEqual([
      ['lists', 'insert'],
      ['todos', 'insert'],
    ]);
    expect(first.changes[1].values).toMatchObject({ title: 'final', done: true, list_id: listId });
    expect(second.changes).toHaveLength(1);
    expect(second.changes[0]).toMatchObject({ op: 'update', values: { title: 'x', note: 'n' } });
    expect(third.changes).toEqual([
      expect.objectContaining({
        op: 'insert',
        values: expect.objectContaining({ title: 'again', note: null }),
      }),
    ]);
    expect(new Set(first.changes.map((c) => c.hlc)).size).toBe(1);
  });

  it('folds a delete and re-insert of one row in one transaction into an insert', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    await replica.stamp();
    await db.transaction(async (tx) => {
      await tx.delete(lists).where(eq(lists.id, listId));
      await tx.insert(lists).values({ id: listId, name: 'B', ownerId: 'u1' });
    });
    await replica.stamp();
    const message = push((await replica.readPush(DEFAULT_MESSAGE_LIMITS))!.json);
    expect(message.batches[1].changes).toEqual([
      {
        table: 'lists',
        op: 'insert',
        pk: { id: listId },
        values: { id: listId, name: 'B', owner_id: 'u1' },
        hlc: expect.any(String),
      },
    ]);
  });

  it('respects maxBatches and maxMessageBytes, and re-cuts batches larger than the server allows', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    for (let i = 0; i < 3; i++) await db.insert(todos).values({ listId, title: `t${i}`.padEnd(200, '.') });
    await replica.stamp();
    await db.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await tx.insert(todos).values({ listId, title: `bulk${i}` });
    });
    await replica.stamp();
    expect((await outbox(db)).map((r) => r.mutation_id)).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 2]);

    const byCount = await replica.readPush({ ...DEFAULT_MESSAGE_LIMITS, maxBatches: 1 });
    expect(byCount!.mutationIds).toEqual([1]);

    // A server that takes at most 2 changes per batch: batch 1 and 2 are re-cut under new ids.
    const small = await replica.readPush({ ...DEFAULT_MESSAGE_LIMITS, maxChangesPerBatch: 2 });
    const batches = push(small!.json).batches;
    expect(batches.map((b) => b.changes.length)).toEqual([2, 2, 2, 2, 1]);
    expect(batches.map((b) => b.mutationId)).toEqual([3, 4, 5, 6, 7]);

    // A byte limit that fits about one batch: the first push carries only the first.
    const bySize = await replica.readPush({ ...DEFAULT_MESSAGE_LIMITS, maxMessageBytes: 1200 });
    expect(bySize!.mutationIds).toEqual([3]);
    expect(new TextEncoder().encode(bySize!.json).length).toBeLessThanOrEqual(1200);
  });

  it('says so when one change can never fit the server message size', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'x'.repeat(5000), ownerId: 'u1' });
    await replica.stamp();
    await expect(replica.readPush({ ...DEFAULT_MESSAGE_LIMITS, maxMessageBytes: 1000 })).rejects.toThrow(
      /over the server's limit of 1000 bytes per message/,
    );
  });
});
