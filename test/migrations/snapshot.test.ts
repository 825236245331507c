import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import {
  type ColumnSnapshot,
  customType,
  Database,
  eq,
  formatSchemaSnapshot,
  integer,
  openDatabase,
  postgresDialect,
  type SchemaSnapshot,
  schema,
  schemaFromSnapshot,
  schemaSnapshot,
  sqliteDialect,
  table,
  text,
  UsageError,
  verifySchema,
} from '../../src/index.js';
import { decodeSnapshotValue, encodeSnapshotValue } from '../../src/migrations/snapshot-value.js';
import { dialectSuite } from '../support/drivers.js';
import { declareEveryKindSchema, everyKindSchema } from './fixtures/every-kind-schema.js';
import { appV1 } from './fixtures/todo-app/schema.js';

const dialects = { sqlite: sqliteDialect, postgres: postgresDialect } as const;
const v1File = fileURLToPath(new URL('./fixtures/todo-app/schemas/v1.json', import.meta.url));

const snapshot = schemaSnapshot(everyKindSchema);
const tableOf = (s: SchemaSnapshot, name: string) => s.tables.find((t) => t.name === name)!;
const columnOf = (s: SchemaSnapshot, t: string, c: string): ColumnSnapshot =>
  tableOf(s, t).columns.find((col) => col.name === c)!;
/** A snapshot as JSON would give it back: what a test of the file format compares. */
const asJson = (s: SchemaSnapshot) => JSON.parse(formatSchemaSnapshot(s));

