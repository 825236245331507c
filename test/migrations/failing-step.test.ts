import { describe, expect, it } from 'vitest';
import {
  boolean,
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
} from '../../src/index.js';
import type { Migrator } from '../../src/migrations/migrator.js';
import {
  columnNames,
  indexNames,
  rejection,
  storedVersion,
  tableNames,
  triggerNames,
} from '../support/catalog.js';
import { dialectSuite } from '../support/drivers.js';
import { type SameDatabase, sameDatabase } from '../support/same-database.js';

const notesV1 = table('notes', { id: integer().primaryKey(), body: text().notNull() });
const notesV2 = table(
  'notes',
  {
    id: integer().primaryKey(),
    body: text().notNull(),
    pinned: boolean().notNull().default(false),
  },
  (t) => [index('notes_pinned_idx').on(t.pinned)],
);
// Version 3 archives notes: a timestamp on each note, and a table of archived bodies.
const notesV3 = table(
  'notes',
  {
    id: integer().primaryKey(),
    body: text().notNull(),
    pinned: boolean().notNull().default(false),
    archivedAt: timestamp('archived_at'),
  },
  (t) => [index('notes_pinned_idx').on(t.pinned)],
);
const archive = table('archive', { id: integer().primaryKey(), body: text().notNull() });

const v1 = schema({ notes: notesV1 }, { version: 1 });
const rows = [
  { id: 1, body: 'first' },
  { id: 2, body: 'second' },
];
const rowsAt2 = rows.map((r) => ({ ...r, pinned: false }));

const step2 = async (m: Migrator) => {
  await m.addColumn(notesV2, notesV2.pinned);
  await m.createIndex(notesV2, 'notes_pinned_idx');
};

/** Version 3 with the step 3 given; `calls` hears which steps ran. */
function appAt3(step3: (m: Migrator) => Promise<void>, calls: number[] = []) {
  return schema(
    { notes: notesV3, archive },
    {
      version: 3,
      migrations: {
        2: async (m) => {
          calls.push(2);
          await step2(m);
        },
        3: async (m) => {
          calls.push(3);
          await step3(m);
        },
      },
    },
  );
}

/** A correct step 3: what the fixed app ships. */
const workingStep3 = async (m: Migrator) => {
  await m.addColumn(notesV3, notesV3.archivedAt);
  await m.createTable(archive);
};

/** Step 3 changes the schema and the data, then throws. */
const failure = new Error('step 3 found something it cannot handle');
const throwingStep3 = async (m: Migrator) => {
  await m.addColumn(notesV3, notesV3.archivedAt);
  await m.createTable(archive);
  await m.db.insert(archive).values({ id: 1, body: 'first' });
  await m.sql`UPDATE notes SET body = upper(body)`;
  await m.db.delete(notesV3).where(sql`${notesV3.id} = ${2}`);
  await m.db.insert(notesV3).values({ id: 3, body: 'third' });
  throw failure;
};

