import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import {
  type Database,
  integer,
  openDatabase,
  schema,
  sql,
  table,
  text,
  UsageError,
} from '../../src/index.js';
import { dialectSuite } from '../support/drivers.js';

const notes = table('notes', {
  id: integer().primaryKey(),
  body: text().notNull(),
});

const noteSchema = schema({ notes });

const databaseUrl = process.env.DATABASE_URL;

/** A pragma's value, read through syncline's raw SQL path. */
async function pragma(db: Database, name: string): Promise<unknown> {
  const [row] = await db.execute<Record<string, unknown>>(sql.raw(`PRAGMA ${name}`));
  return row?.[name];
}

describe('better-sqlite3 driver', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'syncline-sqlite-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens a file database with WAL journaling and foreign keys on', async () => {
    const db = await openDatabase(noteSchema, sqlite({ path: join(dir, 'app.db') }));
    try {
      expect(await pragma(db, 'journal_mode')).toBe('wal');
      expect(await pragma(db, 'foreign_keys')).toBe(1);
    } finally {
      await db.close();
    }
  });

  it('takes the path as a plain string too, and keeps the data in the file', async () => {
    const path = join(dir, 'plain.db');
    const first = await openDatabase(noteSchema, sqlite(path));
    await first.insert(notes).values({ id: 1, body: 'kept' });
    await first.close();

    const file = new BetterSqlite3(path, { readonly: true });
    try {
      expect(file.prepare('select body from notes').all()).toEqual([{ body: 'kept' }]);
    } finally {
      file.close();
    }
  });

  it('leaves WAL and foreign keys off when asked', async () => {
    const db = await openDatabase(
      noteSchema,
      sqlite({ path: join(dir, 'app.db'), wal: false, foreignKeys: false }),
    );
    try {
      expect(await pragma(db, 'journal_mode')).toBe('delete');
      expect(await pragma(db, 'foreign_keys')).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('turns foreign keys on for an in-memory database too (WAL does not apply there)', async () => {
    const db = await openDatabase(noteSchema, sqlite());
    try {
      expect(await pragma(db, 'journal_mode')).toBe('memory');
      expect(await pragma(db, 'foreign_keys')).toBe(1);
    } finally {
      await db.close();
    }
  });

  it('never closes a better-sqlite3 handle the app passed in', async () => {
    const handle = new BetterSqlite3(join(dir, 'owned.db'));
    try {
      const driver = sqlite({ database: handle });
      const db = await openDatabase(noteSchema, driver);
      expect(driver.handle).toBe(handle);
      // The driver set up the app's handle like its own.
      expect(handle.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(handle.pragma('journal_mode', { simple: true })).toBe('wal');
      await db.insert(notes).values({ id: 1, body: 'via syncline' });
      await db.close();

      expect(handle.open).toBe(true);
      expect(handle.prepare('select body from notes').all()).toEqual([{ body: 'via syncline' }]);
      handle.prepare('insert into notes (id, body) values (2, ?)').run('via the app');
      expect(handle.prepare('select count(*) as n from notes').get()).toEqual({ n: 2 });
    } finally {
      handle.close();
    }
  });
});

describe('pglite driver', () => {
  it('keeps the data in its data directory across close and reopen', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'syncline-pglite-'));
    try {
      const firstDriver = pglite({ dataDir });
      const first = await openDatabase(noteSchema, firstDriver);
      const instance = firstDriver.handle;
      await first.insert(notes).values([
        { id: 1, body: 'one' },
        { id: 2, body: 'two' },
      ]);
      await first.close();
      // The instance syncline created is closed with the database.
      expect(instance.closed).toBe(true);

      const second = await openDatabase(noteSchema, pglite({ dataDir }));
      try {
        expect(await second.select().from(notes).orderBy(notes.id)).toEqual([
          { id: 1, body: 'one' },
          { id: 2, body: 'two' },
        ]);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('never closes a PGlite instance the app passed in', async () => {
    const instance = new PGlite();
    try {
      const db = await openDatabase(noteSchema, pglite({ instance, schema: 'app_owned' }));
      await db.insert(notes).values({ id: 1, body: 'x' });
      await db.close();
      expect(instance.closed).toBe(false);
      const result = await instance.query<{ body: string }>('select body from app_owned.notes');
      expect(result.rows).toEqual([{ body: 'x' }]);
    } finally {
      await instance.close();
    }
  });
});

describe.skipIf(!databaseUrl)('node-postgres driver', () => {
  const schemaName = `drivers_${process.pid}_${Date.now().toString(36)}`;
  let admin: pg.Pool;
  beforeEach(() => {
    admin = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  });
  afterEach(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schemaName}" CASCADE`);
    await admin.end();
  });

  it('never ends a pg.Pool the app passed in', async () => {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
    try {
      const listeners = pool.listenerCount('connect');
      const db = await openDatabase(noteSchema, postgres({ pool, schema: schemaName }));
      await db.insert(notes).values({ id: 1, body: 'x' });
      await db.close();

      expect(pool.ended).toBe(false);
      const { rows } = await pool.query(`select body from "${schemaName}".notes`);
      expect(rows).toEqual([{ body: 'x' }]);
      // Nothing of syncline is left hooked on the app's pool.
      expect(pool.listenerCount('connect')).toBe(listeners);
    } finally {
      await pool.end();
    }
  });

  it('works in its schema on an app pool that already had connections open', async () => {
    // A name of its own, so a table put in the wrong schema cannot clash with anything.
    const stray = table(`stray_${process.pid}_${Date.now().toString(36)}`, { id: integer().primaryKey() });
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    try {
      // Two idle connections made before syncline saw the pool, on the default search path.
      const a = await pool.connect();
      const b = await pool.connect();
      a.release();
      b.release();
      expect(pool.idleCount).toBe(2);

      const db = await openDatabase(schema({ stray }), postgres({ pool, schema: schemaName }));
      await Promise.all([
        db.insert(stray).values({ id: 1 }),
        db.transaction((tx) => tx.insert(stray).values({ id: 2 }).execute()),
      ]);
      const { rows } = await admin.query(
        'select table_schema from information_schema.tables where table_name = $1 and table_schema = any($2)',
        [stray.$name, [schemaName, 'public']],
      );
      expect(rows).toEqual([{ table_schema: schemaName }]);
      expect(await db.select().from(stray)).toHaveLength(2);
      await db.close();
    } finally {
      await pool.end();
      // Had the schema been ignored, the table would sit in public.
      await admin.query(`DROP TABLE IF EXISTS public."${stray.$name}"`);
    }
  });

  it('ends the pool it created, closing its connections on the server', async () => {
    const applicationName = `syncline_close_${process.pid}_${Date.now().toString(36)}`;
    const connections = async () => {
      const { rows } = await admin.query<{ n: number }>(
        'select count(*)::int as n from pg_stat_activity where application_name = $1',
        [applicationName],
      );
      return rows[0]!.n;
    };
    const db = await openDatabase(
      noteSchema,
      postgres({
        connectionString: databaseUrl,
        schema: schemaName,
        poolConfig: { application_name: applicationName },
      }),
    );
    // Hold a transaction while running another query, so the pool opens two connections.
    await db.transaction(async (tx) => {
      await tx.insert(notes).values({ id: 1, body: 'x' });
      await db.select().from(notes);
    });
    expect(await connections()).toBe(2);
    await db.close();
    // The server notices a closed connection a moment later.
    for (let i = 0; i < 50 && (await connections()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await connections()).toBe(0);
  });

  it('rejects postgres() without a connection string, a pool config or a pool', async () => {
    await expect(openDatabase(noteSchema, postgres({}))).rejects.toThrow(UsageError);
  });
});

dialectSuite('a closed database', (env) => {
  it('rejects queries after close() with a UsageError that says what to do', async () => {
    const db = await env.open(noteSchema);
    await db.insert(notes).values({ id: 1, body: 'x' });
    await db.close();

    const attempts: PromiseLike<unknown>[] = [
      db.select().from(notes),
      db.insert(notes).values({ id: 2, body: 'y' }),
      db.update(notes).set({ body: 'z' }).allRows(),
      db.delete(notes).allRows(),
      db.execute(sql`select 1`),
      db.transaction(async () => 'never'),
    ];
    for (const attempt of attempts) {
      await expect(attempt).rejects.toBeInstanceOf(UsageError);
      await expect(attempt).rejects.toThrow('this database is closed; open it again with openDatabase()');
    }
    // Closing again is harmless.
    await db.close();
  });

  it('rejects a prepared query run after close()', async () => {
    const db = await env.open(noteSchema);
    const all = db.select().from(notes).prepare();
    expect(await all.execute()).toEqual([]);
    await db.close();
    await expect(all.execute()).rejects.toThrow('this database is closed');
  });
});
