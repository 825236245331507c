import { expect, it } from 'vitest';
import {
  asc,
  boolean,
  ConstraintError,
  eq,
  excluded,
  integer,
  json,
  schema,
  sql,
  table,
  text,
  timestamp,
  UsageError,
  uuid,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';

let codeCounter = 0;

/** Every kind of default, a unique column to conflict on, and a plain nullable column. */
const items = table('items', {
  id: uuid().primaryKey().defaultRandom(),
  slug: text().notNull().unique(),
  title: text().notNull(),
  done: boolean().notNull().default(false),
  createdAt: timestamp('created_at').notNull().defaultNow(),
  tags: json<string[]>().notNull().default([]),
  code: text()
    .notNull()
    .$defaultFn(() => `code-${++codeCounter}`),
  hits: integer().notNull().default(0),
  note: text(),
});

const itemSchema = schema({ items });

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

dialectSuite('insert', (env) => {
  it('inserts one row and returns it whole, with every default applied', async () => {
    const db = await env.open(itemSchema);
    const before = Date.now();
    const [row] = await db.insert(items).values({ slug: 'milk', title: 'Milk' }).returning();
    const after = Date.now();

    expect(Object.keys(row!).sort()).toEqual(
      ['code', 'createdAt', 'done', 'hits', 'id', 'note', 'slug', 'tags', 'title'].sort(),
    );
    expect(row!.slug).toBe('milk');
    expect(row!.title).toBe('Milk');
    expect(row!.done).toBe(false);
    expect(row!.hits).toBe(0);
    expect(row!.tags).toEqual([]);
    expect(row!.note).toBeNull();
    expect(row!.id).toMatch(UUID_V4);
    expect(row!.code).toMatch(/^code-\d+$/);
    expect(row!.createdAt).toBeInstanceOf(Date);
    // The database clock and ours may differ by a little; a few seconds is plenty.
    expect(row!.createdAt.getTime()).toBeGreaterThan(before - 5_000);
    expect(row!.createdAt.getTime()).toBeLessThan(after + 5_000);

    // What returning() gave is what the table holds.
    const [stored] = await db.select().from(items).where(eq(items.id, row!.id));
    expect(stored).toEqual(row);
  });

  it('returns only the chosen fields, under the chosen keys', async () => {
    const db = await env.open(itemSchema);
    const rows = await db
      .insert(items)
      .values({ slug: 'eggs', title: 'Eggs', hits: 3 })
      .returning({ key: items.id, name: items.title, hits: items.hits });
    expect(rows).toHaveLength(1);
    expect(Object.keys(rows[0]!).sort()).toEqual(['hits', 'key', 'name']);
    expect(rows[0]!.key).toMatch(UUID_V4);
    expect(rows[0]!.name).toBe('Eggs');
    expect(rows[0]!.hits).toBe(3);
  });

  it('inserts many rows in one statement and returns them in order', async () => {
    const db = await env.open(itemSchema);
    const rows = await db
      .insert(items)
      .values([
        { slug: 'a', title: 'A' },
        { slug: 'b', title: 'B' },
        { slug: 'c', title: 'C' },
      ])
      .returning();
    expect(rows.map((r) => r.slug)).toEqual(['a', 'b', 'c']);
    // Defaults computed per row, not once per statement.
    expect(new Set(rows.map((r) => r.id)).size).toBe(3);
    expect(new Set(rows.map((r) => r.code)).size).toBe(3);
    for (const r of rows) expect(r.id).toMatch(UUID_V4);
    expect(await db.select().from(items)).toHaveLength(3);
  });

  it('keeps explicit values over defaults, including json and false-y values', async () => {
    const db = await env.open(itemSchema);
    const id = '0b5e7d3a-2f4c-4e8a-9c1d-6a7b8c9d0e1f';
    const createdAt = new Date('2020-02-03T04:05:06.789Z');
    const [row] = await db
      .insert(items)
      .values({
        id,
        slug: 'x',
        title: '',
        done: true,
        createdAt,
        tags: ['red', 'blue'],
        code: 'mine',
        hits: 0,
        note: 'n',
      })
      .returning();
    expect(row).toEqual({
      id,
      slug: 'x',
      title: '',
      done: true,
      createdAt,
      tags: ['red', 'blue'],
      code: 'mine',
      hits: 0,
      note: 'n',
    });
  });

  it('fills columns a row leaves out with their defaults when rows give different columns', async () => {
    const db = await env.open(itemSchema);
    await db.insert(items).values([
      { slug: 'first', title: 'First', done: true, note: 'has a note' },
      { slug: 'second', title: 'Second', tags: ['t'], hits: 7 },
      { slug: 'third', title: 'Third', code: 'explicit' },
    ]);
    const rows = await db.select().from(items).orderBy(asc(items.slug));
    const bySlug = Object.fromEntries(rows.map((r) => [r.slug, r]));

    expect(bySlug.first).toMatchObject({ done: true, note: 'has a note', tags: [], hits: 0 });
    expect(bySlug.second).toMatchObject({ done: false, note: null, tags: ['t'], hits: 7 });
    expect(bySlug.third).toMatchObject({ done: false, note: null, tags: [], hits: 0, code: 'explicit' });
    expect(bySlug.first!.code).toMatch(/^code-\d+$/);
    expect(bySlug.second!.code).toMatch(/^code-\d+$/);
    for (const r of rows) {
      expect(r.id).toMatch(UUID_V4);
      expect(Math.abs(r.createdAt.getTime() - Date.now())).toBeLessThan(10_000);
    }
    expect(new Set(rows.map((r) => r.id)).size).toBe(3);
  });

  it('resolves to { rowsAffected } without returning()', async () => {
    const db = await env.open(itemSchema);
    expect(await db.insert(items).values({ slug: 'one', title: 'One' })).toEqual({ rowsAffected: 1 });
    expect(
      await db.insert(items).values([
        { slug: 'two', title: 'Two' },
        { slug: 'three', title: 'Three' },
      ]),
    ).toEqual({ rowsAffected: 2 });
  });

  it('onConflictDoNothing() without a target skips rows that break any unique constraint', async () => {
    const db = await env.open(itemSchema);
    const [existing] = await db.insert(items).values({ slug: 'taken', title: 'Original' }).returning();

    // Conflicts on the unique slug, then on the primary key: both skipped.
    const bySlug = await db
      .insert(items)
      .values({ slug: 'taken', title: 'Other' })
      .onConflictDoNothing()
      .returning();
    expect(bySlug).toEqual([]);
    const byId = await db
      .insert(items)
      .values({ id: existing!.id, slug: 'fresh', title: 'Other' })
      .onConflictDoNothing();
    expect(byId).toEqual({ rowsAffected: 0 });

    // In a batch only the conflicting row is skipped.
    const result = await db
      .insert(items)
      .values([
        { slug: 'taken', title: 'Dup' },
        { slug: 'new', title: 'New' },
      ])
      .onConflictDoNothing();
    expect(result).toEqual({ rowsAffected: 1 });

    const rows = await db.select({ slug: items.slug, title: items.title }).from(items).orderBy(items.slug);
    expect(rows).toEqual([
      { slug: 'new', title: 'New' },
      { slug: 'taken', title: 'Original' },
    ]);
  });

  it('onConflictDoNothing({ target }) skips conflicts on that column only', async () => {
    const db = await env.open(itemSchema);
    const [existing] = await db.insert(items).values({ slug: 'taken', title: 'Original' }).returning();

    const skipped = await db
      .insert(items)
      .values({ slug: 'taken', title: 'Other' })
      .onConflictDoNothing({ target: items.slug })
      .returning({ id: items.id });
    expect(skipped).toEqual([]);

    // A conflict on another constraint (the primary key) is still an error.
    await expect(
      db
        .insert(items)
        .values({ id: existing!.id, slug: 'other', title: 'Other' })
        .onConflictDoNothing({ target: items.slug }),
    ).rejects.toBeInstanceOf(ConstraintError);
    expect(await db.select().from(items)).toHaveLength(1);
  });

  it('onConflictDoUpdate() with excluded(col) updates the existing row and returns it', async () => {
    const db = await env.open(itemSchema);
    const [original] = await db.insert(items).values({ slug: 'milk', title: 'Milk', hits: 1 }).returning();

    const [upserted] = await db
      .insert(items)
      .values({ slug: 'milk', title: 'Oat milk', hits: 5 })
      .onConflictDoUpdate({
        target: items.slug,
        set: { title: excluded(items.title), hits: sql`${items.hits} + ${excluded(items.hits)}` },
      })
      .returning();
    // Same row (same id, same code), new values.
    expect(upserted!.id).toBe(original!.id);
    expect(upserted!.code).toBe(original!.code);
    expect(upserted!.title).toBe('Oat milk');
    expect(upserted!.hits).toBe(6);
    expect(await db.select().from(items)).toHaveLength(1);

    // With no conflict the row is simply inserted.
    const [inserted] = await db
      .insert(items)
      .values({ slug: 'bread', title: 'Bread' })
      .onConflictDoUpdate({ target: items.slug, set: { title: excluded(items.title) } })
      .returning();
    expect(inserted!.id).not.toBe(original!.id);
    expect(await db.select().from(items)).toHaveLength(2);
  });

  it('onConflictDoUpdate() takes sql`excluded.title` and upserts a batch', async () => {
    const db = await env.open(itemSchema);
    await db.insert(items).values([
      { slug: 'a', title: 'old a' },
      { slug: 'b', title: 'old b' },
    ]);
    const result = await db
      .insert(items)
      .values([
        { slug: 'a', title: 'new a' },
        { slug: 'c', title: 'new c' },
      ])
      .onConflictDoUpdate({ target: items.slug, set: { title: sql`excluded.title` } });
    expect(result).toEqual({ rowsAffected: 2 });
    const rows = await db.select({ slug: items.slug, title: items.title }).from(items).orderBy(items.slug);
    expect(rows).toEqual([
      { slug: 'a', title: 'new a' },
      { slug: 'b', title: 'old b' },
      { slug: 'c', title: 'new c' },
    ]);
  });

  it('onConflictDoUpdate({ where }) updates only the conflicting rows the condition holds for', async () => {
    const db = await env.open(itemSchema);
    await db.insert(items).values([
      { slug: 'low', title: 'low', hits: 1 },
      { slug: 'high', title: 'high', hits: 10 },
    ]);
    // Keep the larger hit count: update only when the incoming value is bigger.
    const upsert = (slug: string, hits: number) =>
      db
        .insert(items)
        .values({ slug, title: `${slug} v2`, hits })
        .onConflictDoUpdate({
          target: items.slug,
          set: { hits: excluded(items.hits), title: excluded(items.title) },
          where: sql`${excluded(items.hits)} > ${items.hits}`,
        })
        .returning({ slug: items.slug, hits: items.hits });

    expect(await upsert('low', 5)).toEqual([{ slug: 'low', hits: 5 }]);
    // The condition fails: nothing updated, nothing returned.
    expect(await upsert('high', 3)).toEqual([]);

    const rows = await db
      .select({ slug: items.slug, title: items.title, hits: items.hits })
      .from(items)
      .orderBy(items.slug);
    expect(rows).toEqual([
      { slug: 'high', title: 'high', hits: 10 },
      { slug: 'low', title: 'low v2', hits: 5 },
    ]);
  });

  it('refuses an empty values() list and an upsert with nothing to set', async () => {
    const db = await env.open(itemSchema);
    expect(() => db.insert(items).values([])).toThrow(UsageError);
    await expect(
      db
        .insert(items)
        .values({ slug: 's', title: 't' })
        .onConflictDoUpdate({ target: items.slug, set: { title: undefined } }),
    ).rejects.toThrow(/nothing to set/);
    expect(await db.select().from(items)).toEqual([]);
  });
});