dialectSuite('a failing migration step', (env) => {
  async function withDatabase(body: (target: SameDatabase) => Promise<void>): Promise<void> {
    const target = sameDatabase(env.driver);
    try {
      await body(target);
    } finally {
      await target.dispose();
    }
  }

  /** A database at version 1 holding `rows`. */
  async function atVersion1(target: SameDatabase): Promise<void> {
    const db = await openDatabase(v1, target.driver());
    await db.insert(notesV1).values(rows);
    await db.close();
  }

  /** Opens without migrating, to look at what is there. */
  function look(target: SameDatabase): Promise<Database> {
    return openDatabase(schema({}), target.driver(), { migrations: { enabled: false } });
  }

  /** The database is exactly as step 2 left it. */
  async function expectAtVersion2(target: SameDatabase): Promise<void> {
    const db = await look(target);
    try {
      expect(await storedVersion(db)).toBe(2);
      expect(await tableNames(db)).not.toContain('archive');
      expect(await columnNames(db, 'notes')).toEqual(['id', 'body', 'pinned']);
      expect(await indexNames(db, 'notes')).toEqual(['notes_pinned_idx']);
      expect(await db.select().from(notesV2).orderBy(notesV2.id)).toEqual(rowsAt2);
    } finally {
      await db.close();
    }
  }

  it('says which step failed, keeps the cause, and leaves the version and data as step 2 left them', () =>
    withDatabase(async (target) => {
      await atVersion1(target);
      const calls: number[] = [];
      const error = await rejection(openDatabase(appAt3(throwingStep3, calls), target.driver()));
      expect(error).toBeInstanceOf(MigrationError);
      expect(error.message).toMatch(/migration step 3 \(from version 2 to 3\) failed/);
      expect(error.message).toMatch(/stays at version 2/);
      expect(error.message).toContain(failure.message);
      expect(error.cause).toBe(failure);
      // Step 2 ran and committed before step 3 failed.
      expect(calls).toEqual([2, 3]);
      await expectAtVersion2(target);
    }));

  it('opens with the fixed app afterwards, running only the failed step', () =>
    withDatabase(async (target) => {
      await atVersion1(target);
      await rejection(openDatabase(appAt3(throwingStep3), target.driver()));

      const calls: number[] = [];
      const db = await openDatabase(appAt3(workingStep3, calls), target.driver());
      expect(calls).toEqual([3]);
      expect(await storedVersion(db)).toBe(3);
      expect(await db.select().from(notesV3).orderBy(notesV3.id)).toEqual(
        rowsAt2.map((r) => ({ ...r, archivedAt: null })),
      );
      expect(await db.select().from(archive)).toEqual([]);
      await db.close();
    }));

  it('rolls back a step whose SQL fails, with the database error as the cause', () =>
    withDatabase(async (target) => {
      await atVersion1(target);
      const error = await rejection(
        openDatabase(
          appAt3(async (m) => {
            await m.addColumn(notesV3, notesV3.archivedAt);
            await m.createTable(archive);
            await m.db.insert(notesV3).values({ id: 1, body: 'a second row 1' });
          }),
          target.driver(),
        ),
      );
      expect(error).toBeInstanceOf(MigrationError);
      expect(error.message).toMatch(/migration step 3\b/);
      expect(error.cause).toBeInstanceOf(ConstraintError);
      expect((error.cause as ConstraintError).kind).toBe('primaryKey');
      await expectAtVersion2(target);
    }));

  it('rolls back a step that caught a failed statement and went on', () =>
    withDatabase(async (target) => {
      await atVersion1(target);
      const error = await rejection(
        openDatabase(
          appAt3(async (m) => {
            await m.addColumn(notesV3, notesV3.archivedAt);
            await m.sql`INSERT INTO notes (id, body) VALUES (${1}, ${'duplicate'})`.catch(() => {});
            await m.createTable(archive);
          }),
          target.driver(),
        ),
      );
      expect(error).toBeInstanceOf(MigrationError);
      expect(error.message).toMatch(/migration step 3\b/);
      await expectAtVersion2(target);
    }));

  it('rolls back a table rebuilt by alterTable, keeping its indexes and triggers', () =>
    withDatabase(async (target) => {
      await atVersion1(target);
      await (await openDatabase(appAt3(workingStep3), target.driver())).close();
      // A trigger the app made with SQL, which a rebuild has to carry over (or, here, leave alone).
      const setup = await look(target);
      if (env.driver.dialect === 'sqlite') {
        await setup.execute(sql`CREATE TRIGGER notes_touch AFTER UPDATE ON notes BEGIN SELECT 1; END`);
      } else {
        await setup.execute(
          sql`CREATE FUNCTION notes_touch_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
        );
        await setup.execute(
          sql`CREATE TRIGGER notes_touch AFTER UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION notes_touch_fn()`,
        );
      }
      await setup.close();

      // Version 4 makes the body nullable and drops archived_at, then fails.
      const notesV4 = table(
        'notes',
        { id: integer().primaryKey(), body: text(), pinned: boolean().notNull().default(false) },
        (t) => [index('notes_pinned_idx').on(t.pinned)],
      );
      const v4 = schema(
        { notes: notesV4, archive },
        {
          version: 4,
          migrations: {
            4: async (m) => {
              await m.alterTable(notesV4);
              await m.db.insert(notesV4).values({ id: 9, body: null });
              throw failure;
            },
          },
        },
      );
      const error = await rejection(openDatabase(v4, target.driver()));
      expect(error.message).toMatch(/migration step 4\b/);
      expect(error.cause).toBe(failure);

      const db = await look(target);
      expect(await storedVersion(db)).toBe(3);
      expect(await columnNames(db, 'notes')).toEqual(['id', 'body', 'pinned', 'archived_at']);
      expect(await indexNames(db, 'notes')).toEqual(['notes_pinned_idx']);
      expect(await triggerNames(db, 'notes')).toEqual(['notes_touch']);
      expect(await tableNames(db)).not.toContain('_syncline_new_notes');
      expect(await db.select({ id: notesV3.id }).from(notesV3).orderBy(notesV3.id)).toEqual([
        { id: 1 },
        { id: 2 },
      ]);
      // body is still NOT NULL.
      const insert = await rejection(db.insert(notesV4).values({ id: 10, body: null }));
      expect((insert as ConstraintError).kind).toBe('notNull');
      await db.close();
    }));

  describe('when creating a new database', () => {
    it('rolls back a failing onCreate: no tables, no version, and the next open creates it', () =>
      withDatabase(async (target) => {
        const error = await rejection(
          openDatabase(appAt3(workingStep3), target.driver(), {
            migrations: {
              onCreate: async (m) => {
                await m.createTable(notesV3);
                await m.db.insert(notesV3).values({ id: 1, body: 'seed' });
                throw failure;
              },
            },
          }),
        );
        expect(error).toBeInstanceOf(MigrationError);
        expect(error.message).toMatch(/creating the schema \(version 3\) failed/);
        expect(error.cause).toBe(failure);

        const db = await look(target);
        expect(await storedVersion(db)).toBe(0);
        expect(await tableNames(db)).not.toContain('notes');
        await db.close();

        const created = await openDatabase(appAt3(workingStep3), target.driver());
        expect(await storedVersion(created)).toBe(3);
        expect(await created.select().from(notesV3)).toEqual([]);
        await created.close();
      }));
  });
});
