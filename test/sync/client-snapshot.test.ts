import { afterEach, describe, expect, it } from 'vitest';
import { type Database, SyncProtocolError } from '../../src/index.js';
import type { LocalReplica } from '../../src/sync/client/local-replica.js';
import type { ShapeJson, SnapshotMessage } from '../../src/sync/protocol/messages.js';
import type { JsonRow } from '../../src/sync/protocol/value-codec.js';
import {
  lists,
  openReplica,
  outbox,
  raw,
  serverStamp,
  storedCursor,
  todos,
  uuidOf,
} from './client-helpers.js';

/**
 * Snapshots on the client: chunks written in one transaction each, progress summed over shapes,
 * rows that no shape holds any more pruned at the end, and the cursor written with the last chunk.
 */

let db: Database;
let replica: LocalReplica;
afterEach(async () => {
  await db?.close();
});

const shapes: ShapeJson[] = [
  { id: 'lists', table: 'lists' },
  { id: 'todos', table: 'todos' },
];

function listRow(i: number): JsonRow {
  return { id: uuidOf(i), name: `list ${i}`, owner_id: 'u1' };
}

function chunk(
  shapeId: string,
  n: number,
  last: boolean,
  totalRows: number,
  rows: JsonRow[],
  position = '40',
) {
  return {
    type: 'snapshot',
    v: 1,
    shapeId,
    position,
    chunk: n,
    last,
    totalRows,
    rows,
  } satisfies SnapshotMessage;
}

