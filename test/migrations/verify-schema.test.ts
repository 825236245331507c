import { expect, it } from 'vitest';
import {
  assertSchema,
  type Database,
  type SchemaDifferenceKind,
  SchemaMismatchError,
  sql,
  verifySchema,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { richSchema } from '../support/rich-schema.js';

const run = (db: Database<any>, text: string) => db.execute(sql.raw(text));

/**
 * SQLite's way to change what ALTER TABLE cannot (sqlite.org/lang_altertable.html): the table's
 * CREATE TABLE text, edited, makes a new table that replaces the old one; its indexes are put back.
 * Every edit must find its text, so a drift that silently did nothing fails the test.
 */
async function rebuildSqliteTable(db: Database<any>, name: string, edits: readonly [string, string][]) {
  const [row] = await db.execute<{ sql: string }>(
    sql`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ${name}`,
  );
  let create = row!.sql;
  for (const [from, to] of edits) {
    if (!create.includes(from)) throw new Error(`the CREATE TABLE of ${name} has no ${from}: ${create}`);
    create = create.replace(from, to);
  }
  const prefix = `CREATE TABLE "${name}"`;
  if (!create.startsWith(prefix)) throw new Error(`unexpected CREATE TABLE text: ${create}`);
  const indexes = await db.execute<{ sql: string }>(
    sql`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ${name} AND sql IS NOT NULL`,
  );
  await run(db, 'PRAGMA foreign_keys = OFF');
  await run(db, `CREATE TABLE "${name}_drift"${create.slice(prefix.length)}`);
  await run(db, `DROP TABLE "${name}"`);
  await run(db, `ALTER TABLE "${name}_drift" RENAME TO "${name}"`);
  for (const index of indexes) await run(db, index.sql);
  await run(db, 'PRAGMA foreign_keys = ON');
}

interface Drift {
  readonly title: string;
  /** Statements, or a table rebuild (table name and text edits of its CREATE TABLE). */
  readonly sqlite: string[] | { rebuild: string; edits: [string, string][] };
  readonly postgres: string[];
  readonly expected: { kind: SchemaDifferenceKind; table: string; name?: string };
}

const drifts: Drift[] = [
  {
    title: 'a missing table',
    sqlite: ['DROP TABLE tasks'],
    postgres: ['DROP TABLE tasks'],
    expected: { kind: 'missingTable', table: 'tasks' },
  },
  {
    title: 'an extra table',
    sqlite: ['CREATE TABLE audit_log (id INTEGER PRIMARY KEY, body TEXT)'],
    postgres: ['CREATE TABLE audit_log (id INTEGER PRIMARY KEY, body TEXT)'],
    expected: { kind: 'extraTable', table: 'audit_log' },
  },
  {
    title: 'a missing column',
    sqlite: ['ALTER TABLE memberships DROP COLUMN note'],
    postgres: ['ALTER TABLE memberships DROP COLUMN note'],
    expected: { kind: 'missingColumn', table: 'memberships', name: 'note' },
  },
  {
    title: 'an extra column',
    sqlite: ['ALTER TABLE memberships ADD COLUMN extra TEXT'],
    postgres: ['ALTER TABLE memberships ADD COLUMN extra TEXT'],
    expected: { kind: 'extraColumn', table: 'memberships', name: 'extra' },
  },
  {
    title: 'a column of another type',
    sqlite: { rebuild: 'memberships', edits: [['"note" TEXT', '"note" VARCHAR(20)']] },
    postgres: ['ALTER TABLE memberships ALTER COLUMN note TYPE varchar(20)'],
    expected: { kind: 'type', table: 'memberships', name: 'note' },
  },
  {
    title: 'a nullable column made NOT NULL',
    sqlite: { rebuild: 'memberships', edits: [['"note" TEXT', '"note" TEXT NOT NULL']] },
    postgres: ['ALTER TABLE memberships ALTER COLUMN note SET NOT NULL'],
    expected: { kind: 'nullability', table: 'memberships', name: 'note' },
  },
  {
    title: 'a changed default',
    sqlite: { rebuild: 'projects', edits: [["DEFAULT 'untitled'", "DEFAULT 'unnamed'"]] },
    postgres: ["ALTER TABLE projects ALTER COLUMN name SET DEFAULT 'unnamed'"],
    expected: { kind: 'default', table: 'projects', name: 'name' },
  },
  {
    title: 'a changed JSON default',
    sqlite: { rebuild: 'projects', edits: [[`DEFAULT '[]'`, `DEFAULT '["a"]'`]] },
    postgres: [`ALTER TABLE projects ALTER COLUMN tags SET DEFAULT '["a"]'::jsonb`],
    expected: { kind: 'default', table: 'projects', name: 'tags' },
  },
  {
    title: 'a removed default',
    sqlite: {
      rebuild: 'projects',
      edits: [['"archived" INTEGER NOT NULL DEFAULT 0', '"archived" INTEGER NOT NULL']],
    },
    postgres: ['ALTER TABLE projects ALTER COLUMN archived DROP DEFAULT'],
    expected: { kind: 'default', table: 'projects', name: 'archived' },
  },
  {
    title: 'a SQL default on a column whose default is made in TypeScript',
    sqlite: { rebuild: 'accounts', edits: [['"token" TEXT', `"token" TEXT DEFAULT 'x'`]] },
    postgres: ["ALTER TABLE accounts ALTER COLUMN token SET DEFAULT 'x'"],
    expected: { kind: 'default', table: 'accounts', name: 'token' },
  },
  {
    title: 'a changed primary key',
    sqlite: {
      rebuild: 'tasks',
      edits: [
        ['"id" INTEGER NOT NULL PRIMARY KEY', '"id" INTEGER NOT NULL'],
        [', FOREIGN KEY', ', PRIMARY KEY ("id", "title"), FOREIGN KEY'],
      ],
    },
    postgres: [
      'ALTER TABLE tasks DROP CONSTRAINT tasks_pkey',
      'ALTER TABLE tasks ADD PRIMARY KEY (id, title)',
    ],
    expected: { kind: 'primaryKey', table: 'tasks' },
  },
  {
    title: 'a missing index',
    sqlite: ['DROP INDEX projects_owner_idx'],
    postgres: ['DROP INDEX projects_owner_idx'],
    expected: { kind: 'missingIndex', table: 'projects', name: 'projects_owner_idx' },
  },
  {
    title: 'an extra index',
    sqlite: ['CREATE INDEX tasks_title_idx ON tasks (title)'],
    postgres: ['CREATE INDEX tasks_title_idx ON tasks (title)'],
    expected: { kind: 'extraIndex', table: 'tasks', name: 'tasks_title_idx' },
  },
  {
    title: 'an index on other columns',
    sqlite: ['DROP INDEX tasks_due_idx', 'CREATE INDEX tasks_due_idx ON tasks (title)'],
    postgres: ['DROP INDEX tasks_due_idx', 'CREATE INDEX tasks_due_idx ON tasks (title)'],
    expected: { kind: 'index', table: 'tasks', name: 'tasks_due_idx' },
  },
  {
    title: 'a unique index where a plain one is declared',
    sqlite: ['DROP INDEX tasks_due_idx', 'CREATE UNIQUE INDEX tasks_due_idx ON tasks (due_at)'],
    postgres: ['DROP INDEX tasks_due_idx', 'CREATE UNIQUE INDEX tasks_due_idx ON tasks (due_at)'],
    expected: { kind: 'index', table: 'tasks', name: 'tasks_due_idx' },
  },
  {
    title: 'a plain index where a unique one is declared',
    sqlite: [
      'DROP INDEX projects_owner_name_idx',
      'CREATE INDEX projects_owner_name_idx ON projects (owner_id, name)',
    ],
    postgres: [
      'DROP INDEX projects_owner_name_idx',
      'CREATE INDEX projects_owner_name_idx ON projects (owner_id, name)',
    ],
    expected: { kind: 'index', table: 'projects', name: 'projects_owner_name_idx' },
  },
  {
    title: 'a full index where a partial one is declared',
    sqlite: [
      'DROP INDEX projects_live_idx',
      'CREATE INDEX projects_live_idx ON projects (owner_id, position)',
    ],
    postgres: [
      'DROP INDEX projects_live_idx',
      'CREATE INDEX projects_live_idx ON projects (owner_id, position)',
    ],
    expected: { kind: 'index', table: 'projects', name: 'projects_live_idx' },
  },
  {
    title: 'a missing unique constraint',
    sqlite: { rebuild: 'accounts', edits: [['"email" TEXT NOT NULL UNIQUE', '"email" TEXT NOT NULL']] },
    postgres: ['ALTER TABLE accounts DROP CONSTRAINT accounts_email_key'],
    expected: { kind: 'missingIndex', table: 'accounts', name: 'accounts_email_key' },
  },
  {
    title: 'an extra unique constraint',
    sqlite: {
      rebuild: 'memberships',
      edits: [[`"role" TEXT NOT NULL DEFAULT 'viewer'`, `"role" TEXT NOT NULL DEFAULT 'viewer' UNIQUE`]],
    },
    postgres: ['ALTER TABLE memberships ADD UNIQUE (role)'],
    expected: { kind: 'extraIndex', table: 'memberships', name: 'memberships_role_key' },
  },
  {
    title: 'a missing table-level foreign key',
    sqlite: {
      rebuild: 'memberships',
      edits: [
        [
          ', CONSTRAINT "memberships_account_fk" FOREIGN KEY ("account_id") REFERENCES "accounts" ("id") ON DELETE RESTRICT ON UPDATE NO ACTION',
          '',
        ],
      ],
    },
    postgres: ['ALTER TABLE memberships DROP CONSTRAINT memberships_account_fk'],
    expected: { kind: 'missingForeignKey', table: 'memberships', name: 'memberships_account_fk' },
  },
  {
    title: 'a missing column-level foreign key',
    sqlite: {
      rebuild: 'projects',
      edits: [['"parent_id" INTEGER REFERENCES "projects" ("id") ON DELETE SET NULL', '"parent_id" INTEGER']],
    },
    postgres: ['ALTER TABLE projects DROP CONSTRAINT projects_parent_id_fkey'],
    expected: { kind: 'missingForeignKey', table: 'projects', name: 'projects_parent_id_fkey' },
  },
  {
    title: 'an extra foreign key',
    sqlite: {
      rebuild: 'memberships',
      edits: [['"note" TEXT', '"note" TEXT REFERENCES "accounts" ("email")']],
    },
    postgres: ['ALTER TABLE memberships ADD FOREIGN KEY (note) REFERENCES accounts (email)'],
    expected: { kind: 'extraForeignKey', table: 'memberships', name: 'memberships_note_fkey' },
  },
  {
    title: 'a foreign key with another ON DELETE action',
    sqlite: {
      rebuild: 'projects',
      edits: [['ON DELETE CASCADE ON UPDATE CASCADE', 'ON DELETE RESTRICT ON UPDATE CASCADE']],
    },
    postgres: [
      'ALTER TABLE projects DROP CONSTRAINT projects_owner_id_fkey',
      'ALTER TABLE projects ADD CONSTRAINT projects_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES accounts (id) ON DELETE RESTRICT ON UPDATE CASCADE',
    ],
    expected: { kind: 'foreignKey', table: 'projects', name: 'projects_owner_id_fkey' },
  },
  {
    title: 'a foreign key to another table',
    sqlite: {
      rebuild: 'memberships',
      edits: [['REFERENCES "projects" ("id")', 'REFERENCES "tasks" ("id")']],
    },
    postgres: [
      'ALTER TABLE memberships DROP CONSTRAINT memberships_project_id_fkey',
      'ALTER TABLE memberships ADD FOREIGN KEY (project_id) REFERENCES tasks (id) ON DELETE CASCADE',
    ],
    expected: { kind: 'foreignKey', table: 'memberships', name: 'memberships_project_id_fkey' },
  },
];

dialectSuite('verifySchema', (env) => {
  const isSqlite = env.driver.dialect === 'sqlite';

  async function drift(db: Database<any>, change: Drift): Promise<void> {
    const statements = isSqlite ? change.sqlite : change.postgres;
    if (Array.isArray(statements)) for (const statement of statements) await run(db, statement);
    else await rebuildSqliteTable(db, statements.rebuild, statements.edits);
  }

  it('finds no difference on a freshly opened schema', async () => {
    const db = await env.open(richSchema);
    expect(await verifySchema(db)).toEqual([]);
    await expect(assertSchema(db)).resolves.toBeUndefined();
  });

  it("leaves syncline's own tables and SQLite's internal tables out", async () => {
    const db = await env.open(richSchema);
    // AUTOINCREMENT makes SQLite create its sqlite_sequence table.
    const key = isSqlite ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'SERIAL PRIMARY KEY';
    await run(db, `CREATE TABLE _syncline_outbox (seq ${key}, body TEXT)`);
    await run(db, 'CREATE INDEX _syncline_outbox_body_idx ON _syncline_outbox (body)');
    const tables = isSqlite
      ? await db.execute<{ name: string }>(sql`SELECT name FROM sqlite_master WHERE type = 'table'`)
      : await db.execute<{ name: string }>(
          sql`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()`,
        );
    expect(tables.map((t) => t.name)).toContain(isSqlite ? 'sqlite_sequence' : '__schema');
    expect(await verifySchema(db)).toEqual([]);
  });

  it.skipIf(isSqlite)('reads only the current schema (namespace) on PostgreSQL', async () => {
    const db = await env.open(richSchema);
    const [row] = await db.execute<{ name: string }>(sql`SELECT current_schema() AS name`);
    const other = `${row!.name}_other`;
    await run(db, `CREATE SCHEMA "${other}"`);
    try {
      // A table of the same name with other columns, and one the schema does not know.
      await run(db, `CREATE TABLE "${other}".tasks (id TEXT PRIMARY KEY, extra INTEGER)`);
      await run(db, `CREATE INDEX tasks_extra_idx ON "${other}".tasks (extra)`);
      await run(db, `CREATE TABLE "${other}".stray (id INTEGER PRIMARY KEY)`);
      expect(await verifySchema(db)).toEqual([]);
    } finally {
      await run(db, `DROP SCHEMA "${other}" CASCADE`);
    }
  });

  // PGlite is one session, so a SET reaches the connection verifySchema reads on.
  it.skipIf(env.driver.name !== 'pglite')(
    'compares a timestamp default whatever time zone PostgreSQL prints it in',
    async () => {
      const db = await env.open(richSchema);
      await run(db, "SET TIME ZONE 'Asia/Kolkata'");
      try {
        const [row] = await db.execute<{ def: string }>(
          sql`SELECT pg_get_expr(d.adbin, d.adrelid) AS def FROM pg_attrdef d
              JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
              WHERE d.adrelid = 'projects'::regclass AND a.attname = 'starts_at'`,
        );
        expect(row!.def).toContain('08:34:05.678+05:30');
        expect(await verifySchema(db)).toEqual([]);
      } finally {
        await run(db, 'RESET TIME ZONE');
      }
    },
  );

  for (const change of drifts) {
    it(`reports ${change.title}`, async () => {
      const db = await env.open(richSchema);
      await drift(db, change);
      const differences = await verifySchema(db);
      expect(differences.map(({ kind, table, name }) => ({ kind, table, name }))).toEqual([change.expected]);
      const [difference] = differences;
      expect(difference!.message).toContain(change.expected.name ?? change.expected.table);
    });
  }

  it('says what each side has', async () => {
    const db = await env.open(richSchema);
    await drift(db, drifts.find((d) => d.expected.kind === 'type')!);
    await drift(db, drifts.find((d) => d.expected.kind === 'primaryKey')!);
    const differences = await verifySchema(db);
    // In schema order: tasks comes before memberships.
    expect(differences.map(({ kind, expected, actual }) => ({ kind, expected, actual }))).toEqual([
      { kind: 'primaryKey', expected: '(id)', actual: '(id, title)' },
      isSqlite
        ? { kind: 'type', expected: 'TEXT', actual: 'VARCHAR(20)' }
        : { kind: 'type', expected: 'text', actual: 'character varying(20)' },
    ]);
    expect(differences[0]!.message).toBe('tasks: primary key is (id, title), the schema declares (id)');
    expect(differences[1]!.message).toBe(
      isSqlite
        ? 'memberships.note: type is VARCHAR(20), the schema declares TEXT'
        : 'memberships.note: type is character varying(20), the schema declares text',
    );
  });

  it('assertSchema throws a SchemaMismatchError that lists every difference', async () => {
    const db = await env.open(richSchema);
    await run(db, 'DROP INDEX projects_owner_idx');
    await run(db, 'ALTER TABLE memberships ADD COLUMN extra TEXT');
    const error = await assertSchema(db).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SchemaMismatchError);
    const mismatch = error as SchemaMismatchError;
    expect(mismatch.differences.map((d) => d.kind)).toEqual(['extraColumn', 'missingIndex']);
    expect(mismatch.message).toContain('2 differences');
    for (const difference of mismatch.differences) expect(mismatch.message).toContain(difference.message);
    expect(mismatch.message).toContain('memberships.extra');
    expect(mismatch.message).toContain('projects_owner_idx');
  });
});
