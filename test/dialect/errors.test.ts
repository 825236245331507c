import { messages } from '@electric-sql/pglite';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { expect, it } from 'vitest';
import { SqliteWasmError } from '../../src/drivers/sqlite-wasm/index.js';
import {
  ConstraintError,
  type ConstraintKind,
  check,
  type Database,
  DatabaseError,
  InvalidValueError,
  integer,
  primaryKey,
  SynclineError,
  schema,
  sql,
  table,
  text,
  timestamp,
  UsageError,
  uuid,
} from '../../src/index.js';
import { dialectSuite, type TestDriver } from '../support/drivers.js';

const owners = table('owners', {
  id: integer().primaryKey(),
  email: text().notNull().unique(),
});

const pets = table(
  'pets',
  {
    id: integer().primaryKey(),
    ownerId: integer('owner_id')
      .notNull()
      .references(() => owners.id),
    name: text().notNull(),
    age: integer().notNull(),
    bornAt: timestamp('born_at'),
  },
  (t) => [check('pets_age_nonnegative', sql`${t.age} >= 0`)],
);

/** A text primary key (SQLite allows NULL in one unless it is declared NOT NULL). */
const tags = table('tags', {
  id: uuid().primaryKey(),
  label: text(),
});

const memberships = table(
  'memberships',
  {
    ownerId: integer('owner_id').notNull(),
    groupName: text('group_name').notNull(),
  },
  (t) => [primaryKey({ columns: [t.ownerId, t.groupName] })],
);

const errorSchema = schema({ owners, pets, tags, memberships });
type Db = Database<typeof errorSchema>;

