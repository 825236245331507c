import { sqliteWasm } from '../../src/drivers/sqlite-wasm/index.js';
import { type DialectEnv, dialectSuiteOn, type TestDriver } from '../support/dialect-suite.js';

export type { DialectEnv, TestDriver };

/**
 * The drivers the dialect suite runs on in Chromium: SQLite WASM in its Web Worker, each database
 * fresh and in memory (opfs-storage.test.ts covers databases kept in OPFS).
 */
export const testDrivers: TestDriver[] = [
  {
    name: 'sqlite-wasm',
    dialect: 'sqlite',
    create: () => ({ driver: sqliteWasm(), dispose: async () => {} }),
  },
];

/**
 * The browser's `dialectSuite`: test/dialect files import '../support/drivers.js', which the
 * browser project's config points here.
 *
 * @example
 *   dialectSuite('insert', (env) => { ... });
 */
export function dialectSuite(title: string, body: (env: DialectEnv) => void, drivers = testDrivers): void {
  dialectSuiteOn(drivers, title, body);
}
