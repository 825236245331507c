import { expect, it } from 'vitest';
import {
  boolean,
  ConstraintError,
  check,
  type Database,
  eq,
  index,
  integer,
  json,
  openDatabase,
  primaryKey,
  schema,
  sql,
  table,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';
import { sameDatabase } from '../support/same-database.js';

// Declared before the tables they reference, and listed first in the schema: creation must still
// put referenced tables first.
const members = table(
  'members',
  {
    projectId: integer('project_id')
      .notNull()
      .references(() => projects.id, { onDelete: 'cascade' }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: text().notNull().default('viewer'),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.userId] })],
);

const projects = table(
  'projects',
  {
    id: integer().primaryKey(),
    ownerId: integer('owner_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade', onUpdate: 'cascade' }),
    reviewerId: integer('reviewer_id').references(() => users.id, { onDelete: 'set null' }),
    parentId: integer('parent_id').references((): any => projects.id),
    name: text().notNull(),
    archived: boolean().notNull().default(false),
  },
  (t) => [
    index('projects_owner_idx').on(t.ownerId),
    // Live project names are unique per owner; archived ones may repeat.
    uniqueIndex('projects_live_name_idx').on(t.ownerId, t.name).where(sql`${t.archived} = ${false}`),
  ],
);

const users = table(
  'users',
  {
    id: integer().primaryKey(),
    email: text().notNull().unique(),
    handle: text().notNull(),
    age: integer(),
  },
  (t) => [uniqueIndex('users_handle_idx').on(t.handle), check('users_age_adult', sql`${t.age} >= 18`)],
);

const events = table('events', {
  id: uuid().primaryKey().defaultRandom(),
  name: text().notNull(),
  at: timestamp().notNull().defaultNow(),
  flag: boolean().notNull().default(true),
  tags: json<string[]>().notNull().default([]),
});

const appSchema = schema({ members, projects, users, events });
type Db = Database<typeof appSchema>;

/** Rows of a catalog query, whose SQL differs per dialect. */
async function catalog<T>(db: Database, queries: { sqlite: string; postgres: string }): Promise<T[]> {
  return db.execute<T>(sql.raw(queries[db.dialect.name]));
}

/** The schema's tables in the order they were created. */
async function tablesInCreationOrder(db: Database): Promise<string[]> {
  const rows = await catalog<{ name: string }>(db, {
    sqlite: "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by rowid",
    postgres:
      "select relname as name from pg_class where relnamespace = current_schema()::regnamespace and relkind = 'r' order by oid",
  });
  // `__schema` is syncline's own (the schema version on PostgreSQL), not one of the app's tables.
  return rows.map((r) => r.name).filter((name) => name !== '__schema');
}

/** The schema's named indexes (SQLite's automatic ones and PostgreSQL's constraint indexes aside) with their SQL. */
async function declaredIndexes(db: Database): Promise<Record<string, string>> {
  const rows = await catalog<{ name: string; definition: string }>(db, {
    sqlite: "select name, sql as definition from sqlite_master where type = 'index' and sql is not null",
    postgres:
      "select indexname as name, indexdef as definition from pg_indexes where schemaname = current_schema() and indexname not like '%_pkey' and indexname not like '%_key'",
  });
  return Object.fromEntries(rows.map((r) => [r.name, r.definition]));
}

async function seed(db: Db): Promise<void> {
  await db.insert(users).values([
    { id: 1, email: 'ann@example.com', handle: 'ann', age: 30 },
    { id: 2, email: 'bob@example.com', handle: 'bob' },
  ]);
  await db.insert(projects).values([
    { id: 10, ownerId: 1, reviewerId: 2, name: 'alpha' },
    { id: 11, ownerId: 2, reviewerId: 1, name: 'beta', parentId: 10 },
  ]);
  await db.insert(members).values([
    { projectId: 10, userId: 2, role: 'editor' },
    { projectId: 11, userId: 1 },
  ]);
}

async function constraintKind(query: PromiseLike<unknown>): Promise<string> {
  try {
    await query;
  } catch (error) {
    expect(error).toBeInstanceOf(ConstraintError);
    return (error as ConstraintError).kind;
  }
  throw new Error('expected a constraint error, but the query succeeded');
}

