import { expect, it } from 'vitest';
import {
  asc,
  boolean,
  ConstraintError,
  count,
  InvalidValueError,
  integer,
  json,
  schema,
  table,
  text,
  timestamp,
  uuid,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';

/** Six columns of six types: 6,000 rows are 36,000 values, more than SQLite binds in one statement. */
const entries = table('entries', {
  id: uuid().primaryKey(),
  title: text().notNull(),
  position: integer().notNull(),
  done: boolean().notNull(),
  at: timestamp().notNull(),
  tags: json<string[]>().notNull(),
});
const notes = table('notes', { id: integer().primaryKey(), body: text().notNull() });
const bulkSchema = schema({ entries, notes });

type Entry = typeof entries.$inferInsert;

function makeEntries(n: number): Entry[] {
  const start = Date.UTC(2025, 0, 1);
  return Array.from({ length: n }, (_, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    title: `entry ${i}`,
    position: i,
    done: i % 2 === 0,
    at: new Date(start + i * 1000),
    tags: [`t${i % 5}`],
  }));
}

dialectSuite('bulk insert', (env) => {
  it('returns every inserted row, in the order given, from an insert several statements long on SQLite', async () => {
    const db = await env.open(bulkSchema);
    const rows = makeEntries(700).reverse();
    const returned = await db.insert(entries).values(rows).returning({ id: entries.id, n: entries.position });
    expect(returned).toEqual(rows.map((r) => ({ id: r.id, n: r.position })));
  });

  it('writes nothing when a value in the last rows is wrong, and names its column', async () => {
    const db = await env.open(bulkSchema);
    const rows = makeEntries(1_000);
    (rows[999] as Record<string, unknown>).position = 'last';
    const error = await db
      .insert(entries)
      .values(rows)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(InvalidValueError);
    expect((error as Error).message).toMatch(/^entries\.position: expected a whole number/);
    expect(await db.select({ n: count() }).from(entries)).toEqual([{ n: 0 }]);
  });

  it('writes nothing when the last rows break a constraint, outside a transaction or in one', async () => {
    const db = await env.open(bulkSchema);
    const rows = makeEntries(1_000);
    rows[999]!.id = rows[0]!.id;
    await expect(db.insert(entries).values(rows)).rejects.toBeInstanceOf(ConstraintError);
    expect(await db.select({ n: count() }).from(entries)).toEqual([{ n: 0 }]);

    await db.transaction(async (tx) => {
      await tx.insert(notes).values({ id: 1, body: 'kept' });
      await expect(
        tx.transaction(async (inner) => inner.insert(entries).values(rows)),
      ).rejects.toBeInstanceOf(ConstraintError);
    });
    expect(await db.select({ id: notes.id }).from(notes)).toEqual([{ id: 1 }]);
    expect(await db.select({ n: count() }).from(entries)).toEqual([{ n: 0 }]);
  });

  it('inserts 6,000 rows in one call (36,000 values), every value as given', async () => {
    const db = await env.open(bulkSchema);
    const rows = makeEntries(6_000);
    expect(await db.insert(entries).values(rows)).toEqual({ rowsAffected: 6_000 });
    const stored = await db.select().from(entries).orderBy(asc(entries.position));
    expect(stored).toEqual(rows);
  });
});
