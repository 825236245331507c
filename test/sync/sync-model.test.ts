import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { e2eSchema } from '../support/sync-fixture.js';
import { compareRows, formatDifferences, type ModelChange, SyncModel } from '../support/sync-model.js';

/**
 * The model the e2e property test and the soak check the server against (test/support/sync-model.ts):
 * the rules of docs/sync-internals.md, row by row, and an outcome that depends only on the set of
 * changes, not on the order they arrive in (foreign-key cascades aside).
 */

const L = '00000000-0000-4000-8000-00000000000a';
const T = '00000000-0000-4000-8000-00000000000b';
const I = '00000000-0000-4000-8000-00000000000c';

/** A stamp at `ms` (small numbers, zero-padded as encodeHlc does) from node `node`. */
function h(ms: number, node = 'c1'): string {
  return `${String(ms).padStart(13, '0')}-00000-${node}`;
}

function item(op: ModelChange['op'], hlc: string, values?: Record<string, string | number>): ModelChange {
  return { table: 'items', op, pk: { id: I }, values, hlc, source: `${op}@${hlc.slice(11, 13)}` };
}

function itemRows(changes: readonly ModelChange[]) {
  const model = new SyncModel(e2eSchema.tableList);
  for (const change of changes) model.apply(change);
  return model.rows('items').map((r) => r.values);
}

