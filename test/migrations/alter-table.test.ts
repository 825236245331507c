import { describe, expect, it } from 'vitest';
import {
  type AnyTable,
  type ColumnBuilder,
  type ConstraintError,
  check,
  type Database,
  enumOf,
  index,
  integer,
  MigrationError,
  openDatabase,
  type Schema,
  schema,
  sql,
  table,
  text,
} from '../../src/index.js';
import type { Migrator } from '../../src/migrations/migrator.js';
import {
  columnNames,
  columnsOf,
  indexNames,
  rejection,
  storedVersion,
  tableNames,
  triggerNames,
} from '../support/catalog.js';
import { dialectSuite } from '../support/drivers.js';
import { type SameDatabase, sameDatabase } from '../support/same-database.js';

/**
 * alterTable(table) makes a live table match its declaration. SQLite cannot change a column in
 * place, so it rebuilds the table (create, copy, drop, rename); PostgreSQL alters it in place.
 * Either way the rows, indexes, triggers and foreign keys (both ways) must come through.
 */

// Version 1: authors, and books that belong to them (deleted with them).
const authorColumns = {
  id: integer().primaryKey(),
  name: text().notNull(),
  age: text(), // numeric strings, to become an integer
  rank: integer(), // to become text
  code: text(), // to become NOT NULL, unique
  status: text(), // to get a default, an enum
  legacy: text(), // to be dropped
};
const authors = table('authors', authorColumns, (t) => [index('authors_name_idx').on(t.name)]);
const bookColumns = {
  id: integer().primaryKey(),
  authorId: integer('author_id')
    .notNull()
    .references(() => authors.id, { onDelete: 'cascade' }),
  title: text().notNull(),
};
const books = table('books', bookColumns, (t) => [index('books_author_idx').on(t.authorId)]);
const v1 = schema({ authors, books }, { version: 1 });

const seedAuthors = [
  { id: 1, name: 'Ann', age: '42', rank: 1, code: 'A', status: 'active', legacy: 'x' },
  { id: 2, name: 'Bob', age: '7', rank: 20, code: 'B', status: null, legacy: 'y' },
];
const seedBooks = [
  { id: 1, authorId: 1, title: 'A1' },
  { id: 2, authorId: 1, title: 'A2' },
  { id: 3, authorId: 2, title: 'B1' },
];

/** `authors` as declared in a later version: version 1's columns with `changes` (undefined drops one). */
function authorsWith(
  changes: Record<string, ColumnBuilder<any, any, any, any> | undefined>,
  extras: (t: any) => any[] = (t) => [index('authors_name_idx').on(t.name)],
) {
  const columns: Record<string, ColumnBuilder<any, any, any, any>> = { ...authorColumns };
  for (const [key, builder] of Object.entries(changes)) {
    if (builder === undefined) delete columns[key];
    else columns[key] = builder;
  }
  return table('authors', columns, extras) as unknown as AnyTable & Record<string, any>;
}

const kindOf = async (write: PromiseLike<unknown>) => ((await rejection(write)) as ConstraintError).kind;

