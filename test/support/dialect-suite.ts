import { afterEach, describe, it } from 'vitest';
import { type Database, type Driver, openDatabase, type Schema } from '../../src/index.js';

/**
 * A driver the dialect suite runs on: Node's list is in drivers.ts, the browser's in
 * test/browser/browser-drivers.ts. This file imports no driver, so it loads in both.
 */
export interface TestDriver {
  readonly name: 'better-sqlite3' | 'sqlite-wasm' | 'pglite' | 'postgres';
  readonly dialect: 'sqlite' | 'postgres';
  /** A driver on a fresh, empty database, and how to throw it away after closing. */
  create(): { driver: Driver; dispose(): Promise<void> };
}

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
 *   dialectSuiteOn(testDrivers, 'insert', (env) => {
 *     it('returns the row', async () => { const db = await env.open(appSchema); ... });
 *   });
 */
export function dialectSuiteOn(
  drivers: readonly TestDriver[],
  title: string,
  body: (env: DialectEnv) => void,
): void {
  if (drivers.length === 0) {
    // A file of no test at all fails the run ("No test suite found"): say what it needs instead.
    describe.skip(`${title} [needs a PostgreSQL server: set DATABASE_URL]`, () => {
      it('runs on the drivers it was given', () => {});
    });
  }
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
