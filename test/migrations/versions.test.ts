import { describe, expect, it } from 'vitest';
import {
  boolean,
  type Database,
  index,
  integer,
  MigrationError,
  openDatabase,
  schema,
  sql,
  table,
  text,
} from '../../src/index.js';
import type { Migrator } from '../../src/migrations/migrator.js';
import type { MigrationProgress, OpenDetails } from '../../src/migrations/run-migrations.js';
import { columnNames, rejection, storedVersion, tableNames } from '../support/catalog.js';
import { dialectSuite } from '../support/drivers.js';
import { type SameDatabase, sameDatabase } from '../support/same-database.js';

// Version 1: notes with a body.
const notesV1 = table('notes', { id: integer().primaryKey(), body: text().notNull() });

// Version 2: notes can be pinned; the notes there were are not.
const notesV2 = table('notes', {
  id: integer().primaryKey(),
  body: text().notNull(),
  pinned: boolean().notNull().default(false),
});

// Version 3: `body` is now `content`, and the #words in it are also kept as rows of `tags`.
const notesV3 = table(
  'notes',
  {
    id: integer().primaryKey(),
    content: text().notNull(),
    pinned: boolean().notNull().default(false),
  },
  (t) => [index('notes_pinned_idx').on(t.pinned)],
);
const tagsV3 = table('tags', {
  id: integer().primaryKey(),
  noteId: integer('note_id')
    .notNull()
    .references(() => notesV3.id, { onDelete: 'cascade' }),
  name: text().notNull(),
});

/** The app's three versions; `calls` hears each step that runs. */
function appVersions(calls: number[] = []) {
  const steps = {
    2: async (m: Migrator) => {
      calls.push(2);
      await m.addColumn(notesV2, notesV2.pinned);
    },
    3: async (m: Migrator) => {
      calls.push(3);
      await m.renameColumn(notesV2, 'body', 'content');
      await m.createTable(tagsV3);
      await m.createIndex(notesV3, 'notes_pinned_idx');
      // Moving data: read with the step's transaction, write with the builder and with m.sql.
      const notes = await m.db
        .select({ id: notesV3.id, content: notesV3.content })
        .from(notesV3)
        .orderBy(notesV3.id);
      let tagId = 0;
      for (const note of notes) {
        for (const word of note.content.split(' ').filter((w) => w.startsWith('#'))) {
          await m.db.insert(tagsV3).values({ id: ++tagId, noteId: note.id, name: word.slice(1) });
        }
      }
      await m.sql`UPDATE ${notesV3} SET pinned = ${true} WHERE id IN (SELECT note_id FROM ${tagsV3} WHERE name = ${'urgent'})`;
    },
  };
  return {
    v1: schema({ notes: notesV1 }, { version: 1 }),
    v2: schema({ notes: notesV2 }, { version: 2, migrations: { 2: steps[2] } }),
    v3: schema({ notes: notesV3, tags: tagsV3 }, { version: 3, migrations: steps }),
  };
}

const firstNotes = [
  { id: 1, body: 'buy milk #home' },
  { id: 2, body: 'call the plumber #home #urgent' },
  { id: 3, body: 'nothing to tag' },
];

/** A database at version 1 holding `firstNotes`. */
async function databaseAtVersion1(target: SameDatabase): Promise<void> {
  const db = await openDatabase(appVersions().v1, target.driver());
  await db.insert(notesV1).values(firstNotes);
  await db.close();
}

async function notesAndTags(db: Database<any>) {
  return {
    notes: await db.select().from(notesV3).orderBy(notesV3.id),
    tags: await db
      .select({ noteId: tagsV3.noteId, name: tagsV3.name })
      .from(tagsV3)
      .orderBy(tagsV3.noteId, tagsV3.name),
  };
}

const migratedNotes = {
  notes: [
    { id: 1, content: 'buy milk #home', pinned: false },
    { id: 2, content: 'call the plumber #home #urgent', pinned: true },
    { id: 3, content: 'nothing to tag', pinned: false },
  ],
  tags: [
    { noteId: 1, name: 'home' },
    { noteId: 2, name: 'home' },
    { noteId: 2, name: 'urgent' },
  ],
};