describe('schemaSnapshot', () => {
  it('lists the tables in schema order, with their keys, names and the local flag', () => {
    expect(snapshot.format).toBe(1);
    expect(snapshot.version).toBe(1);
    expect(snapshot.tables.map((t) => [t.key, t.name, t.local])).toEqual([
      ['members', 'members', false],
      ['users', 'users', false],
      ['projects', 'projects', false],
      ['drafts', 'drafts', true],
    ]);
  });

  it('describes every column type with its SQL name, key and constraints', () => {
    const users = tableOf(snapshot, 'users');
    expect(users.columns.map((c) => [c.key, c.name, c.type])).toEqual([
      ['id', 'id', 'uuid'],
      ['email', 'email', 'text'],
      ['handle', 'handle', 'text'],
      ['age', 'age', 'integer'],
      ['visits', 'visits', 'bigint'],
      ['score', 'score', 'real'],
      ['active', 'active', 'boolean'],
      ['createdAt', 'created_at', 'timestamp'],
      ['birthday', 'birthday', 'timestamp'],
      ['settings', 'settings', 'json'],
      ['tags', 'tags', 'json'],
      ['avatar', 'avatar', 'blob'],
      ['balance', 'balance', 'numeric'],
      ['role', 'role', 'enum'],
      ['home', 'home', 'custom'],
      ['credit', 'credit', 'custom'],
      ['nickname', 'nickname', 'text'],
      ['slug', 'slug', 'text'],
    ]);
    expect(columnOf(snapshot, 'users', 'id')).toEqual({
      name: 'id',
      key: 'id',
      type: 'uuid',
      notNull: true,
      primaryKey: true,
      unique: false,
      default: { kind: 'random' },
    });
    expect(columnOf(snapshot, 'users', 'email')).toMatchObject({ notNull: true, unique: true });
    expect(columnOf(snapshot, 'users', 'email')).not.toHaveProperty('uniqueName');
    expect(columnOf(snapshot, 'users', 'handle')).toMatchObject({
      notNull: false,
      unique: true,
      uniqueName: 'users_handle_key',
    });
    expect(columnOf(snapshot, 'users', 'role').enumValues).toEqual(['admin', 'member', "o'brien"]);
    expect(columnOf(snapshot, 'users', 'home').customType).toEqual({
      name: 'point',
      sqlType: { sqlite: 'TEXT', postgres: 'TEXT' },
    });
    expect(columnOf(snapshot, 'users', 'credit').customType).toEqual({
      name: 'money',
      sqlType: { sqlite: 'INTEGER', postgres: 'BIGINT' },
    });
  });

  it('keeps every kind of default, values tagged where JSON has no type for them', () => {
    const def = (c: string) => columnOf(snapshot, 'users', c).default;
    expect(def('visits')).toEqual({ kind: 'value', value: { $type: 'bigint', value: '9007199254740993' } });
    expect(def('score')).toEqual({ kind: 'value', value: 0.5 });
    expect(def('active')).toEqual({ kind: 'value', value: true });
    expect(def('birthday')).toEqual({
      kind: 'value',
      value: { $type: 'date', value: '2000-01-02T03:04:05.678Z' },
    });
    expect(def('settings')).toEqual({ kind: 'value', value: { theme: 'dark' } });
    expect(def('tags')).toEqual({ kind: 'value', value: [] });
    expect(def('avatar')).toEqual({ kind: 'value', value: { $type: 'bytes', value: '0102ff' } });
    expect(def('created_at')).toEqual({ kind: 'now' });
    expect(def('nickname')).toEqual({ kind: 'sql', sqlite: "'anon'", postgres: "'anon'" });
    expect(def('slug')).toEqual({ kind: 'fn' });
    // A custom type's encoders are code: its default is kept as each dialect stores it.
    expect(def('credit')).toEqual({ kind: 'value', driverValue: { sqlite: 100, postgres: 100 } });
  });

  it('keeps references, composite keys, table-level foreign keys, indexes and checks', () => {
    expect(columnOf(snapshot, 'projects', 'owner_id').references).toEqual({
      table: 'users',
      column: 'id',
      onDelete: 'cascade',
      onUpdate: 'cascade',
    });
    expect(columnOf(snapshot, 'projects', 'parent_id').references).toEqual({
      table: 'projects',
      column: 'id',
      onDelete: 'set null',
    });
    const members = tableOf(snapshot, 'members');
    expect(members.primaryKey).toEqual({ name: 'members_pk', columns: ['project_id', 'user_id'] });
    expect(members.foreignKeys).toEqual([
      {
        name: 'members_project_fk',
        columns: ['project_id'],
        references: { table: 'projects', columns: ['id'] },
        onDelete: 'cascade',
      },
      { columns: ['user_id'], references: { table: 'users', columns: ['id'] } },
    ]);
    const users = tableOf(snapshot, 'users');
    expect(users.indexes).toEqual([
      { name: 'users_age_idx', unique: false, columns: ['age'] },
      {
        name: 'users_email_lower_idx',
        unique: true,
        columns: ['email', 'handle'],
        where: { sqlite: '"handle" IS NOT NULL', postgres: '"handle" IS NOT NULL' },
      },
      {
        name: 'users_active_idx',
        unique: false,
        columns: ['created_at'],
        // The same condition is written differently per dialect: both are kept.
        where: { sqlite: '"active" = 1', postgres: '"active" = TRUE' },
      },
    ]);
    expect(users.checks).toEqual([
      { name: 'users_age_positive', sqlite: '"age" >= 0', postgres: '"age" >= 0' },
      { name: 'users_score_range', sqlite: '"score" BETWEEN 0 AND 1', postgres: '"score" BETWEEN 0 AND 1' },
    ]);
    expect(tableOf(snapshot, 'drafts')).toMatchObject({
      local: true,
      indexes: [],
      checks: [],
      foreignKeys: [],
    });
    expect(tableOf(snapshot, 'drafts')).not.toHaveProperty('primaryKey');
  });

  it('is deterministic: the same schema, declared twice, gives the same text, keys in a fixed order', () => {
    const again = declareEveryKindSchema();
    expect(again).not.toBe(everyKindSchema);
    const text = formatSchemaSnapshot(snapshot);
    expect(formatSchemaSnapshot(schemaSnapshot(again))).toBe(text);
    expect(formatSchemaSnapshot(schemaSnapshot(everyKindSchema))).toBe(text);
    expect(text.endsWith('}\n')).toBe(true);
    expect(Object.keys(snapshot)).toEqual(['format', 'version', 'tables']);
    expect(Object.keys(tableOf(snapshot, 'members'))).toEqual([
      'key',
      'name',
      'local',
      'columns',
      'primaryKey',
      'indexes',
      'checks',
      'foreignKeys',
    ]);
    expect(Object.keys(columnOf(snapshot, 'users', 'handle'))).toEqual([
      'name',
      'key',
      'type',
      'notNull',
      'primaryKey',
      'unique',
      'uniqueName',
    ]);
  });

  it('matches the committed snapshot of the fixture app', () => {
    expect(asJson(schemaSnapshot(appV1))).toEqual(JSON.parse(readFileSync(v1File, 'utf8')));
  });
});