dialectSuite('Migrator.alterTable', (env) => {
  const isSqlite = env.driver.dialect === 'sqlite';
  let target: SameDatabase | undefined;
  const opened: Database<any>[] = [];

  /** A database at version 1 holding the seed rows. */
  async function atVersion1(): Promise<void> {
    target = sameDatabase(env.driver);
    const db = await openDatabase(v1, target.driver());
    await db.insert(authors).values(seedAuthors);
    await db.insert(books).values(seedBooks);
    await db.close();
  }

  /** Opens `app` on the database; it must migrate. */
  async function open(app: Schema): Promise<Database<any>> {
    const db = await openDatabase(app, target!.driver());
    opened.push(db);
    expect(await storedVersion(db)).toBe(app.version);
    return db;
  }

  /** Version 2 of the app: `tables` and one step. */
  const version2 = (tables: Record<string, AnyTable>, step: (m: Migrator) => Promise<void>) =>
    schema(tables, { version: 2, migrations: { 2: step } });

  /** Opens a version 2 whose step is alterTable(authors as now declared). */
  async function alterAuthors(declared: AnyTable, before?: (m: Migrator) => Promise<void>) {
    await atVersion1();
    return open(
      version2({ authors: declared, books }, async (m) => {
        await before?.(m);
        await m.alterTable(declared);
      }),
    );
  }

  /** Opens a version 2 whose step must fail; the database stays at version 1 as it was. */
  async function failingStep(tables: Record<string, AnyTable>, step: (m: Migrator) => Promise<void>) {
    await atVersion1();
    const error = await rejection(openDatabase(version2(tables, step), target!.driver()));
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.message).toMatch(/migration step 2\b/);
    const db = await openDatabase(v1, target!.driver());
    opened.push(db);
    expect(await storedVersion(db)).toBe(1);
    expect(await columnNames(db, 'authors')).toEqual(Object.keys(authorColumns));
    expect(await db.select().from(authors).orderBy(authors.id)).toEqual(seedAuthors);
    expect(await db.select().from(books).orderBy(books.id)).toEqual(seedBooks);
    expect(await indexNames(db, 'authors')).toEqual(['authors_name_idx']);
    expect(await tableNames(db)).not.toContain('_syncline_new_authors');
    return { error, db };
  }

  const test = (name: string, body: () => Promise<void>) =>
    it(name, async () => {
      try {
        await body();
      } finally {
        while (opened.length > 0) await opened.pop()!.close();
        await target?.dispose();
        target = undefined;
      }
    });

  /** The seed authors without `legacy`, with `patch` applied to each. */
  const authorsAfter = (patch: (a: (typeof seedAuthors)[number]) => object = () => ({})) =>
    seedAuthors.map((a) => ({ ...a, ...patch(a) }));

  describe("a column's type", () => {
    test('text to integer turns numeric strings into numbers', async () => {
      const declared = authorsWith({ age: integer() });
      const db = await alterAuthors(declared);
      expect(
        await db.select({ id: declared.id, age: declared.age }).from(declared).orderBy(declared.id),
      ).toEqual([
        { id: 1, age: 42 },
        { id: 2, age: 7 },
      ]);
      const age = (await columnsOf(db, 'authors')).find((c) => c.name === 'age');
      expect(age?.type).toBe(isSqlite ? 'INTEGER' : 'integer');
      // Stored as integers, not as text that happens to compare equal.
      expect(await db.execute(sql`SELECT age + 1 AS next FROM authors ORDER BY id`)).toEqual([
        { next: 43 },
        { next: 8 },
      ]);
    });

    test('integer to text turns numbers into their digits', async () => {
      const declared = authorsWith({ rank: text() });
      const db = await alterAuthors(declared);
      expect(await db.select({ rank: declared.rank }).from(declared).orderBy(declared.id)).toEqual([
        { rank: '1' },
        { rank: '20' },
      ]);
      const rank = (await columnsOf(db, 'authors')).find((c) => c.name === 'rank');
      expect(rank?.type).toBe(isSqlite ? 'TEXT' : 'text');
      // Text order now: '20' < '3'.
      expect(await db.execute(sql`SELECT id FROM authors WHERE rank < ${'3'} ORDER BY id`)).toEqual([
        { id: 1 },
        { id: 2 },
      ]);
    });

    test('fails the step when a value cannot become the new type (PostgreSQL) or keeps it as is (SQLite)', async () => {
      if (isSqlite) {
        // SQLite's type affinity keeps 'Ann' as text in an INTEGER column: nothing is lost.
        const declared = authorsWith({ name: integer().notNull() });
        const db = await alterAuthors(declared);
        expect(await db.execute(sql`SELECT name FROM authors ORDER BY id`)).toEqual([
          { name: 'Ann' },
          { name: 'Bob' },
        ]);
      } else {
        const declared = authorsWith({ name: integer().notNull() });
        await failingStep({ authors: declared, books }, (m) => m.alterTable(declared));
      }
    });
  });

  describe('nullability', () => {
    test('a nullable column becomes NOT NULL', async () => {
      const declared = authorsWith({ code: text().notNull() });
      const db = await alterAuthors(declared);
      expect((await columnsOf(db, 'authors')).find((c) => c.name === 'code')?.notNull).toBe(true);
      expect(await db.select().from(declared).orderBy(declared.id)).toEqual(authorsAfter());
      expect(
        await kindOf(db.execute(sql`INSERT INTO authors (id, name, code) VALUES (${3}, ${'Cy'}, NULL)`)),
      ).toBe('notNull');
    });

    test('a NULL in the column fails the step and rolls it back', async () => {
      const declared = authorsWith({ status: text().notNull() });
      const { error, db } = await failingStep({ authors: declared, books }, async (m) => {
        await m.sql`UPDATE authors SET name = ${'changed'}`;
        await m.alterTable(declared);
      });
      expect(error.message).toMatch(/status/);
      expect((await columnsOf(db, 'authors')).find((c) => c.name === 'status')?.notNull).toBe(false);
    });

    test('a NOT NULL column becomes nullable', async () => {
      const declared = authorsWith({ name: text() });
      const db = await alterAuthors(declared);
      await db.execute(sql`INSERT INTO authors (id, name) VALUES (${3}, NULL)`);
      expect(
        await db.select({ id: declared.id }).from(declared).where(sql`${declared.name} IS NULL`),
      ).toEqual([{ id: 3 }]);
    });
  });

  describe('defaults', () => {
    test('sets, changes and removes a default, leaving the values already stored', async () => {
      await atVersion1();
      const withDefault = authorsWith({ status: text().default('active') });
      const changed = authorsWith({ status: text().default('retired') });
      const without = authorsWith({ status: text() });
      const insertCy = (db: Database<any>, id: number) =>
        db.execute(sql`INSERT INTO authors (id, name) VALUES (${id}, ${'Cy'})`);
      const statusOf = async (db: Database<any>, id: number) =>
        (await db.execute<{ status: string | null }>(sql`SELECT status FROM authors WHERE id = ${id}`))[0]!
          .status;

      const at2 = await open(version2({ authors: withDefault, books }, (m) => m.alterTable(withDefault)));
      await insertCy(at2, 3);
      expect(await statusOf(at2, 3)).toBe('active');
      expect(await statusOf(at2, 2)).toBeNull();
      await at2.close();

      const at3 = await open(
        schema(
          { authors: changed, books },
          {
            version: 3,
            migrations: { 2: (m) => m.alterTable(withDefault), 3: (m) => m.alterTable(changed) },
          },
        ),
      );
      await insertCy(at3, 4);
      expect(await statusOf(at3, 4)).toBe('retired');
      expect(await statusOf(at3, 3)).toBe('active');
      await at3.close();

      const at4 = await open(
        schema(
          { authors: without, books },
          {
            version: 4,
            migrations: { 2: async () => {}, 3: async () => {}, 4: (m) => m.alterTable(without) },
          },
        ),
      );
      await insertCy(at4, 5);
      expect(await statusOf(at4, 5)).toBeNull();
      expect((await columnsOf(at4, 'authors')).find((c) => c.name === 'status')?.default).toBeNull();
    });
  });

  describe('constraints', () => {
    test('adds a unique constraint', async () => {
      const declared = authorsWith({ code: text().unique() });
      const db = await alterAuthors(declared);
      expect(await db.select().from(declared).orderBy(declared.id)).toEqual(authorsAfter());
      expect(await kindOf(db.execute(sql`UPDATE authors SET code = ${'A'} WHERE id = ${2}`))).toBe('unique');
    });

    test('a unique constraint the rows break fails the step', async () => {
      const declared = authorsWith({ code: text().unique() });
      const { db } = await failingStep({ authors: declared, books }, async (m) => {
        await m.sql`UPDATE authors SET code = ${'A'}`;
        await m.alterTable(declared);
      });
      // Nothing unique afterwards either.
      await db.execute(sql`UPDATE authors SET code = ${'same'}`);
    });

    test('adds a check constraint', async () => {
      const declared = authorsWith({}, (t) => [
        index('authors_name_idx').on(t.name),
        check('authors_rank_positive', sql`${t.rank} > 0`),
      ]);
      const db = await alterAuthors(declared);
      expect(await db.select().from(declared).orderBy(declared.id)).toEqual(authorsAfter());
      expect(await kindOf(db.execute(sql`UPDATE authors SET rank = ${0} WHERE id = ${1}`))).toBe('check');
    });

    test('a check constraint the rows break fails the step', async () => {
      const declared = authorsWith({}, (t) => [
        index('authors_name_idx').on(t.name),
        check('authors_rank_small', sql`${t.rank} < 10`),
      ]);
      await failingStep({ authors: declared, books }, (m) => m.alterTable(declared));
    });

    test('adds the check of an enum column', async () => {
      const declared = authorsWith({ status: enumOf(['active', 'retired']) });
      const db = await alterAuthors(declared);
      expect(await db.select().from(declared).orderBy(declared.id)).toEqual(authorsAfter());
      await db.execute(sql`UPDATE authors SET status = ${'retired'} WHERE id = ${2}`);
      expect(await kindOf(db.execute(sql`UPDATE authors SET status = ${'asleep'} WHERE id = ${2}`))).toBe(
        'check',
      );
    });

    test('removes a constraint the declaration no longer has', async () => {
      await atVersion1();
      const unique = authorsWith({ code: text().unique() });
      const plain = authorsWith({});
      const db = await open(
        schema(
          { authors: plain, books },
          { version: 3, migrations: { 2: (m) => m.alterTable(unique), 3: (m) => m.alterTable(plain) } },
        ),
      );
      await db.execute(sql`UPDATE authors SET code = ${'same'}`);
      expect(await db.execute(sql`SELECT DISTINCT code FROM authors`)).toEqual([{ code: 'same' }]);
    });
  });

  describe('columns', () => {
    test('drops a column the declaration no longer has, keeping the rest of every row', async () => {
      const declared = authorsWith({ legacy: undefined });
      const db = await alterAuthors(declared);
      expect(await columnNames(db, 'authors')).toEqual(['id', 'name', 'age', 'rank', 'code', 'status']);
      expect(await db.select().from(declared).orderBy(declared.id)).toEqual(
        seedAuthors.map(({ legacy: _, ...a }) => a),
      );
    });

    test('adds a declared NOT NULL column with a default, filling the rows there were', async () => {
      const declared = authorsWith({ score: integer().notNull().default(10) });
      const db = await alterAuthors(declared);
      expect(await columnNames(db, 'authors')).toEqual([...Object.keys(authorColumns), 'score']);
      expect(await db.select().from(declared).orderBy(declared.id)).toEqual(
        authorsAfter(() => ({ score: 10 })),
      );
    });
  });

  describe('indexes', () => {
    test('keeps declared indexes, adds new ones, keeps extra indexes on surviving columns, drops those on dropped columns', async () => {
      const declared = authorsWith({ legacy: undefined }, (t) => [
        index('authors_name_idx').on(t.name),
        index('authors_rank_idx').on(t.rank),
      ]);
      const db = await alterAuthors(declared, async (m) => {
        await m.sql`CREATE UNIQUE INDEX authors_code_extra ON authors (code)`;
        await m.sql`CREATE INDEX authors_legacy_extra ON authors (legacy)`;
      });
      expect(await indexNames(db, 'authors')).toEqual([
        'authors_code_extra',
        'authors_name_idx',
        'authors_rank_idx',
      ]);
      // The extra index is still unique.
      expect(await kindOf(db.execute(sql`UPDATE authors SET code = ${'A'} WHERE id = ${2}`))).toBe('unique');
      expect(await indexNames(db, 'books')).toEqual(['books_author_idx']);
    });
  });

  describe('triggers', () => {
    test('a trigger created with m.sql survives and still fires', async () => {
      await atVersion1();
      const audit = table('audit', { authorId: integer('author_id'), name: text() });
      const createTrigger = async (m: Migrator) => {
        await m.createTable(audit);
        if (isSqlite) {
          await m.sql`CREATE TRIGGER authors_audit AFTER INSERT ON authors
                      BEGIN INSERT INTO audit (author_id, name) VALUES (new.id, new.name); END`;
        } else {
          await m.sql`CREATE FUNCTION authors_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN INSERT INTO audit (author_id, name) VALUES (NEW.id, NEW.name); RETURN NEW; END $$`;
          await m.sql`CREATE TRIGGER authors_audit AFTER INSERT ON authors
                      FOR EACH ROW EXECUTE FUNCTION authors_audit_fn()`;
        }
      };
      const declared = authorsWith({ legacy: undefined, age: integer() });
      const db = await open(
        schema(
          { authors: declared, books, audit },
          { version: 3, migrations: { 2: createTrigger, 3: (m) => m.alterTable(declared) } },
        ),
      );
      expect(await triggerNames(db, 'authors')).toEqual(['authors_audit']);
      await db.insert(declared).values({ id: 3, name: 'Cy' });
      expect(await db.select().from(audit)).toEqual([{ authorId: 3, name: 'Cy' }]);
    });

    test("views and other tables' triggers that use the table still work", async () => {
      const declared = authorsWith({ age: integer() });
      const db = await alterAuthors(declared, async (m) => {
        await m.sql`CREATE VIEW author_names AS SELECT id, name FROM authors`;
        if (isSqlite) {
          await m.sql`CREATE TRIGGER books_mark_author AFTER INSERT ON books
                      BEGIN UPDATE authors SET legacy = 'wrote ' || new.title WHERE id = new.author_id; END`;
        } else {
          await m.sql`CREATE FUNCTION books_mark_author_fn() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN UPDATE authors SET legacy = 'wrote ' || NEW.title WHERE id = NEW.author_id; RETURN NEW; END $$`;
          await m.sql`CREATE TRIGGER books_mark_author AFTER INSERT ON books
                      FOR EACH ROW EXECUTE FUNCTION books_mark_author_fn()`;
        }
      });
      expect(await db.execute(sql`SELECT id, name FROM author_names ORDER BY id`)).toEqual([
        { id: 1, name: 'Ann' },
        { id: 2, name: 'Bob' },
      ]);
      await db.insert(books).values({ id: 4, authorId: 2, title: 'B2' });
      expect(await db.execute(sql`SELECT legacy FROM authors WHERE id = ${2}`)).toEqual([
        { legacy: 'wrote B2' },
      ]);
      // SQLite's rename ran in legacy mode; the connection is back to the modern one.
      if (isSqlite) {
        expect(await db.execute(sql`PRAGMA legacy_alter_table`)).toEqual([{ legacy_alter_table: 0 }]);
      }
    });
  });

  describe('foreign keys', () => {
    test('rows of other tables pointing at the altered table stay, still valid (no cascade on the rebuild)', async () => {
      const declared = authorsWith({ age: integer(), legacy: undefined });
      const db = await alterAuthors(declared);
      expect(await db.select().from(books).orderBy(books.id)).toEqual(seedBooks);
      if (isSqlite) {
        expect(await db.execute(sql`PRAGMA foreign_key_check`)).toEqual([]);
        expect(await db.execute(sql`PRAGMA foreign_keys`)).toEqual([{ foreign_keys: 1 }]);
      }
      expect(await kindOf(db.insert(books).values({ id: 4, authorId: 99, title: 'orphan' }))).toBe(
        'foreignKey',
      );
    });

    test('ON DELETE CASCADE from the altered table still works afterwards', async () => {
      const declared = authorsWith({ age: integer() });
      const db = await alterAuthors(declared);
      await db.delete(declared).where(sql`${declared.id} = ${1}`);
      expect(await db.select({ id: books.id }).from(books)).toEqual([{ id: 3 }]);
    });

    test('altering the referencing table keeps its foreign key and its cascade', async () => {
      await atVersion1();
      const booksV2 = table('books', { ...bookColumns, title: text() }, (t) => [
        index('books_author_idx').on(t.authorId),
      ]);
      const db = await open(version2({ authors, books: booksV2 }, (m) => m.alterTable(booksV2)));
      expect(await db.select().from(booksV2).orderBy(booksV2.id)).toEqual(seedBooks);
      expect(await indexNames(db, 'books')).toEqual(['books_author_idx']);
      await db.insert(booksV2).values({ id: 4, authorId: 2, title: null });
      expect(await kindOf(db.insert(booksV2).values({ id: 5, authorId: 99 }))).toBe('foreignKey');
      await db.delete(authors).where(sql`${authors.id} = ${2}`);
      expect(await db.select({ id: booksV2.id }).from(booksV2).orderBy(booksV2.id)).toEqual([
        { id: 1 },
        { id: 2 },
      ]);
    });

    test('a step that leaves a row pointing nowhere fails and rolls back', async () => {
      const declared = authorsWith({ age: integer() });
      const { error, db } = await failingStep({ authors: declared, books }, async (m) => {
        await m.alterTable(declared);
        await m.sql`INSERT INTO books (id, author_id, title) VALUES (${9}, ${99}, ${'orphan'})`;
      });
      if (isSqlite) expect(error.message).toMatch(/foreign keys point nowhere \(books row 9 -> authors\)/);
      expect(await db.select({ id: books.id }).from(books).where(sql`${books.id} = ${9}`)).toEqual([]);
    });

    test('a table referenced through a unique column (not its key) can be altered', async () => {
      await atVersion1();
      const uniqueCode = authorsWith({ code: text().unique() });
      const badges = table('badges', {
        id: integer().primaryKey(),
        authorCode: text('author_code').references(() => uniqueCode.code),
      });
      const declared = authorsWith({ code: text().unique(), age: integer() });
      const db = await open(
        schema(
          { authors: declared, books, badges },
          {
            version: 3,
            migrations: {
              2: async (m) => {
                await m.alterTable(uniqueCode);
                await m.createTable(badges);
                await m.db.insert(badges).values({ id: 1, authorCode: 'A' });
              },
              3: (m) => m.alterTable(declared),
            },
          },
        ),
      );
      expect(await db.select().from(badges)).toEqual([{ id: 1, authorCode: 'A' }]);
      expect(await kindOf(db.insert(badges).values({ id: 2, authorCode: 'nobody' }))).toBe('foreignKey');
      expect(await kindOf(db.execute(sql`UPDATE authors SET code = ${'A'} WHERE id = ${2}`))).toBe('unique');
    });

    test('a self-referencing table keeps its links', async () => {
      await atVersion1();
      const nodeColumns = {
        id: integer().primaryKey(),
        parentId: integer('parent_id').references((): any => nodes.id, { onDelete: 'cascade' }),
        label: text(),
      };
      const nodes = table('nodes', nodeColumns);
      const nodesV3 = table('nodes', { ...nodeColumns, label: text().notNull().default('') });
      const db = await open(
        schema(
          { authors, books, nodes: nodesV3 },
          {
            version: 3,
            migrations: {
              2: async (m) => {
                await m.createTable(nodes);
                await m.db.insert(nodes).values([
                  { id: 1, parentId: null, label: 'root' },
                  { id: 2, parentId: 1, label: 'child' },
                ]);
              },
              3: (m) => m.alterTable(nodesV3),
            },
          },
        ),
      );
      expect(await db.select().from(nodesV3).orderBy(nodesV3.id)).toEqual([
        { id: 1, parentId: null, label: 'root' },
        { id: 2, parentId: 1, label: 'child' },
      ]);
      expect(await kindOf(db.insert(nodesV3).values({ id: 3, parentId: 99 }))).toBe('foreignKey');
      await db.delete(nodesV3).where(sql`${nodesV3.id} = ${1}`);
      expect(await db.select().from(nodesV3)).toEqual([]);
    });
  });

  if (isSqlite) {
    describe('SQLite: foreign keys are off during a step', () => {
      test('so deleting a parent row does not cascade, and the orphans it leaves fail the step', async () => {
        const { error } = await failingStep({ authors, books }, async (m) => {
          await m.sql`DELETE FROM authors WHERE id = ${1}`;
        });
        expect(error.message).toMatch(/2 rows whose foreign keys point nowhere/);
      });
    });
  }

  test('fails the step when the table does not exist', async () => {
    const missing = table('missing', { id: integer().primaryKey() });
    const { error } = await failingStep({ authors, books, missing }, (m) => m.alterTable(missing));
    expect(error.message).toContain('alterTable: the table "missing" does not exist');
  });

  test('changes nothing when the table already matches its declaration', async () => {
    await atVersion1();
    const db = await open(version2({ authors, books }, (m) => m.alterTable(authors)));
    expect(await columnsOf(db, 'authors')).toEqual(await columnsOfVersion1());
    expect(await db.select().from(authors).orderBy(authors.id)).toEqual(seedAuthors);
    expect(await db.select().from(books).orderBy(books.id)).toEqual(seedBooks);
    expect(await indexNames(db, 'authors')).toEqual(['authors_name_idx']);
  });

  /** The columns a new version-1 database has, to compare with. */
  async function columnsOfVersion1() {
    const fresh = await openDatabase(v1, env.freshDriver());
    return columnsOf(fresh, 'authors');
  }
});