describe('client snapshot', () => {
  it('writes chunks, reports progress over all shapes, and writes the cursor with the last chunk', async () => {
    ({ db, replica } = await openReplica());
    const snapshot = replica.snapshot(shapes, 'key-1', serverStamp(Date.now()), 3);
    const first = await snapshot.apply(chunk('lists', 0, false, 5, [1, 2, 3].map(listRow)));
    expect(first.progress).toEqual({ rows: 3, totalRows: 5 });
    expect(first.cursor).toBeUndefined();
    expect(await storedCursor(db)).toBeNull();
    await snapshot.apply(chunk('lists', 1, true, 5, [4, 5].map(listRow)));
    const todo = {
      id: uuidOf(100),
      list_id: uuidOf(1),
      title: 't',
      done: true,
      updated_at: 0,
      tags: [],
      note: null,
      position: 3,
    };
    const last = await snapshot.apply(chunk('todos', 0, true, 1, [todo]));
    expect(last).toEqual({
      tables: new Set(['todos']),
      progress: { rows: 6, totalRows: 6 },
      cursor: '40',
      done: true,
      failed: [],
    });
    expect(await db.select().from(lists)).toHaveLength(5);
    expect(await db.select().from(todos)).toEqual([expect.objectContaining({ done: true, position: 3 })]);
    expect(await storedCursor(db)).toBe('40');
    expect(
      await raw(db, "SELECT key, value FROM _syncline_state WHERE key IN ('cursor', 'shapes_key')"),
    ).toEqual([{ key: 'shapes_key', value: 'key-1' }]);
    expect(await outbox(db)).toEqual([]);
  });

  it('prunes rows the snapshot did not hold, unless they have pending local writes', async () => {
    ({ db, replica } = await openReplica());
    await raw(db, 'UPDATE _syncline_capture SET enabled = 0');
    for (const i of [1, 2, 3]) await db.insert(lists).values({ id: uuidOf(i), name: 'old', ownerId: 'u1' });
    await raw(db, 'UPDATE _syncline_capture SET enabled = 1');
    await db.insert(lists).values({ id: uuidOf(9), name: 'mine', ownerId: 'u1' });
    const twoShapes: ShapeJson[] = [
      { id: 'a', table: 'lists' },
      { id: 'b', table: 'lists' },
    ];
    const snapshot = replica.snapshot(twoShapes, 'k', undefined);
    await snapshot.apply(chunk('a', 0, true, 1, [listRow(1)]));
    // The first shape is done, but rows of the second may still come: nothing is pruned yet.
    expect(await db.select().from(lists)).toHaveLength(4);
    const done = await snapshot.apply(chunk('b', 0, true, 1, [listRow(3)]));
    expect(done.cursor).toBe('40');
    const names = (await db.select().from(lists)).map((l) => [l.id, l.name]).sort();
    expect(names).toEqual([
      [uuidOf(1), 'list 1'],
      [uuidOf(3), 'list 3'],
      [uuidOf(9), 'mine'],
    ]);
  });

  it('keeps every pending local column: the server has not applied them yet, and they may still win', async () => {
    ({ db, replica } = await openReplica());
    await db.insert(lists).values({ id: uuidOf(1), name: 'stamped before', ownerId: 'u1' });
    await replica.stamp();
    const welcomeStamp = serverStamp(Date.now() + 5_000);
    await db.insert(lists).values({ id: uuidOf(2), name: 'not stamped', ownerId: 'u1' });
    const snapshot = replica.snapshot([{ id: 'lists', table: 'lists' }], 'k', welcomeStamp);
    await snapshot.apply(chunk('lists', 0, true, 3, [listRow(1), listRow(2), listRow(3)]));
    const names = (await db.select().from(lists)).map((l) => l.name).sort();
    // A write that loses on the server comes back with its ack (the server's rows), not here.
    expect(names).toEqual(['list 3', 'not stamped', 'stamped before']);
  });

  it('refuses chunks out of order, of another position, or of an unknown shape', async () => {
    ({ db, replica } = await openReplica());
    const snapshot = replica.snapshot(shapes, 'k', undefined);
    await expect(snapshot.apply(chunk('lists', 1, false, 9, []))).rejects.toThrow(/got chunk 1, expected 0/);
    await snapshot.apply(chunk('lists', 0, false, 9, [listRow(1)]));
    await expect(snapshot.apply(chunk('lists', 1, false, 9, [], '41'))).rejects.toThrow(
      /at position 41, but the snapshot began at 40/,
    );
    await expect(snapshot.apply(chunk('nope', 0, true, 0, []))).rejects.toThrow(SyncProtocolError);
  });

  it('applies children that come before their parents, every row once, with foreign keys back on after', async () => {
    ({ db, replica } = await openReplica());
    const childrenFirst: ShapeJson[] = [
      { id: 'todos', table: 'todos' },
      { id: 'lists', table: 'lists' },
    ];
    const todo = (i: number) => ({
      id: uuidOf(100 + i),
      list_id: uuidOf(i),
      title: `t${i}`,
      done: false,
      updated_at: 0,
      tags: [],
      note: null,
      position: i,
    });
    const snapshot = replica.snapshot(childrenFirst, 'k', undefined, 2);
    await snapshot.apply(chunk('todos', 0, false, 3, [todo(1), todo(2)]));
    await snapshot.apply(chunk('todos', 1, true, 3, [todo(3)]));
    await snapshot.apply(chunk('lists', 0, false, 3, [listRow(1), listRow(2)]));
    const done = await snapshot.apply(chunk('lists', 1, true, 3, [listRow(3)]));
    expect(done.cursor).toBe('40');
    expect((await db.select().from(todos)).map((t) => t.title).sort()).toEqual(['t1', 't2', 't3']);
    expect(await db.select().from(lists)).toHaveLength(3);
    expect(await outbox(db)).toEqual([]);
    expect(await raw(db, 'PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
  });

  it('prunes a parent the snapshot lacks without cascading to the children it holds', async () => {
    ({ db, replica } = await openReplica());
    await raw(db, 'UPDATE _syncline_capture SET enabled = 0');
    await db.insert(lists).values({ id: uuidOf(7), name: 'gone', ownerId: 'u1' });
    await raw(db, 'UPDATE _syncline_capture SET enabled = 1');
    const orphan = {
      id: uuidOf(107),
      list_id: uuidOf(7),
      title: 'kept',
      done: false,
      updated_at: 0,
      tags: [],
      note: null,
      position: 1,
    };
    const snapshot = replica.snapshot(shapes, 'k', undefined);
    await snapshot.apply(chunk('lists', 0, true, 1, [listRow(1)]));
    await snapshot.apply(chunk('todos', 0, true, 1, [orphan]));
    expect((await db.select().from(lists)).map((l) => l.name)).toEqual(['list 1']);
    expect((await db.select().from(todos)).map((t) => t.title)).toEqual(['kept']);
  });

  it('a row the database refuses is skipped and reported; the rest of its chunk applies', async () => {
    ({ db, replica } = await openReplica());
    const snapshot = replica.snapshot(shapes, 'k', undefined, 2);
    const rows = [listRow(1), listRow(2), listRow(3), { ...listRow(4), name: 7 }];
    const applied = await snapshot.apply(chunk('lists', 0, false, 4, rows));
    expect(applied.failed.map((e) => [e.table, e.pk])).toEqual([['lists', { id: uuidOf(4) }]]);
    expect(applied.failed[0].message).toMatch(/lists\.name/);
    expect((await db.select().from(lists)).map((l) => l.id)).toEqual([1, 2, 3].map(uuidOf));
    await snapshot.apply(chunk('lists', 1, true, 5, [listRow(5)]));
    expect(await db.select().from(lists)).toHaveLength(4);
  });
});