describe('snapshot values', () => {
  it('round-trips what JSON cannot hold, and objects that happen to have a $type key', () => {
    const value = {
      big: 2n ** 70n,
      when: new Date('2024-02-03T04:05:06.007Z'),
      bytes: new Uint8Array([0, 15, 16, 255]),
      odd: [Number.NaN, Number.POSITIVE_INFINITY, -0.5],
      nested: { $type: 'date', value: 'not a date' },
      plain: ['a', 1, true, null, { x: [] }],
    };
    const encoded = encodeSnapshotValue(value);
    expect(JSON.parse(JSON.stringify(encoded))).toEqual(encoded);
    expect(decodeSnapshotValue(JSON.parse(JSON.stringify(encoded)))).toEqual(value);
  });

  it('refuses what it cannot keep', () => {
    expect(() => encodeSnapshotValue(new Date(Number.NaN))).toThrow(UsageError);
    expect(() => encodeSnapshotValue(() => 1)).toThrow(/cannot hold a value of type function/);
    expect(() => decodeSnapshotValue({ $type: 'mystery', value: 1 })).toThrow(/unknown value tag "mystery"/);
  });
});

describe('schemaFromSnapshot', () => {
  const snapshotText = formatSchemaSnapshot(snapshot);

  it('round-trips: snapshot, rebuilt schema, snapshot again gives the same text', () => {
    for (const dialect of [undefined, 'sqlite', 'postgres'] as const) {
      const rebuilt = schemaFromSnapshot(JSON.parse(snapshotText), { dialect });
      expect(formatSchemaSnapshot(schemaSnapshot(rebuilt))).toBe(snapshotText);
    }
  });

  it('rebuilds real tables: keys, local flag and the very same DDL on each dialect', () => {
    for (const name of ['sqlite', 'postgres'] as const) {
      const rebuilt = schemaFromSnapshot(JSON.parse(snapshotText), { dialect: name });
      expect(Object.keys(rebuilt.tables)).toEqual(['members', 'users', 'projects', 'drafts']);
      expect(rebuilt.tables.drafts!.$local).toBe(true);
      expect(rebuilt.tables.users!.$columns.createdAt!.name).toBe('created_at');
      const ddl = dialects[name].ddl;
      expect(ddl.createSchema(rebuilt.tableList)).toEqual(ddl.createSchema(everyKindSchema.tableList));
    }
  });

  it('without a dialect, an expression written differently per dialect says to pass one when compiled', () => {
    const rebuilt = schemaFromSnapshot(JSON.parse(snapshotText));
    // Expressions with one text for both dialects compile anywhere.
    const members = rebuilt.tables.members!;
    expect(sqliteDialect.ddl.createTable(members)).toBe(
      sqliteDialect.ddl.createTable(everyKindSchema.tables.members),
    );
    expect(() => sqliteDialect.ddl.createIndexes(rebuilt.tables.users!)).toThrow(
      /users_active_idx is written differently on SQLite and PostgreSQL: rebuild the schema with schemaFromSnapshot\(snapshot, \{ dialect \}\)/,
    );
  });

  it('gives custom columns identity encoders that still write the stored default', async () => {
    const point = customType<{ data: { x: number }; driverData: string }>({
      name: 'point',
      sqlType: { sqlite: 'TEXT', postgres: 'TEXT' },
      toDriver: (p) => `x=${p.x}`,
      fromDriver: (s) => ({ x: Number(s.slice(2)) }),
    });
    const places = table('places', { id: integer().primaryKey(), at: point().notNull().default({ x: 7 }) });
    const original = schema({ places });
    const s = schemaSnapshot(original);
    expect(s.tables[0]!.columns[1]!.default).toEqual({
      kind: 'value',
      driverValue: { sqlite: 'x=7', postgres: 'x=7' },
    });
    const rebuilt = schemaFromSnapshot(s, { dialect: 'sqlite' });
    const db = await openDatabase(rebuilt, sqlite());
    const t = rebuilt.tables.places!;
    await db.insert(t).values([{ id: 1 }, { id: 2, at: 'x=9' }] as never);
    expect(await db.select().from(t).orderBy(t.$columns.id!)).toEqual([
      { id: 1, at: 'x=7' },
      { id: 2, at: 'x=9' },
    ]);
    await db.close();
  });

  it('makes a $defaultFn column say that it needs a value', async () => {
    const notes = table('notes', {
      id: integer().primaryKey(),
      slug: text()
        .notNull()
        .$defaultFn(() => 's'),
    });
    const rebuilt = schemaFromSnapshot(schemaSnapshot(schema({ notes })));
    const db = await openDatabase(rebuilt, sqlite());
    await expect(db.insert(rebuilt.tables.notes!).values({ id: 1 } as never)).rejects.toThrow(
      /notes\.slug has a TypeScript default \(\$defaultFn\) that a snapshot cannot keep: give it a value/,
    );
    await db.insert(rebuilt.tables.notes!).values({ id: 1, slug: 'given' } as never);
    await db.close();
  });

  it('refuses what is not a snapshot, and references to tables it does not declare', () => {
    expect(() => schemaFromSnapshot({ version: 1, tables: [] } as never)).toThrow(
      /not a syncline schema snapshot of format 1/,
    );
    const broken = JSON.parse(snapshotText) as SchemaSnapshot;
    const withoutUsers = { ...broken, tables: broken.tables.filter((t) => t.name !== 'users') };
    expect(() => schemaFromSnapshot(withoutUsers)).toThrow(
      'a foreign key of members references users.id, which the snapshot does not declare',
    );
  });
});

