import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  type Database,
  type Driver,
  formatSchemaSnapshot,
  integer,
  MigrationError,
  SchemaMismatchError,
  schema,
  schemaSnapshot,
  sql,
  table,
  text,
  UsageError,
} from '../../src/index.js';
import { verifyMigrations } from '../../src/testing/index.js';
import { testDrivers } from '../support/drivers.js';
import { declareEveryKindSchema } from './fixtures/every-kind-schema.js';
import { app, brokenStep3, forgetfulStep3 } from './fixtures/todo-app/schema.js';

const snapshotsDir = fileURLToPath(new URL('./fixtures/todo-app/schemas', import.meta.url));

/** A temporary folder, removed after the test. */
const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'syncline-snapshots-'));
  tempDirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

for (const testDriver of testDrivers) {
  describe(`verifyMigrations [${testDriver.name}]`, () => {
    // Every database the helper asks for is a fresh one of the suite's, dropped after the test.
    const disposers: (() => Promise<void>)[] = [];
    const driver = () => {
      const { driver: d, dispose } = testDriver.create();
      disposers.push(dispose);
      return d;
    };
    afterEach(async () => {
      for (const dispose of disposers.splice(0)) await dispose();
    });

    it('passes when every step is right: each older snapshot is filled, migrated and matches', async () => {
      const checks = await verifyMigrations({ schema: app(3), snapshotsDir, driver });
      expect(checks.map((c) => [c.version, c.differences, c.error, c.failedAt])).toEqual([
        [1, [], undefined, undefined],
        [2, [], undefined, undefined],
      ]);
      expect(checks[0]!.rows).toEqual({ lists: 3, todos: 3 });
      expect(checks[0]!.rowsAfter).toEqual({ lists: 3, todos: 3, labels: 0 });
      expect(checks[1]!.rows).toEqual({ lists: 3, todos: 3, labels: 3 });
      expect(checks[1]!.rowsAfter).toEqual({ lists: 3, todos: 3, labels: 3 });
    });

    it('fails on a forgotten step, naming each old version and the missing column', async () => {
      const error = await verifyMigrations({
        schema: app(3, { 3: forgetfulStep3 }),
        snapshotsDir,
        driver,
      }).catch((e) => e);
      expect(error).toBeInstanceOf(SchemaMismatchError);
      expect(error.message).toContain('2 of 2 old schema versions did not migrate cleanly to version 3');
      expect(error.message).toMatch(/from version 1 \(.*v1\.json\): after migrating to version 3/);
      expect(error.message).toMatch(/from version 2 \(.*v2\.json\): after migrating to version 3/);
      expect(error.message).toContain('todos.due_at');
      expect(error.message).toContain('todos_due_idx');
      expect(error.message).toContain('Add the missing changes to the migration steps');
      expect(error.differences).toContainEqual(
        expect.objectContaining({ kind: 'missingColumn', table: 'todos', name: 'due_at' }),
      );
    });

    it('fails on a step that breaks, naming the version it started from and the step', async () => {
      const error = await verifyMigrations({
        schema: app(3, { 3: brokenStep3 }),
        snapshotsDir,
        driver,
      }).catch((e) => e);
      expect(error).toBeInstanceOf(MigrationError);
      expect(error.message).toMatch(
        /from version 2 \(.*v2\.json\): migrating from version 2 to 3 failed: migration step 3 \(from version 2 to 3\) failed and was rolled back/,
      );
      expect(error.message).toMatch(/from version 1 \(.*v1\.json\): migrating from version 1 to 3 failed/);
      expect(error.message).toContain('no_such_table');
      expect(error.message).toContain('Fix the failing migration step');
      expect(error.cause).toBeInstanceOf(MigrationError);
    });

    it("writes the app's own rows when given fill, and they survive the migration", async () => {
      const filled: number[] = [];
      const checks = await verifyMigrations({
        schema: app(3),
        snapshotsDir,
        driver,
        fill: async (db: Database, version: number) => {
          filled.push(version);
          await db.execute(
            sql`INSERT INTO lists (id, name) VALUES (${'00000000-0000-4000-8000-0000000000aa'}, ${'mine'})`,
          );
          await db.execute(
            sql`INSERT INTO todos (id, list_id, title) VALUES (${7}, ${'00000000-0000-4000-8000-0000000000aa'}, ${'kept'})`,
          );
        },
      });
      expect(filled).toEqual([1, 2]);
      expect(checks.map((c) => c.rowsAfter)).toEqual([
        { lists: 1, todos: 1, labels: 0 },
        { lists: 1, todos: 1, labels: 0 },
      ]);
    });

    it('generates valid rows for every column type and constraint kind', async () => {
      const dir = tempDir();
      const v1 = declareEveryKindSchema();
      writeFileSync(join(dir, 'v1.json'), formatSchemaSnapshot(schemaSnapshot(v1)));
      const v2 = schema(declareEveryKindSchema().tables, { version: 2, migrations: { 2: async () => {} } });
      const [check] = await verifyMigrations({ schema: v2, snapshotsDir: dir, driver, rowsPerTable: 4 });
      expect(check!.rows).toEqual({ members: 4, users: 4, projects: 4, drafts: 4 });
      expect(check!.differences).toEqual([]);
    });
  });
}