/** The error a query rejects with (fails the test when it resolves). */
async function rejection(query: PromiseLike<unknown>): Promise<Error> {
  try {
    await query;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the query to fail, but it succeeded');
}

/** The driver's own error class, which every syncline database error keeps as `cause`. */
function driverErrorClass(driver: TestDriver): new (...args: any[]) => Error {
  switch (driver.name) {
    case 'better-sqlite3':
      return BetterSqlite3.SqliteError;
    case 'pglite':
      return messages.DatabaseError;
    case 'sqlite-wasm':
      return SqliteWasmError;
    case 'postgres':
      return pg.DatabaseError;
  }
}

/** The code the driver error carries for each constraint kind. */
const driverCodes: Record<'sqlite' | 'postgres', Record<ConstraintKind, string>> = {
  sqlite: {
    unique: 'SQLITE_CONSTRAINT_UNIQUE',
    primaryKey: 'SQLITE_CONSTRAINT_PRIMARYKEY',
    foreignKey: 'SQLITE_CONSTRAINT_FOREIGNKEY',
    check: 'SQLITE_CONSTRAINT_CHECK',
    notNull: 'SQLITE_CONSTRAINT_NOTNULL',
  },
  postgres: {
    unique: '23505',
    primaryKey: '23505',
    foreignKey: '23503',
    check: '23514',
    notNull: '23502',
  },
};

async function seedOwner(db: Db): Promise<void> {
  await db.insert(owners).values({ id: 1, email: 'ann@example.com' });
}

async function count(db: Db, t: typeof owners | typeof pets | typeof tags): Promise<number> {
  return (await db.select().from(t)).length;
}

/*
 * What a ConstraintError carries, per dialect. SQLite names things only in its message text
 * ("UNIQUE constraint failed: owners.email"); PostgreSQL reports table, column, constraint and
 * detail as fields.
 *
 *   kind         SQLite                          PostgreSQL
 *   unique       table, column                   table, column, constraint, detail
 *   primaryKey   table, column                   table, column, constraint (<table>_pkey), detail
 *   foreignKey   nothing                         table (the referencing one), column, constraint, detail
 *   check        constraint                      table, constraint, detail
 *   notNull      table, column                   table, column, detail
 *
 * For a composite key `column` lists the columns: "owner_id, group_name".
 */
dialectSuite('constraint errors', (env) => {
  const postgres = env.driver.dialect === 'postgres';

  function expectConstraintError(
    error: Error,
    expected: {
      kind: ConstraintKind;
      table: string | undefined;
      column: string | undefined;
      constraint: string | undefined;
    },
  ): asserts error is ConstraintError {
    expect(error).toBeInstanceOf(ConstraintError);
    expect(error).toBeInstanceOf(SynclineError);
    expect(error.name).toBe('ConstraintError');
    const e = error as ConstraintError;
    expect({ kind: e.kind, table: e.table, column: e.column, constraint: e.constraint }).toEqual(expected);
    expect(e.cause).toBeInstanceOf(driverErrorClass(env.driver));
    expect((e.cause as { code?: string }).code).toBe(driverCodes[env.driver.dialect][expected.kind]);
  }

  it('reports a duplicate unique value as kind "unique"', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    const error = await rejection(db.insert(owners).values({ id: 2, email: 'ann@example.com' }));
    expectConstraintError(error, {
      kind: 'unique',
      table: 'owners',
      column: 'email',
      constraint: postgres ? 'owners_email_key' : undefined,
    });
    expect(error.message).toMatch(/^unique constraint .*failed on owners\.email/);
    if (postgres) expect(error.message).toContain('Key (email)=(ann@example.com) already exists');
    expect(await count(db, owners)).toBe(1);
  });

  it('reports a duplicate primary key as kind "primaryKey"', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    const error = await rejection(db.insert(owners).values({ id: 1, email: 'bob@example.com' }));
    expectConstraintError(error, {
      kind: 'primaryKey',
      table: 'owners',
      column: 'id',
      constraint: postgres ? 'owners_pkey' : undefined,
    });
    expect(error.message).toMatch(/^primary key constraint .*failed on owners\.id/);
  });

  it('reports a duplicate composite primary key as kind "primaryKey" naming every column', async () => {
    const db = await env.open(errorSchema);
    await db.insert(memberships).values({ ownerId: 1, groupName: 'a' });
    const error = await rejection(db.insert(memberships).values({ ownerId: 1, groupName: 'a' }));
    expectConstraintError(error, {
      kind: 'primaryKey',
      table: 'memberships',
      column: 'owner_id, group_name',
      constraint: postgres ? 'memberships_pkey' : undefined,
    });
  });

  it('reports a missing referenced row as kind "foreignKey"', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    const error = await rejection(db.insert(pets).values({ id: 1, ownerId: 99, name: 'Rex', age: 3 }));
    // SQLite says only "FOREIGN KEY constraint failed": it does not name the table or column.
    expectConstraintError(
      error,
      postgres
        ? { kind: 'foreignKey', table: 'pets', column: 'owner_id', constraint: 'pets_owner_id_fkey' }
        : { kind: 'foreignKey', table: undefined, column: undefined, constraint: undefined },
    );
    expect(error.message).toMatch(/^foreign key constraint .*failed/);
    if (postgres) expect(error.message).toContain('is not present in table "owners"');
    expect(await count(db, pets)).toBe(0);
  });

  it('reports deleting a referenced row as kind "foreignKey"', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    await db.insert(pets).values({ id: 1, ownerId: 1, name: 'Rex', age: 3 });
    const error = await rejection(db.delete(owners).allRows());
    expect(error).toBeInstanceOf(ConstraintError);
    expect((error as ConstraintError).kind).toBe('foreignKey');
    expect(await count(db, owners)).toBe(1);
  });

  it('reports a failed check as kind "check" with the constraint name', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    const error = await rejection(db.insert(pets).values({ id: 1, ownerId: 1, name: 'Rex', age: -1 }));
    expectConstraintError(error, {
      kind: 'check',
      table: postgres ? 'pets' : undefined,
      column: undefined,
      constraint: 'pets_age_nonnegative',
    });
    expect(error.message).toMatch(/^check constraint "pets_age_nonnegative" failed/);
  });

  it('reports a null in a not-null column as kind "notNull"', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    const error = await rejection(
      db.insert(pets).values({ id: 1, ownerId: 1, name: null as unknown as string, age: 2 }),
    );
    expectConstraintError(error, { kind: 'notNull', table: 'pets', column: 'name', constraint: undefined });
    expect(error.message).toMatch(/^not-null constraint failed on pets\.name/);

    // Leaving the column out altogether is the same error.
    const missing = await rejection(db.insert(pets).values({ id: 1, ownerId: 1, age: 2 } as any));
    expectConstraintError(missing, { kind: 'notNull', table: 'pets', column: 'name', constraint: undefined });

    // And so is setting it to null later.
    await db.insert(pets).values({ id: 1, ownerId: 1, name: 'Rex', age: 2 });
    const update = await rejection(
      db
        .update(pets)
        .set({ name: null as unknown as string })
        .allRows(),
    );
    expectConstraintError(update, { kind: 'notNull', table: 'pets', column: 'name', constraint: undefined });
  });

  it('rejects a null primary key on every dialect (SQLite would allow it without NOT NULL)', async () => {
    const db = await env.open(errorSchema);
    const error = await rejection(db.insert(tags).values({ id: null as unknown as string, label: 'x' }));
    expectConstraintError(error, { kind: 'notNull', table: 'tags', column: 'id', constraint: undefined });
    const composite = await rejection(
      db.insert(memberships).values({ ownerId: 1, groupName: null as unknown as string }),
    );
    expect((composite as ConstraintError).kind).toBe('notNull');
    expect(await count(db, tags)).toBe(0);
  });
});

dialectSuite('database errors', (env) => {
  it('reports other database errors as DatabaseError with the database code', async () => {
    const db = await env.open(errorSchema);
    const error = await rejection(db.execute(sql`select * from ${sql.identifier('no_such_table')}`));
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).not.toBeInstanceOf(ConstraintError);
    expect((error as DatabaseError).code).toBe(env.driver.dialect === 'postgres' ? '42P01' : 'SQLITE_ERROR');
    expect(error.message).toContain('no_such_table');
    expect(error.message).toMatch(env.driver.dialect === 'postgres' ? /^PostgreSQL: / : /^SQLite: /);
    expect(error.cause).toBeInstanceOf(driverErrorClass(env.driver));
  });

  it('reports a syntax error as DatabaseError', async () => {
    const db = await env.open(errorSchema);
    const error = await rejection(db.execute(sql`selec 1`));
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as DatabaseError).code).toBe(env.driver.dialect === 'postgres' ? '42601' : 'SQLITE_ERROR');
  });
});