dialectSuite('openDatabase creates the schema', (env) => {
  it('creates every table, referenced tables first whatever the declaration order', async () => {
    const db = await env.open(appSchema);
    const order = await tablesInCreationOrder(db);
    expect([...order].sort()).toEqual(['events', 'members', 'projects', 'users']);
    expect(order.indexOf('users')).toBeLessThan(order.indexOf('projects'));
    expect(order.indexOf('projects')).toBeLessThan(order.indexOf('members'));
  });

  it('creates a chain of references in dependency order on a fresh database', async () => {
    const c = table('chain_c', { id: integer().primaryKey(), bId: integer('b_id').references(() => b.id) });
    const b = table('chain_b', { id: integer().primaryKey(), aId: integer('a_id').references(() => a.id) });
    const a = table('chain_a', { id: integer().primaryKey() });
    const db = await env.open(schema({ c, b, a }));
    expect(await tablesInCreationOrder(db)).toEqual(['chain_a', 'chain_b', 'chain_c']);
    await db.insert(a).values({ id: 1 });
    await db.insert(b).values({ id: 1, aId: 1 });
    await db.insert(c).values({ id: 1, bId: 1 });
    expect(await constraintKind(db.insert(c).values({ id: 2, bId: 9 }))).toBe('foreignKey');
  });

  it('creates plain, unique and partial indexes', async () => {
    const db = await env.open(appSchema);
    const indexes = await declaredIndexes(db);
    expect(Object.keys(indexes).sort()).toEqual([
      'projects_live_name_idx',
      'projects_owner_idx',
      'users_handle_idx',
    ]);
    expect(indexes.users_handle_idx).toMatch(/CREATE UNIQUE INDEX/i);
    expect(indexes.projects_owner_idx).not.toMatch(/UNIQUE/i);
    expect(indexes.projects_live_name_idx).toMatch(/CREATE UNIQUE INDEX/i);
    expect(indexes.projects_live_name_idx).toMatch(/WHERE/i);
  });

  it('enforces unique columns and unique indexes', async () => {
    const db = await env.open(appSchema);
    await seed(db);
    expect(
      await constraintKind(db.insert(users).values({ id: 3, email: 'ann@example.com', handle: 'x' })),
    ).toBe('unique');
    expect(
      await constraintKind(db.insert(users).values({ id: 3, email: 'new@example.com', handle: 'ann' })),
    ).toBe('unique');
    await db.insert(users).values({ id: 3, email: 'new@example.com', handle: 'new' });
    expect(await db.select().from(users)).toHaveLength(3);
  });

  it('applies a partial unique index only to the rows its where() holds for', async () => {
    const db = await env.open(appSchema);
    await seed(db);
    // Archived duplicates are fine...
    await db.insert(projects).values([
      { id: 20, ownerId: 1, name: 'alpha', archived: true },
      { id: 21, ownerId: 1, name: 'alpha', archived: true },
    ]);
    // ...a second live 'alpha' for the same owner is not, while another owner may have one.
    expect(await constraintKind(db.insert(projects).values({ id: 22, ownerId: 1, name: 'alpha' }))).toBe(
      'unique',
    );
    await db.insert(projects).values({ id: 23, ownerId: 2, name: 'alpha' });
    expect(await db.select().from(projects).where(eq(projects.name, 'alpha'))).toHaveLength(4);
  });

  it('enforces a composite primary key on the pair of columns', async () => {
    const db = await env.open(appSchema);
    await seed(db);
    expect(await constraintKind(db.insert(members).values({ projectId: 10, userId: 2 }))).toBe('primaryKey');
    // The same project with another user, and the same user on another project, are both new keys.
    await db.insert(members).values([
      { projectId: 10, userId: 1 },
      { projectId: 11, userId: 2 },
    ]);
    expect(await db.select().from(members)).toHaveLength(4);
  });

  it('enforces check constraints (a NULL passes, as in SQL)', async () => {
    const db = await env.open(appSchema);
    expect(
      await constraintKind(
        db.insert(users).values({ id: 1, email: 'kid@example.com', handle: 'kid', age: 17 }),
      ),
    ).toBe('check');
    await db.insert(users).values([
      { id: 2, email: 'adult@example.com', handle: 'adult', age: 18 },
      { id: 3, email: 'unknown@example.com', handle: 'unknown', age: null },
    ]);
    expect(await constraintKind(db.update(users).set({ age: 5 }).where(eq(users.id, 2)))).toBe('check');
    expect((await db.select({ age: users.age }).from(users).orderBy(users.id)).map((r) => r.age)).toEqual([
      18,
      null,
    ]);
  });

  it('cascades deletes, sets null, and cascades key updates along references', async () => {
    const db = await env.open(appSchema);
    await seed(db);

    // onUpdate cascade: the owner's new id follows into projects.owner_id.
    await db.insert(users).values({ id: 5, email: 'cy@example.com', handle: 'cy' });
    await db.insert(projects).values({ id: 30, ownerId: 5, name: 'gamma' });
    await db.update(users).set({ id: 50 }).where(eq(users.id, 5));
    expect(await db.select({ owner: projects.ownerId }).from(projects).where(eq(projects.id, 30))).toEqual([
      { owner: 50 },
    ]);

    // Deleting bob: his project (owner, cascade) and his memberships go; his review (set null) is cleared.
    await db.delete(users).where(eq(users.id, 2));
    const left = await db
      .select({ id: projects.id, reviewer: projects.reviewerId })
      .from(projects)
      .orderBy(projects.id);
    expect(left).toEqual([
      { id: 10, reviewer: null },
      { id: 30, reviewer: null },
    ]);
    // Project 11 went with bob, and with it ann's membership there (project_id cascade).
    expect(await db.select().from(members)).toEqual([]);
  });

  it('refuses references to missing rows and deletes of referenced rows without an action', async () => {
    const db = await env.open(appSchema);
    await seed(db);
    expect(await constraintKind(db.insert(projects).values({ id: 40, ownerId: 99, name: 'orphan' }))).toBe(
      'foreignKey',
    );
    // parent_id has no onDelete: a referenced parent cannot be deleted.
    expect(await constraintKind(db.delete(projects).where(eq(projects.id, 10)))).toBe('foreignKey');
  });

  it('puts column defaults in the table, so raw SQL inserts get them too', async () => {
    const db = await env.open(appSchema);
    await db.execute(sql`insert into ${events} (${sql.identifier('name')}) values (${'raw'})`);
    await db.insert(users).values({ id: 1, email: 'a@example.com', handle: 'a' });
    await db.insert(projects).values({ id: 1, ownerId: 1, name: 'p' });
    await db.execute(sql`insert into ${members} (project_id, user_id) values (${1}, ${1})`);

    const [event] = await db.select().from(events);
    expect(event!.name).toBe('raw');
    expect(event!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Math.abs(event!.at.getTime() - Date.now())).toBeLessThan(10_000);
    expect(event!.flag).toBe(true);
    expect(event!.tags).toEqual([]);
    expect(await db.select({ role: members.role }).from(members)).toEqual([{ role: 'viewer' }]);
  });

  it('re-opening an existing database is a no-op that keeps the data; a new version adds a table', async () => {
    const target = sameDatabase(env.driver);
    try {
      const first = await openDatabase(appSchema, target.driver());
      await seed(first);
      const tablesBefore = await tablesInCreationOrder(first);
      const indexesBefore = await declaredIndexes(first);
      await first.close();

      const second = await openDatabase(appSchema, target.driver());
      expect(await tablesInCreationOrder(second)).toEqual(tablesBefore);
      expect(await declaredIndexes(second)).toEqual(indexesBefore);
      expect(await second.select().from(users).orderBy(users.id)).toEqual([
        { id: 1, email: 'ann@example.com', handle: 'ann', age: 30 },
        { id: 2, email: 'bob@example.com', handle: 'bob', age: null },
      ]);
      expect(await second.select().from(members)).toHaveLength(2);
      // The constraints are still there, once.
      expect(
        await constraintKind(second.insert(users).values({ id: 3, email: 'ann@example.com', handle: 'z' })),
      ).toBe('unique');
      await second.close();

      // Version 2 has one more table, created by its migration step; the rest is left alone.
      const notes = table('notes', {
        id: integer().primaryKey(),
        userId: integer('user_id').references(() => users.id),
      });
      const v2 = schema(
        { members, projects, users, events, notes },
        { version: 2, migrations: { 2: (m) => m.createTable(notes) } },
      );
      const third = await openDatabase(v2, target.driver());
      expect([...(await tablesInCreationOrder(third))].sort()).toEqual([
        'events',
        'members',
        'notes',
        'projects',
        'users',
      ]);
      await third.insert(notes).values({ id: 1, userId: 1 });
      expect(await third.select().from(users)).toHaveLength(2);
      await third.close();
    } finally {
      await target.dispose();
    }
  });

  it('openDatabase({ migrations: { enabled: false } }) creates nothing', async () => {
    const db = await openDatabase(appSchema, env.freshDriver(), { migrations: { enabled: false } });
    expect(await tablesInCreationOrder(db)).toEqual([]);
  });
});