describe('verifyMigrations refuses', () => {
  it('a snapshot of the current version that no longer matches the schema', async () => {
    const dir = tempDir();
    cpSync(snapshotsDir, dir, { recursive: true });
    const file = join(dir, 'v3.json');
    const changed = JSON.parse(readFileSync(file, 'utf8'));
    changed.tables[1].columns.pop();
    writeFileSync(file, JSON.stringify(changed));
    const error = await verifyMigrations({ schema: app(3), snapshotsDir: dir, driver: () => sqlite() }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(SchemaMismatchError);
    expect(error.message).toContain('the schema of version 3 differs from its snapshot');
    expect(error.message).toContain('(tables: todos)');
    expect(error.message).toContain('Bump the version to 4');
  });

  it('snapshots newer than the schema', async () => {
    await expect(verifyMigrations({ schema: app(2), snapshotsDir, driver: () => sqlite() })).rejects.toThrow(
      /v3\.json is newer than the schema's version 2/,
    );
  });

  it('a missing folder, and a file whose name and content disagree', async () => {
    await expect(
      verifyMigrations({ schema: app(3), snapshotsDir: '/no/such/dir', driver: () => sqlite() }),
    ).rejects.toThrow(/the snapshots folder \/no\/such\/dir does not exist/);
    const dir = tempDir();
    cpSync(join(snapshotsDir, 'v1.json'), join(dir, 'v2.json'));
    await expect(
      verifyMigrations({ schema: app(3), snapshotsDir: dir, driver: () => sqlite() }),
    ).rejects.toThrow(UsageError);
  });

  it('a driver factory that does not give a fresh database each time', async () => {
    const dir = tempDir();
    const path = join(dir, 'shared.db');
    const error = await verifyMigrations({
      schema: app(3),
      snapshotsDir,
      driver: (): Driver => sqlite({ path }),
    }).catch((e) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.message).toMatch(
      /from version 2 \(.*v2\.json\): creating a database of version 2 from the snapshot failed/,
    );
    expect(error.message).toContain('the database is at schema version 3');
    expect(error.message).toContain('driver() must give a fresh, empty database on every call');
  });

  it('generated rows that a check the generator cannot know refuses, pointing at fill', async () => {
    const dir = tempDir();
    const picky = table('picky', { id: integer().primaryKey(), code: text().notNull() }, (t) => [
      // No generated text is this long.
      { type: 'check', name: 'picky_code_long', expression: sql`length(${t.code}) > 100` },
    ]);
    writeFileSync(join(dir, 'v1.json'), formatSchemaSnapshot(schemaSnapshot(schema({ picky }))));
    const v2 = schema({ picky }, { version: 2, migrations: { 2: async () => {} } });
    const error = await verifyMigrations({ schema: v2, snapshotsDir: dir, driver: () => sqlite() }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.message).toContain(
      'filling the database of version 1 failed: could not write a generated row into picky',
    );
    expect(error.message).toContain('pass fill(db, version) to verifyMigrations');
  });
});
