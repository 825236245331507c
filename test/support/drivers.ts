import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import { type DialectEnv, dialectSuiteOn, type TestDriver } from './dialect-suite.js';

export type { DialectEnv, TestDriver };

/**
 * The drivers every dialect test runs on in Node (drift's runAllTests, Kysely's per-dialect loops):
 * better-sqlite3 and PGlite always, a real PostgreSQL server when DATABASE_URL is set. SQLite WASM
 * runs the same suite in Chromium (test/browser/browser-drivers.ts).
 * Each `open()` gets a database of its own: a fresh in-memory SQLite, or a fresh PostgreSQL
 * schema (namespace) that is dropped afterwards, so test files can run in parallel.
 */

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

afterAll(async () => {
  await sharedPglite?.close();
  sharedPglite = undefined;
});

/**
 * Declares a describe block per driver (see `dialectSuiteOn`). Inside, `env.open(schema)` gives
 * an isolated database.
 *
 * @example
 *   dialectSuite('insert', (env) => {
 *     it('returns the row', async () => { const db = await env.open(appSchema); ... });
 *   });
 */
export function dialectSuite(title: string, body: (env: DialectEnv) => void, drivers = testDrivers): void {
  dialectSuiteOn(drivers, title, body);
}
