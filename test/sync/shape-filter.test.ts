import { describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { type Database, eq, exists, inArray, openDatabase, sql, UsageError } from '../../src/index.js';
import type { CapturedChange } from '../../src/sync/server/change-log-reader.js';
import {
  referencedColumns,
  subqueryFilters,
  tablesReferenced,
} from '../../src/sync/server/referenced-columns.js';
import { ShapeFilter } from '../../src/sync/server/shape-filter.js';
import { appSchema, lists, todos } from '../support/fixtures.js';

/**
 * The server's shape filter without a connection: `applyNow` (what a connection sends from within
 * the hub's publish) gives what `apply` gives, and refuses shapes that need PostgreSQL.
 */

function change(
  tick: number,
  op: CapturedChange['op'],
  row: Record<string, unknown>,
  old?: Record<string, unknown>,
) {
  return {
    tick: BigInt(tick),
    id: BigInt(tick),
    txid: 1n,
    table: 'lists',
    op,
    pk: { id: row.id },
    oldPk: undefined,
    row,
    oldValues: old,
    hlc: '1700000000000-00000-postgres',
    origin: undefined,
    mutationId: undefined,
    changedAt: new Date(0),
  } satisfies CapturedChange;
}

const a = '0f8fad5b-d9cb-469f-a165-70867728950e';
const b = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
const changes = [
  change(1, 'insert', { id: a, name: 'Mine', owner_id: 'ann' }),
  change(2, 'insert', { id: b, name: 'Theirs', owner_id: 'bob' }),
  // Leaves ann's shape: arrives at her as a delete.
  change(3, 'update', { id: a, name: 'Mine', owner_id: 'bob' }, { owner_id: 'ann' }),
];
// Not used by filters decided in TypeScript.
const noDatabase = undefined as unknown as Database;

describe('ShapeFilter.applyNow', () => {
  it('gives what apply gives, for filters decided in TypeScript', async () => {
    for (const where of [undefined, eq(lists.ownerId, 'ann')]) {
      const filter = new ShapeFilter(noDatabase, [{ table: lists, where }]);
      expect(filter.synchronous).toBe(true);
      expect(filter.applyNow(changes)).toEqual(await filter.apply(changes));
    }
    const ann = new ShapeFilter(noDatabase, [{ table: lists, where: eq(lists.ownerId, 'ann') }]);
    expect(ann.applyNow(changes).map((c) => [c.op, c.pk])).toEqual([
      ['insert', { id: a }],
      ['delete', { id: a }],
    ]);
  });

  it('refuses a filter that PostgreSQL must test', () => {
    const where = sql<boolean>`${lists.ownerId} IN (SELECT owner_id FROM owners)`;
    const filter = new ShapeFilter(noDatabase, [{ table: lists, where }]);
    expect(filter.synchronous).toBe(false);
    expect(() => filter.applyNow(changes)).toThrow(UsageError);
  });
});

describe('ShapeFilter with an update whose logged row left a column out', () => {
  // An update of the name that left the (big, unchanged) owner out of its logged row.
  const partial = { ...change(4, 'update', { id: a, name: 'Renamed' }, { name: 'Mine' }) };

  it('needs the database only when a shape tests a column the change lacks', () => {
    const byName = new ShapeFilter(noDatabase, [{ table: lists, where: eq(lists.name, 'Renamed') }]);
    expect(byName.needsDatabase([partial])).toBe(false);
    expect(byName.applyNow([partial]).map((c) => c.op)).toEqual(['insert']);
    const byOwner = new ShapeFilter(noDatabase, [{ table: lists, where: eq(lists.ownerId, 'ann') }]);
    expect(byOwner.synchronous).toBe(true);
    expect(byOwner.needsDatabase(changes)).toBe(false);
    expect(byOwner.needsDatabase([partial])).toBe(true);
    expect(() => byOwner.applyNow([partial])).toThrow(/lacks a column a shape tests/);
    const all = new ShapeFilter(noDatabase, [{ table: lists, where: undefined }]);
    expect(all.needsDatabase([partial])).toBe(false);
  });

  it('counts the columns raw SQL may name', () => {
    const raw = new ShapeFilter(noDatabase, [{ table: lists, where: sql<boolean>`"owner_id" = 'ann'` }]);
    expect(raw.needsDatabase([partial])).toBe(true);
    const other = new ShapeFilter(noDatabase, [{ table: lists, where: sql<boolean>`name = 'x'` }]);
    expect(other.needsDatabase([partial])).toBe(true); // tested in SQL: always
  });
});

describe('referencedColumns', () => {
  it('finds the columns a condition reads, in subqueries, refs and raw SQL; * reads them all', () => {
    expect(referencedColumns(eq(lists.ownerId, 'ann').node, lists)).toEqual(new Set(['owner_id']));
    expect(referencedColumns(eq(lists.ownerId, 'ann').node, todos)).toEqual(new Set());
    const raw = sql<boolean>`${lists.id} IN (SELECT list_id FROM members WHERE "Name" = 'x' OR NAME = 'y')`;
    expect(referencedColumns(raw.node, lists)).toEqual(new Set(['id', 'name']));
    expect(referencedColumns(sql<boolean>`to_jsonb(lists.*) ? 'x'`.node, lists)).toBe('all');
  });
});

describe('tablesReferenced', () => {
  it('finds the other tables a condition reads, with their columns, or all of them', async () => {
    const db = await openDatabase(appSchema, sqlite());
    const rule = inArray(todos.listId, db.select({ id: lists.id }).from(lists).where(eq(lists.ownerId, 'u')));
    expect(tablesReferenced(rule.node, todos, [lists, todos])).toEqual(
      new Map([['lists', new Set(['id', 'owner_id'])]]),
    );
    // EXISTS reads a table even when it names none of its columns.
    const any = exists(db.select({ one: sql<number>`1` }).from(lists));
    expect(tablesReferenced(any.node, todos, [lists, todos])).toEqual(new Map([['lists', 'all']]));
    const raw = sql<boolean>`${todos.listId} IN (SELECT id FROM "lists")`;
    expect(tablesReferenced(raw.node, todos, [lists, todos])).toEqual(new Map([['lists', 'all']]));
    expect(tablesReferenced(eq(todos.done, true).node, todos, [lists, todos])).toEqual(new Map());
    await db.close();
  });
});

describe('subqueryFilters', () => {
  it('gives the filters of subqueries that read another table alone, or any', async () => {
    const db = await openDatabase(appSchema, sqlite());
    const own = eq(lists.ownerId, 'u');
    const rule = inArray(todos.listId, db.select({ id: lists.id }).from(lists).where(own));
    expect(subqueryFilters(rule.node, todos)).toEqual(new Map([['lists', [own.node]]]));
    // Correlated or read in raw SQL: no filter to narrow it by.
    const raw = sql<boolean>`${todos.listId} IN (SELECT id FROM lists)`;
    expect(subqueryFilters(raw.node, todos)).toEqual(new Map());
    const both = sql<boolean>`${rule} OR EXISTS (SELECT 1 FROM lists)`;
    expect(subqueryFilters(both.node, todos)).toEqual(new Map([['lists', 'any']]));
    await db.close();
  });
});