describe('SyncModel', () => {
  it('keeps the newest value per column, whatever the order', () => {
    const changes = [
      item('insert', h(1), { title: 'a', qty: 1 }),
      item('update', h(3), { title: 'c' }),
      item('update', h(2), { title: 'b', qty: 2 }),
    ];
    expect(itemRows(changes)).toEqual([{ id: I, title: 'c', qty: 2 }]);
    expect(itemRows([changes[0]!, changes[2]!, changes[1]!])).toEqual([{ id: I, title: 'c', qty: 2 }]);
    // Updates that come before the row ever existed are dropped, as the server drops them.
    expect(itemRows([...changes].reverse())).toEqual([{ id: I, title: 'a', qty: 1 }]);
  });

  it('deletes unless a newer insert re-created the row, and keeps updates newer than the tombstone for it', () => {
    const insert = item('insert', h(1), { title: 'a', qty: 1 });
    const del = item('delete', h(2));
    const update = item('update', h(4), { qty: 9 });
    const recreate = item('insert', h(3), { title: 'r', qty: 3 });
    expect(itemRows([insert, del])).toEqual([]);
    // A delete of a row that never existed is dropped, as the server drops it: it stops nothing.
    expect(itemRows([del, insert])).toEqual([{ id: I, title: 'a', qty: 1 }]);
    expect(itemRows([insert, recreate, del])).toEqual([{ id: I, title: 'r', qty: 3 }]);
    // The update arrives while the row is deleted, then an older insert re-creates it.
    expect(itemRows([insert, del, update, recreate])).toEqual([{ id: I, title: 'r', qty: 9 }]);
    expect(itemRows([insert, del, recreate, update])).toEqual([{ id: I, title: 'r', qty: 9 }]);
    // An insert older than the tombstone never re-creates.
    expect(itemRows([insert, del, item('insert', h(1), { title: 'x' })])).toEqual([]);
    // An update older than the tombstone never shows.
    expect(itemRows([insert, del, item('update', h(2), { qty: 5 }), recreate])).toEqual([
      { id: I, title: 'r', qty: 3 },
    ]);
  });

  it('lets the later change of one batch win on equal stamps, and counts rows from before capture as oldest', () => {
    expect(itemRows([item('insert', h(1), { title: 'a' }), item('update', h(1), { title: 'b' })])).toEqual([
      { id: I, title: 'b' },
    ]);
    const model = new SyncModel(e2eSchema.tableList);
    model.preexisting('items', { id: I, title: 'old', qty: 0 });
    model.apply(item('update', h(0), { title: 'new' }));
    expect(model.rows('items')).toEqual([
      {
        pk: { id: I },
        values: { id: I, title: 'new', qty: 0 },
        stamps: { id: undefined, title: h(0), qty: undefined },
      },
    ]);
  });

  it('gives the same rows for every order of a set of changes to one row', () => {
    const change = fc.record({
      op: fc.constantFrom('insert' as const, 'update' as const, 'delete' as const),
      ms: fc.integer({ min: 1, max: 50 }),
      title: fc.constantFrom('a', 'b', 'c'),
      qty: fc.integer({ min: 0, max: 3 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(change, { selector: (c) => c.ms, minLength: 1, maxLength: 8 }),
        fc.infiniteStream(fc.nat()),
        (set, picks) => {
          const changes = set.map((c) =>
            item(
              c.op,
              h(c.ms),
              c.op === 'delete'
                ? undefined
                : c.op === 'insert'
                  ? { title: c.title, qty: c.qty }
                  : { qty: c.qty },
            ),
          );
          const shuffled: ModelChange[] = [];
          const pool = [...changes];
          const it = picks[Symbol.iterator]();
          while (pool.length > 0) shuffled.push(pool.splice(it.next().value! % pool.length, 1)[0]!);
          // Updates and deletes arriving before the row ever existed (no insert, no tombstone) are
          // dropped on the server, so only orders that start with an insert must agree.
          const first = shuffled.findIndex((c) => c.op === 'insert');
          if (first > 0) shuffled.unshift(...shuffled.splice(first, 1));
          const sorted = [...changes].sort((a, b) => (a.hlc < b.hlc ? -1 : 1));
          expect(itemRows(shuffled)).toEqual(itemRows(sorted));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('removes the children of a deleted parent with its stamp, so an older child insert stays out', () => {
    const model = new SyncModel(e2eSchema.tableList);
    const list = (op: ModelChange['op'], hlc: string): ModelChange => ({
      table: 'lists',
      op,
      pk: { id: L },
      values: op === 'delete' ? undefined : { name: 'n', owner_id: 'u' },
      hlc,
    });
    const todo = (op: ModelChange['op'], hlc: string, values?: Record<string, string>): ModelChange => ({
      table: 'todos',
      op,
      pk: { id: T },
      values,
      hlc,
    });
    model.apply(list('insert', h(1)));
    model.apply(todo('insert', h(5), { list_id: L, title: 't' }));
    model.apply(list('delete', h(3))); // older than the todo, yet the database cascades
    expect(model.rows('todos')).toEqual([]);
    expect(model.state('todos', { id: T })).toMatchObject({ exists: false, deleted: h(3) });
    model.apply(list('insert', h(4)));
    model.apply(todo('insert', h(2), { list_id: L, title: 'older' }));
    expect(model.rows('todos')).toEqual([]);
    expect(model.anomalies).toEqual([]);
    // A child written while its parent is missing is an anomaly: the server must have refused it.
    model.apply(list('delete', h(6)));
    model.apply(todo('insert', h(7), { list_id: L, title: 'orphan' }));
    expect(model.anomalies).toHaveLength(1);
  });

  it('reports each differing column and row, with the change that decided it', () => {
    const model = new SyncModel(e2eSchema.tableList);
    model.apply(item('insert', h(1), { title: 'a', qty: 1 }));
    model.apply(item('update', h(2), { title: 'b' }));
    const diffs = compareRows(model, {
      items: [{ id: I, title: 'a', qty: 1 }],
      lists: [{ id: L, name: 'x', owner_id: 'u' }],
    });
    expect(diffs).toEqual([
      {
        table: 'lists',
        key: JSON.stringify([L]),
        pk: { id: L },
        expected: 'missing',
        expectedStamp: undefined,
        expectedSource: undefined,
        actual: { id: L, name: 'x', owner_id: 'u' },
      },
      {
        table: 'items',
        key: JSON.stringify([I]),
        pk: { id: I },
        column: 'title',
        expected: 'b',
        expectedStamp: h(2),
        expectedSource: 'update@02',
        actual: 'a',
      },
    ]);
    expect(formatDifferences(diffs, model)).toContain(
      `items ["${I}"].title: expected "b" (stamp ${h(2)}, update@02), server has "a"`,
    );
    expect(compareRows(model, { items: [{ id: I, title: 'b', qty: 1 }] })).toEqual([]);
  });
});