dialectSuite('a schema rebuilt from a snapshot', (env) => {
  const dialect = env.driver.dialect;

  it('creates the v1 database of the committed snapshot, which then works and matches it', async () => {
    const v1 = schemaFromSnapshot(JSON.parse(readFileSync(v1File, 'utf8')), { dialect });
    const db = await env.open(v1);
    expect(await verifySchema(db)).toEqual([]);
    const { lists, todos } = v1.tables as Record<string, any>;
    const [list] = await db.insert(lists).values({ name: 'Groceries' }).returning();
    await db.insert(todos).values({ id: 1, listId: list.id, title: 'Milk' });
    expect(await db.select().from(todos).where(eq(todos.listId, list.id))).toEqual([
      { id: 1, listId: list.id, title: 'Milk', done: false },
    ]);
  });

  it('makes a database with every column type and constraint that matches the original schema', async () => {
    const rebuilt = schemaFromSnapshot(asJson(snapshot), { dialect });
    const db = await env.open(rebuilt);
    expect(await verifySchema(db)).toEqual([]);
    // The database of the rebuilt schema is, as far as the catalog tells, the original's.
    const original = await openDatabase(everyKindSchema, env.freshDriver());
    expect(await verifySchema(new Database(rebuilt, original.driver))).toEqual([]);
  });
});