dialectSuite('invalid values', (env) => {
  it('rejects a value of the wrong type with InvalidValueError naming table.column, before the database', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    const error = await rejection(
      db.insert(pets).values({ id: 1, ownerId: 1, name: 'Rex', age: 'three' as unknown as number }),
    );
    expect(error).toBeInstanceOf(InvalidValueError);
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(/^pets\.age: expected a whole number/);
    expect(error.message).toContain('"three"');
    // Nothing reached the database, so there is no driver error behind it.
    expect(error.cause).not.toBeInstanceOf(driverErrorClass(env.driver));
    expect(await count(db, pets)).toBe(0);
  });

  it('rejects invalid values in update, where and uuid columns too', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    await db.insert(pets).values({ id: 1, ownerId: 1, name: 'Rex', age: 2 });

    const badDate = await rejection(
      db
        .update(pets)
        .set({ bornAt: new Date('not a date') })
        .allRows(),
    );
    expect(badDate).toBeInstanceOf(InvalidValueError);
    expect(badDate.message).toMatch(/^pets\.born_at: expected a valid Date, got an invalid Date/);

    const badUuid = await rejection(db.insert(tags).values({ id: 'not-a-uuid' }));
    expect(badUuid).toBeInstanceOf(InvalidValueError);
    expect(badUuid.message).toMatch(/^tags\.id: expected a UUID/);

    const [pet] = await db.select().from(pets);
    expect(pet!.bornAt).toBeNull();
  });
});

dialectSuite('atomic writes', (env) => {
  it('writes nothing when one row of a multi-row insert breaks a constraint', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    const error = await rejection(
      db.insert(owners).values([
        { id: 2, email: 'bob@example.com' },
        { id: 3, email: 'cy@example.com' },
        { id: 4, email: 'ann@example.com' },
      ]),
    );
    expect(error).toBeInstanceOf(ConstraintError);
    expect(await db.select({ id: owners.id }).from(owners)).toEqual([{ id: 1 }]);
  });

  it('writes nothing when one row of a multi-row insert has an invalid value', async () => {
    const db = await env.open(errorSchema);
    const error = await rejection(
      db.insert(owners).values([
        { id: 1, email: 'a@example.com' },
        { id: 2.5, email: 'b@example.com' },
      ]),
    );
    expect(error).toBeInstanceOf(InvalidValueError);
    expect(await count(db, owners)).toBe(0);
  });

  it('writes nothing when a statement in a transaction fails, and rethrows its error', async () => {
    const db = await env.open(errorSchema);
    const error = await rejection(
      db.transaction(async (tx) => {
        await tx.insert(owners).values({ id: 1, email: 'ann@example.com' });
        await tx.insert(pets).values({ id: 1, ownerId: 1, name: 'Rex', age: 2 });
        await tx.insert(pets).values({ id: 2, ownerId: 42, name: 'Lost', age: 2 });
      }),
    );
    expect(error).toBeInstanceOf(ConstraintError);
    expect((error as ConstraintError).kind).toBe('foreignKey');
    expect(await count(db, owners)).toBe(0);
    expect(await count(db, pets)).toBe(0);
    // The database is usable afterwards.
    await seedOwner(db);
    expect(await count(db, owners)).toBe(1);
  });

  it('recovers from an expected constraint error inside a nested transaction on every dialect', async () => {
    const db = await env.open(errorSchema);
    await seedOwner(db);
    await db.transaction(async (tx) => {
      await tx.insert(owners).values({ id: 2, email: 'bob@example.com' });
      const error = await rejection(
        tx.transaction((inner) => inner.insert(owners).values({ id: 3, email: 'ann@example.com' }).execute()),
      );
      expect(error).toBeInstanceOf(ConstraintError);
      // The savepoint was rolled back, so the transaction goes on (on PostgreSQL too).
      await tx.insert(owners).values({ id: 4, email: 'dee@example.com' });
    });
    expect((await db.select({ id: owners.id }).from(owners).orderBy(owners.id)).map((r) => r.id)).toEqual([
      1, 2, 4,
    ]);
  });

  it.skipIf(env.driver.dialect !== 'postgres')(
    'on PostgreSQL, a statement after a caught error in the same transaction fails with code 25P02',
    async () => {
      const db = await env.open(errorSchema);
      await seedOwner(db);
      const next = await rejection(
        db.transaction(async (tx) => {
          await rejection(tx.insert(owners).values({ id: 2, email: 'ann@example.com' }));
          await tx.insert(owners).values({ id: 3, email: 'cy@example.com' });
        }),
      );
      expect(next).toBeInstanceOf(DatabaseError);
      expect((next as DatabaseError).code).toBe('25P02');
      expect(await count(db, owners)).toBe(1);
    },
  );
});
