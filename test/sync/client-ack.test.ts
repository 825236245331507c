import { afterEach, describe, expect, it } from 'vitest';
import { type Database, eq } from '../../src/index.js';
import type { LocalReplica } from '../../src/sync/client/local-replica.js';
import { lists, openReplica, outbox, todos } from './client-helpers.js';

/**
 * Acks on the client: an applied batch leaves the outbox; a rejected one leaves it too, and the
 * rows it touched go back to the server's version, without echoing into the outbox.
 */

const listId = '0f8fad5b-d9cb-469f-a165-70867728950e';
const otherId = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
let db: Database;
let replica: LocalReplica;
afterEach(async () => {
  await db?.close();
});

describe('client acks', () => {
  it('drops applied batches from the outbox', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    await replica.stamp();
    await db.insert(lists).values({ id: otherId, name: 'B', ownerId: 'u1' });
    await replica.stamp();
    const first = await replica.applyAck({
      type: 'ack',
      v: 1,
      results: [{ mutationId: 1, status: 'applied' }],
    });
    expect(first.rejected).toEqual([]);
    expect(first.firstSeq).toBe(2);
    const second = await replica.applyAck({
      type: 'ack',
      v: 1,
      results: [{ mutationId: 2, status: 'applied' }],
    });
    expect(second.firstSeq).toBeUndefined();
    expect(await outbox(db)).toEqual([]);
    expect(await db.select().from(lists)).toHaveLength(2);
  });

  it('rolls a rejected batch back to the rows the server sent, keeping later pending writes', async () => {
    ({ db, replica } = await openReplica());
    // The server's state: list A named 'server'. Locally: A renamed and B created in one batch,
    // then (a later batch) A's owner changed.
    await db.transaction(async (tx) => {
      await tx.insert(lists).values({ id: listId, name: 'server', ownerId: 'u1' });
    });
    await replica.stamp();
    await replica.applyAck({ type: 'ack', v: 1, results: [{ mutationId: 1, status: 'applied' }] });
    await db.transaction(async (tx) => {
      await tx.update(lists).set({ name: 'refused' }).where(eq(lists.id, listId));
      await tx.insert(lists).values({ id: otherId, name: 'new', ownerId: 'u1' });
    });
    await replica.stamp();
    await db.update(lists).set({ ownerId: 'u2' }).where(eq(lists.id, listId));
    await replica.stamp();

    const result = await replica.applyAck({
      type: 'ack',
      v: 1,
      results: [
        {
          mutationId: 2,
          status: 'rejected',
          reason: 'lists: write rule refused the row',
          rows: [
            { table: 'lists', pk: { id: listId }, row: { id: listId, name: 'server', owner_id: 'u1' } },
            { table: 'lists', pk: { id: otherId }, row: null },
          ],
        },
      ],
    });
    expect(result.tables).toEqual(new Set(['lists']));
    expect(result.rejected).toEqual([
      {
        mutationId: 2,
        reason: 'lists: write rule refused the row',
        rows: [
          { table: 'lists', pk: { id: listId }, row: { id: listId, name: 'server', ownerId: 'u1' } },
          { table: 'lists', pk: { id: otherId }, row: null },
        ],
      },
    ]);
    expect(await db.select().from(lists)).toEqual([{ id: listId, name: 'server', ownerId: 'u2' }]);
    // Only the later batch is left, and the rollback itself was not captured.
    expect((await outbox(db)).map((r) => [r.mutation_id, r.op])).toEqual([[3, 'update']]);
  });

  it('deletes the restored rows whose server version is gone', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: listId, name: 'A', ownerId: 'u1' });
    const [todo] = await db.insert(todos).values({ listId, title: 't' }).returning();
    await replica.stamp();
    await replica.applyAck({
      type: 'ack',
      v: 1,
      results: [
        {
          mutationId: 1,
          status: 'rejected',
          reason: 'no such list',
          rows: [
            { table: 'lists', pk: { id: listId }, row: null },
            { table: 'todos', pk: { id: todo.id }, row: null },
          ],
        },
      ],
    });
    expect(await db.select().from(lists)).toEqual([]);
    expect(await db.select().from(todos)).toEqual([]);
    expect(await outbox(db)).toEqual([]);
  });
});