dialectSuite('schema versions', (env) => {
  /** The tables syncline itself adds: `__schema` on PostgreSQL, none on SQLite. */
  const ownTables = env.driver.dialect === 'postgres' ? ['__schema'] : [];

  /** Runs `body` on a database that can be reopened, and removes it afterwards. */
  async function withDatabase(body: (target: SameDatabase) => Promise<void>): Promise<void> {
    const target = sameDatabase(env.driver);
    try {
      await body(target);
    } finally {
      await target.dispose();
    }
  }

  describe('a new database', () => {
    it('gets every table and index and the current version, and no step runs', async () => {
      const calls: number[] = [];
      const db = await openDatabase(appVersions(calls).v3, env.freshDriver());
      expect(await tableNames(db)).toEqual([...ownTables, 'notes', 'tags'].sort());
      expect(await storedVersion(db)).toBe(3);
      expect(calls).toEqual([]);
      await db.insert(notesV3).values({ id: 1, content: 'x' });
      await db.insert(tagsV3).values({ id: 1, noteId: 1, name: 'y' });
      expect(await db.select().from(notesV3)).toEqual([{ id: 1, content: 'x', pinned: false }]);
    });

    it('keeps the version where the dialect does: PRAGMA user_version on SQLite, the __schema table on PostgreSQL', async () => {
      const db = await openDatabase(appVersions().v3, env.freshDriver());
      if (env.driver.dialect === 'sqlite') {
        expect(await db.execute(sql`PRAGMA user_version`)).toEqual([{ user_version: 3 }]);
        expect(await tableNames(db)).not.toContain('__schema');
      } else {
        expect(await columnNames(db, '__schema')).toEqual(['id', 'version', 'updated_at']);
        expect(await db.execute(sql`SELECT id, version FROM __schema`)).toEqual([{ id: 1, version: 3 }]);
      }
    });

    it('runs onCreate instead of creating every table, when the app gives one', async () => {
      const created: string[] = [];
      const db = await openDatabase(appVersions().v3, env.freshDriver(), {
        migrations: {
          onCreate: async (m) => {
            created.push('onCreate');
            await m.createTable(notesV3);
            await m.db.insert(notesV3).values({ id: 1, content: 'welcome' });
          },
        },
      });
      expect(created).toEqual(['onCreate']);
      expect(await tableNames(db)).toEqual([...ownTables, 'notes'].sort());
      expect(await db.select().from(notesV3)).toEqual([{ id: 1, content: 'welcome', pinned: false }]);
      expect(await storedVersion(db)).toBe(3);
    });

    it('calls beforeOpen once, after creating, with { from: 0, to, created: true }', async () => {
      const seen: OpenDetails[] = [];
      const db = await openDatabase(appVersions().v3, env.freshDriver(), {
        migrations: {
          beforeOpen: async (opened, details) => {
            seen.push(details);
            // The tables and the version are already there, and the database can be used.
            expect(await storedVersion(opened)).toBe(3);
            await opened.insert(notesV3).values({ id: 7, content: 'seeded in beforeOpen' });
          },
        },
      });
      expect(seen).toEqual([{ from: 0, to: 3, created: true }]);
      expect(await db.select({ id: notesV3.id }).from(notesV3)).toEqual([{ id: 7 }]);
    });

    it('reports creating as step 1 of 1', async () => {
      const progress: MigrationProgress[] = [];
      await openDatabase(appVersions().v3, env.freshDriver(), {
        migrations: { onProgress: (p) => progress.push(p) },
      });
      expect(progress).toEqual([{ step: 1, of: 1, from: 0, to: 3, version: 3 }]);
    });
  });

  describe('an older database', () => {
    it('goes from 1 to 2 to 3, one version per open, keeping its rows', () =>
      withDatabase(async (target) => {
        await databaseAtVersion1(target);
        const calls: number[] = [];
        const { v2, v3 } = appVersions(calls);

        const at2 = await openDatabase(v2, target.driver());
        expect(calls).toEqual([2]);
        expect(await storedVersion(at2)).toBe(2);
        expect(await at2.select().from(notesV2).orderBy(notesV2.id)).toEqual(
          firstNotes.map((n) => ({ ...n, pinned: false })),
        );
        await at2.close();

        const at3 = await openDatabase(v3, target.driver());
        expect(calls).toEqual([2, 3]);
        expect(await storedVersion(at3)).toBe(3);
        expect(await columnNames(at3, 'notes')).toEqual(['id', 'content', 'pinned']);
        expect(await notesAndTags(at3)).toEqual(migratedNotes);
        await at3.close();
      }));

    it('runs every step from its version to the current one in order, in one open', () =>
      withDatabase(async (target) => {
        await databaseAtVersion1(target);
        const calls: number[] = [];
        const seen: OpenDetails[] = [];
        const db = await openDatabase(appVersions(calls).v3, target.driver(), {
          migrations: {
            beforeOpen: async (opened, details) => {
              seen.push(details);
              expect(await storedVersion(opened)).toBe(3);
            },
          },
        });
        expect(calls).toEqual([2, 3]);
        expect(seen).toEqual([{ from: 1, to: 3, created: false }]);
        expect(await notesAndTags(db)).toEqual(migratedNotes);
        await db.close();
      }));

    it('reports progress as step n of m, before each step', () =>
      withDatabase(async (target) => {
        await databaseAtVersion1(target);
        const calls: number[] = [];
        const events: (MigrationProgress | number)[] = [];
        const db = await openDatabase(appVersions(calls).v3, target.driver(), {
          migrations: {
            onProgress: (p) => {
              // What had run when the report came: it comes before its step.
              events.push({ ...p }, calls.length);
            },
          },
        });
        expect(events).toEqual([
          { step: 1, of: 2, from: 1, to: 3, version: 2 },
          0,
          { step: 2, of: 2, from: 1, to: 3, version: 3 },
          1,
        ]);
        await db.close();
      }));

    it('names the versions that have no step, and runs none of them', () =>
      withDatabase(async (target) => {
        await databaseAtVersion1(target);
        const calls: number[] = [];
        const gap = schema(
          { notes: notesV3, tags: tagsV3 },
          {
            version: 3,
            migrations: {
              3: async () => {
                calls.push(3);
              },
            },
          },
        );
        const error = await rejection(openDatabase(gap, target.driver()));
        expect(error).toBeInstanceOf(MigrationError);
        expect(error.message).toMatch(/version 1/);
        expect(error.message).toMatch(/no migration step to version 2\b/);
        expect(calls).toEqual([]);

        const db = await openDatabase(appVersions().v1, target.driver());
        expect(await storedVersion(db)).toBe(1);
        expect(await db.select().from(notesV1).orderBy(notesV1.id)).toEqual(firstNotes);
        await db.close();
      }));
  });

  describe('a database at the current version', () => {
    it('opens again without running a step, creating or writing anything', () =>
      withDatabase(async (target) => {
        await databaseAtVersion1(target);
        const calls: number[] = [];
        const { v3 } = appVersions(calls);
        await (await openDatabase(v3, target.driver())).close();
        expect(calls).toEqual([2, 3]);

        const progress: MigrationProgress[] = [];
        const seen: OpenDetails[] = [];
        let created = 0;
        const db = await openDatabase(v3, target.driver(), {
          migrations: {
            onCreate: async () => {
              created++;
            },
            onProgress: (p) => progress.push(p),
            beforeOpen: async (_db, details) => {
              seen.push(details);
            },
          },
        });
        expect(calls).toEqual([2, 3]);
        expect(created).toBe(0);
        expect(progress).toEqual([]);
        expect(seen).toEqual([{ from: 3, to: 3, created: false }]);
        expect(await storedVersion(db)).toBe(3);
        expect(await tableNames(db)).toEqual([...ownTables, 'notes', 'tags'].sort());
        expect(await notesAndTags(db)).toEqual(migratedNotes);
        await db.close();
      }));
  });

  describe('a database newer than the app', () => {
    it('refuses to open with a MigrationError naming both versions, and is left as it was', () =>
      withDatabase(async (target) => {
        await databaseAtVersion1(target);
        const { v3 } = appVersions();
        await (await openDatabase(v3, target.driver())).close();

        const calls: number[] = [];
        const error = await rejection(openDatabase(appVersions(calls).v2, target.driver()));
        expect(error).toBeInstanceOf(MigrationError);
        expect(error.message).toMatch(/schema version 3\b/);
        expect(error.message).toMatch(/schema version 2\b/);
        expect(calls).toEqual([]);

        const db = await openDatabase(v3, target.driver());
        expect(await storedVersion(db)).toBe(3);
        expect(await columnNames(db, 'notes')).toEqual(['id', 'content', 'pinned']);
        expect(await notesAndTags(db)).toEqual(migratedNotes);
        await db.close();
      }));

    it('does not call beforeOpen', () =>
      withDatabase(async (target) => {
        await (await openDatabase(appVersions().v3, target.driver())).close();
        let called = false;
        await rejection(
          openDatabase(appVersions().v1, target.driver(), {
            migrations: {
              beforeOpen: async () => {
                called = true;
              },
            },
          }),
        );
        expect(called).toBe(false);
      }));
  });

  describe('migrations: { enabled: false }', () => {
    const untouched = {
      onCreate: async () => {
        throw new Error('onCreate must not run');
      },
      beforeOpen: async () => {
        throw new Error('beforeOpen must not run');
      },
      onProgress: () => {
        throw new Error('onProgress must not run');
      },
    };

    it('creates nothing in a new database: no tables, no version', async () => {
      const calls: number[] = [];
      const db = await openDatabase(appVersions(calls).v3, env.freshDriver(), {
        migrations: { enabled: false, ...untouched },
      });
      expect(await tableNames(db)).toEqual([]);
      expect(await storedVersion(db)).toBe(0);
      expect(calls).toEqual([]);
      // The app manages the schema itself, and the database is usable for that.
      await db.execute(sql`CREATE TABLE managed_elsewhere (id INTEGER PRIMARY KEY)`);
      expect(await tableNames(db)).toEqual(['managed_elsewhere']);
    });

    it('leaves an older database at its version, with its tables and rows', () =>
      withDatabase(async (target) => {
        await databaseAtVersion1(target);
        const calls: number[] = [];
        const { v3 } = appVersions(calls);
        const db = await openDatabase(v3, target.driver(), { migrations: { enabled: false, ...untouched } });
        expect(calls).toEqual([]);
        expect(await storedVersion(db)).toBe(1);
        expect(await tableNames(db)).toEqual([...ownTables, 'notes'].sort());
        expect(await columnNames(db, 'notes')).toEqual(['id', 'body']);
        expect(await db.execute(sql`SELECT id, body FROM notes ORDER BY id`)).toEqual(firstNotes);
        await db.close();

        // Nothing was recorded either: the next open with migrations migrates from 1.
        const migrated = await openDatabase(v3, target.driver());
        expect(calls).toEqual([2, 3]);
        expect(await notesAndTags(migrated)).toEqual(migratedNotes);
        await migrated.close();
      }));
  });
});
