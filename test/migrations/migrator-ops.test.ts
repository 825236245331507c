import { describe, expect, it } from 'vitest';
import {
  type AnyTable,
  ConstraintError,
  type Database,
  index,
  integer,
  MigrationError,
  openDatabase,
  schema,
  sql,
  table,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from '../../src/index.js';
import type { Migrator } from '../../src/migrations/migrator.js';
import {
  columnNames,
  columnsOf,
  indexNames,
  rejection,
  storedVersion,
  tableNames,
} from '../support/catalog.js';
import { dialectSuite } from '../support/drivers.js';
import { type SameDatabase, sameDatabase } from '../support/same-database.js';

// Version 1: items with an index on their name, orders that point at items, and a log.
const itemColumns = () => ({ id: integer().primaryKey(), name: text().notNull(), qty: integer() });
const items = table('items', itemColumns(), (t) => [index('items_name_idx').on(t.name)]);
const orders = table('orders', {
  id: integer().primaryKey(),
  itemId: integer('item_id')
    .notNull()
    .references(() => items.id),
});
const logs = table('logs', { id: integer().primaryKey(), line: text() });
const v1 = schema({ items, orders, logs }, { version: 1 });

const seedItems = [
  { id: 1, name: 'apple', qty: 3 },
  { id: 2, name: 'pear', qty: null },
  { id: 3, name: 'plum', qty: 7 },
];

const kindOf = async (write: PromiseLike<unknown>) => ((await rejection(write)) as ConstraintError).kind;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

dialectSuite('Migrator operations', (env) => {
  const sqliteOnly = env.driver.dialect === 'sqlite';
  const opened: Database<any>[] = [];
  let target: SameDatabase;

  /** A database at version 1 with `seedItems`, an order and a log line. */
  async function atVersion1(): Promise<void> {
    target = sameDatabase(env.driver);
    const db = await openDatabase(v1, target.driver());
    await db.insert(items).values(seedItems);
    await db.insert(orders).values({ id: 1, itemId: 1 });
    await db.insert(logs).values({ id: 1, line: 'started' });
    await db.close();
  }

  /** Opens version 2, whose only step is `step`, on the database at version 1. */
  async function upgrade(tables: Record<string, AnyTable>, step: (m: Migrator) => Promise<void>) {
    await atVersion1();
    const db = await openDatabase(schema(tables, { version: 2, migrations: { 2: step } }), target.driver());
    opened.push(db);
    expect(await storedVersion(db)).toBe(2);
    return db;
  }

  /** Opens version 2 expecting its step to fail; the database must still be at version 1. */
  async function failedUpgrade(tables: Record<string, AnyTable>, step: (m: Migrator) => Promise<void>) {
    await atVersion1();
    const error = await rejection(
      openDatabase(schema(tables, { version: 2, migrations: { 2: step } }), target.driver()),
    );
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.message).toMatch(/migration step 2\b/);
    const db = await openDatabase(v1, target.driver());
    opened.push(db);
    expect(await storedVersion(db)).toBe(1);
    expect(await db.select().from(items).orderBy(items.id)).toEqual(seedItems);
    return error;
  }

  async function cleanUp() {
    while (opened.length > 0) await opened.pop()!.close();
    await target?.dispose();
  }

  const test = (name: string, body: () => Promise<void>) =>
    it(name, async () => {
      try {
        await body();
      } finally {
        await cleanUp();
      }
    });

  describe('createTable', () => {
    const shipments = table(
      'shipments',
      {
        id: integer().primaryKey(),
        itemId: integer('item_id')
          .notNull()
          .references(() => items.id),
        note: text(),
      },
      (t) => [index('shipments_item_idx').on(t.itemId)],
    );

    test('creates a declared table with its indexes and constraints', async () => {
      const db = await upgrade({ items, orders, logs, shipments }, (m) => m.createTable(shipments));
      expect(await tableNames(db)).toContain('shipments');
      expect(await indexNames(db, 'shipments')).toEqual(['shipments_item_idx']);
      await db.insert(shipments).values({ id: 1, itemId: 2 });
      expect(await kindOf(db.insert(shipments).values({ id: 2, itemId: 99 }))).toBe('foreignKey');
      expect(await db.select().from(shipments)).toEqual([{ id: 1, itemId: 2, note: null }]);
    });

    test('fails the step when the table is already there', async () => {
      await failedUpgrade(v1.tables, (m) => m.createTable(logs));
    });
  });

  describe('dropTable', () => {
    test('drops a declared table', async () => {
      const db = await upgrade({ items, orders }, (m) => m.dropTable(logs));
      expect(await tableNames(db)).not.toContain('logs');
      expect(await db.select().from(items).orderBy(items.id)).toEqual(seedItems);
    });

    test('drops a table known only by name', async () => {
      const db = await upgrade({ items, orders }, (m) => m.dropTable('logs'));
      expect(await tableNames(db)).not.toContain('logs');
    });
  });

  describe('renameTable', () => {
    const products = table(
      'products',
      { id: integer().primaryKey(), name: text().notNull(), qty: integer() },
      (t) => [index('items_name_idx').on(t.name)],
    );

    test('keeps the rows and indexes, and foreign keys follow the new name', async () => {
      const db = await upgrade({ products, logs }, (m) => m.renameTable(items, 'products'));
      expect(await tableNames(db)).not.toContain('items');
      expect(await db.select().from(products).orderBy(products.id)).toEqual(seedItems);
      expect(await indexNames(db, 'products')).toEqual(['items_name_idx']);
      // orders.item_id now points at products.
      await db.execute(sql`INSERT INTO orders (id, item_id) VALUES (${2}, ${3})`);
      expect(await kindOf(db.execute(sql`INSERT INTO orders (id, item_id) VALUES (${3}, ${99})`))).toBe(
        'foreignKey',
      );
    });
  });

  describe('addColumn', () => {
    test('adds a nullable column: the rows there were hold NULL', async () => {
      const withColor = table('items', { ...itemColumns(), color: text() });
      const db = await upgrade({ items: withColor }, (m) => m.addColumn(withColor, withColor.color));
      expect(await columnNames(db, 'items')).toEqual(['id', 'name', 'qty', 'color']);
      expect(await db.select().from(withColor).orderBy(withColor.id)).toEqual(
        seedItems.map((r) => ({ ...r, color: null })),
      );
    });

    test('adds a NOT NULL column with a constant default: the rows there were get the default', async () => {
      const withStock = table('items', { ...itemColumns(), stock: integer().notNull().default(5) });
      const db = await upgrade({ items: withStock }, (m) => m.addColumn(withStock, withStock.stock));
      expect((await columnsOf(db, 'items')).find((c) => c.name === 'stock')).toMatchObject({ notNull: true });
      expect(await db.select({ id: withStock.id, stock: withStock.stock }).from(withStock)).toEqual([
        { id: 1, stock: 5 },
        { id: 2, stock: 5 },
        { id: 3, stock: 5 },
      ]);
    });

    test('adds a NOT NULL defaultNow() column (SQLite: by rebuilding), the time of the migration in every row', async () => {
      const withAdded = table(
        'items',
        { ...itemColumns(), addedAt: timestamp('added_at').notNull().defaultNow() },
        (t) => [index('items_name_idx').on(t.name)],
      );
      const before = Date.now();
      const db = await upgrade({ items: withAdded }, (m) => m.addColumn(withAdded, withAdded.addedAt));
      const after = Date.now();
      const rows = await db.select().from(withAdded).orderBy(withAdded.id);
      expect(rows.map(({ addedAt: _, ...r }) => r)).toEqual(seedItems);
      for (const row of rows) {
        expect(row.addedAt).toBeInstanceOf(Date);
        expect(row.addedAt.getTime()).toBeGreaterThanOrEqual(before - 5_000);
        expect(row.addedAt.getTime()).toBeLessThanOrEqual(after + 5_000);
      }
      // The rebuild kept the index and the column is NOT NULL with its default.
      expect(await indexNames(db, 'items')).toEqual(['items_name_idx']);
      const [column] = (await columnsOf(db, 'items')).filter((c) => c.name === 'added_at');
      expect(column).toMatchObject({ notNull: true });
      expect(column!.default).not.toBeNull();
      await db.execute(sql`INSERT INTO items (id, name) VALUES (${4}, ${'fig'})`);
      const [fig] = await db.select().from(withAdded).where(sql`${withAdded.id} = ${4}`);
      expect(fig!.addedAt.getTime()).toBeGreaterThanOrEqual(before - 5_000);
    });

    test('adds a NOT NULL defaultRandom() column (SQLite: by rebuilding), a different uuid in every row', async () => {
      const withRef = table('items', { ...itemColumns(), ref: uuid().notNull().defaultRandom() }, (t) => [
        index('items_name_idx').on(t.name),
      ]);
      const db = await upgrade({ items: withRef }, (m) => m.addColumn(withRef, withRef.ref));
      const rows = await db.select().from(withRef).orderBy(withRef.id);
      expect(rows.map(({ ref: _, ...r }) => r)).toEqual(seedItems);
      for (const row of rows) expect(row.ref).toMatch(UUID);
      expect(new Set(rows.map((r) => r.ref)).size).toBe(3);
      expect(await indexNames(db, 'items')).toEqual(['items_name_idx']);
    });

    test('adds a unique column (SQLite: by rebuilding), enforced from then on', async () => {
      const withCode = table('items', { ...itemColumns(), code: text().unique() }, (t) => [
        index('items_name_idx').on(t.name),
      ]);
      const db = await upgrade({ items: withCode }, (m) => m.addColumn(withCode, withCode.code));
      expect(await db.select().from(withCode).orderBy(withCode.id)).toEqual(
        seedItems.map((r) => ({ ...r, code: null })),
      );
      expect(await indexNames(db, 'items')).toEqual(['items_name_idx']);
      await db.update(withCode).set({ code: 'A' }).where(sql`${withCode.id} = ${1}`);
      expect(await kindOf(db.update(withCode).set({ code: 'A' }).where(sql`${withCode.id} = ${2}`))).toBe(
        'unique',
      );
      // The orders pointing at items survived the rebuild, and so did their foreign key.
      expect(await db.execute(sql`SELECT id, item_id FROM orders`)).toEqual([{ id: 1, item_id: 1 }]);
    });

    test('fails the step for a NOT NULL column without a default on a table with rows', async () => {
      const withSku = table('items', { ...itemColumns(), sku: text().notNull() });
      const error = await failedUpgrade({ items: withSku }, (m) => m.addColumn(withSku, withSku.sku));
      expect(error.cause).toBeInstanceOf(ConstraintError);
      expect((error.cause as ConstraintError).kind).toBe('notNull');
    });
  });

  describe('dropColumn', () => {
    test('drops a column by name, keeping the rows and the other indexes', async () => {
      const withoutQty = table('items', { id: integer().primaryKey(), name: text().notNull() }, (t) => [
        index('items_name_idx').on(t.name),
      ]);
      const db = await upgrade({ items: withoutQty, orders, logs }, (m) => m.dropColumn(withoutQty, 'qty'));
      expect(await columnNames(db, 'items')).toEqual(['id', 'name']);
      expect(await indexNames(db, 'items')).toEqual(['items_name_idx']);
      expect(await db.select().from(withoutQty).orderBy(withoutQty.id)).toEqual(
        seedItems.map(({ qty: _, ...r }) => r),
      );
      expect(await db.execute(sql`SELECT id, item_id FROM orders`)).toEqual([{ id: 1, item_id: 1 }]);
    });

    test('drops an indexed column, given as the old column, and its index with it', async () => {
      const withoutName = table('items', { id: integer().primaryKey(), qty: integer() });
      const db = await upgrade({ items: withoutName, orders, logs }, (m) =>
        m.dropColumn(withoutName, items.name),
      );
      expect(await columnNames(db, 'items')).toEqual(['id', 'qty']);
      expect(await indexNames(db, 'items')).toEqual([]);
      expect(await db.select().from(withoutName).orderBy(withoutName.id)).toEqual(
        seedItems.map(({ name: _, ...r }) => r),
      );
    });
  });

  describe('renameColumn', () => {
    test('renames a column, keeping its values and the index on it', async () => {
      const renamed = table(
        'items',
        { id: integer().primaryKey(), title: text().notNull(), quantity: integer() },
        (t) => [index('items_name_idx').on(t.title)],
      );
      const db = await upgrade({ items: renamed, orders, logs }, async (m) => {
        await m.renameColumn(items, 'name', 'title');
        await m.renameColumn('items', 'qty', 'quantity');
      });
      expect(await columnNames(db, 'items')).toEqual(['id', 'title', 'quantity']);
      expect(await indexNames(db, 'items')).toEqual(['items_name_idx']);
      expect(await db.select().from(renamed).orderBy(renamed.id)).toEqual(
        seedItems.map((r) => ({ id: r.id, title: r.name, quantity: r.qty })),
      );
    });
  });

  describe('createIndex', () => {
    const indexed = table('items', { ...itemColumns() }, (t) => [
      index('items_name_idx').on(t.name),
      uniqueIndex('items_qty_unique').on(t.qty),
    ]);

    test('creates a declared index by its name', async () => {
      const db = await upgrade({ items: indexed, orders, logs }, (m) =>
        m.createIndex(indexed, 'items_qty_unique'),
      );
      expect(await indexNames(db, 'items')).toEqual(['items_name_idx', 'items_qty_unique']);
      expect(await kindOf(db.insert(indexed).values({ id: 4, name: 'fig', qty: 3 }))).toBe('unique');
    });

    test('fails the step for a name the table does not declare, listing the ones it does', async () => {
      const error = await failedUpgrade({ items: indexed, orders, logs }, (m) =>
        m.createIndex(indexed, 'items_missing_idx'),
      );
      expect(error.message).toContain('items declares no index "items_missing_idx"');
      expect(error.message).toContain('items_name_idx, items_qty_unique');
    });
  });

  describe('dropIndex', () => {
    test('drops an index by its name, keeping the rows', async () => {
      const plain = table('items', { ...itemColumns() });
      const db = await upgrade({ items: plain, orders, logs }, (m) => m.dropIndex('items_name_idx'));
      expect(await indexNames(db, 'items')).toEqual([]);
      expect(await db.select().from(plain).orderBy(plain.id)).toEqual(seedItems);
    });
  });

  describe('sql', () => {
    test('runs a tagged template, values as parameters, and gives back its rows', async () => {
      let counted: unknown;
      const db = await upgrade(v1.tables, async (m) => {
        await m.sql`UPDATE ${items} SET qty = ${0} WHERE qty IS NULL`;
        counted = await m.sql`SELECT count(*) AS n FROM ${items} WHERE qty >= ${3}`;
      });
      expect(counted).toEqual([{ n: expect.anything() }]);
      expect(Number((counted as { n: unknown }[])[0]!.n)).toBe(2);
      expect(await db.select({ id: items.id, qty: items.qty }).from(items).orderBy(items.id)).toEqual([
        { id: 1, qty: 3 },
        { id: 2, qty: 0 },
        { id: 3, qty: 7 },
      ]);
    });

    test('runs a query built with sql`...`', async () => {
      const db = await upgrade(v1.tables, async (m) => {
        await m.sql(sql`DELETE FROM ${logs} WHERE ${logs.id} = ${1}`);
        await m.sql(sql`INSERT INTO ${logs} (id, line) VALUES (${2}, ${'migrated'})`);
      });
      expect(await db.select().from(logs)).toEqual([{ id: 2, line: 'migrated' }]);
    });
  });

  if (sqliteOnly) {
    it('leaves foreign keys switched on after a step (SQLite turns them off for the step)', async () => {
      try {
        const db = await upgrade(v1.tables, (m) => m.dropTable('logs'));
        expect(await db.execute(sql`PRAGMA foreign_keys`)).toEqual([{ foreign_keys: 1 }]);
      } finally {
        await cleanUp();
      }
    });
  }
});
