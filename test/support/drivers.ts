import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, afterEach, describe } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { type Database, type Driver, openDatabase, type Schema } from '../../src/index.js';

/**
 * The drivers every dialect test runs on (drift's runAllTests, Kysely's per-dialect loops):
 * better-sqlite3 and PGlite always, a real PostgreSQL server when DATABASE_URL is set.
 * Each `open()` gets a database of its own: a fresh in-memory SQLite, or a fresh PostgreSQL
 * schema (namespace) that is dropped afterwards, so test files can run in parallel.
 */
export interface TestDriver {
  readonly name: 'better-sqlite3' | 'pglite' | 'postgres';
  readonly dialect: 'sqlite' | 'postgres';
  /** A driver on a fresh, empty database, and how to throw it away after closing. */
  create(): { driver: Driver; dispose(): Promise<void> };
}

let schemaCounter = 0;
function uniqueSchemaName(): string {
  return `t_${process.pid}_${Date.now().toString(36)}_${++schemaCounter}`;
}

// One PGlite per test file (a fresh instance costs ~1.5 s); each open() works in its own schema.
let sharedPglite: PGlite | undefined;
function pgliteInstance(): PGlite {
  sharedPglite ??= new PGlite();
  return sharedPglite;
}

const databaseUrl = process.env.DATABASE_URL;

export const testDrivers: TestDriver[] = [
  {
    name: 'better-sqlite3',
    dialect: 'sqlite',
    create: () => ({ driver: sqlite(), dispose: async () => {} }),
  },
  {
    name: 'pglite',
    dialect: 'postgres',
    create: () => {
      const schema = uniqueSchemaName();
      const instance = pgliteInstance();
      return {
        driver: pglite({ instance, schema }),
        dispose: async () => {
          await instance.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; SET search_path TO public`);
        },
      };
    },
  },
  ...(databaseUrl
    ? [
        {
          name: 'postgres' as const,
          dialect: 'postgres' as const,
          create: () => {
            const schema = uniqueSchemaName();
            return {
              driver: postgres({ connectionString: databaseUrl, schema }),
              dispose: async () => {
                const client = new pg.Client({ connectionString: databaseUrl });
                await client.connect();
                try {
                  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
                } finally {
                  await client.end();
                }
              },
            };
          },
        },
      ]
    : []),
];

export interface DialectEnv {
  readonly driver: TestDriver;
  /** Opens the schema on a fresh database; closed and dropped after the test. */
  open<S extends Schema>(schema: S): Promise<Database<S>>;
  /** A fresh driver without opening it (for tests of open() itself); disposed after the test. */
  freshDriver(): Driver;
}

/**
 * Declares a describe block per driver. Inside, `env.open(schema)` gives an isolated database.
 *
 * @example
 *   dialectSuite('insert', (env) => {
 *     it('returns the row', async () => { const db = await env.open(appSchema); ... });
 *   });
 */
export function dialectSuite(title: string, body: (env: DialectEnv) => void, drivers = testDrivers): void {
  for (const driver of drivers) {
    describe(`${title} [${driver.name}]`, () => {
      const cleanups: (() => Promise<void>)[] = [];
      afterEach(async () => {
        while (cleanups.length > 0) await cleanups.pop()!();
      });
      body({
        driver,
        async open(schema) {
          const { driver: d, dispose } = driver.create();
          cleanups.push(dispose);
          const db = await openDatabase(schema, d);
          cleanups.push(() => db.close());
          return db;
        },
        freshDriver() {
          const { driver: d, dispose } = driver.create();
          cleanups.push(async () => {
            await d.close();
            await dispose();
          });
          return d;
        },
      });
    });
  }
}

afterAll(async () => {
  await sharedPglite?.close();
  sharedPglite = undefined;
});
