import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll } from 'vitest';
import { sqlite } from '../../src/drivers/better-sqlite3/index.js';
import { postgres } from '../../src/drivers/node-postgres/index.js';
import { pglite } from '../../src/drivers/pglite/index.js';
import type { Driver } from '../../src/index.js';
import type { TestDriver } from './drivers.js';

/**
 * One database that a test opens, closes and opens again, each time through a new driver (as an
 * app restarts): a file for better-sqlite3, a schema (namespace) for PGlite and PostgreSQL.
 */
export interface SameDatabase {
  /** A new, unopened driver on this database. */
  driver(): Driver;
  /** Where the database lives: the SQLite file, or the PostgreSQL schema name. */
  readonly location: string;
  /** Removes the database; close every driver first. */
  dispose(): Promise<void>;
}

let counter = 0;

// One PGlite per test file, shared by every sameDatabase() in it, each in a schema of its own.
let sharedPglite: PGlite | undefined;

/** A database to reopen on `driver`'s backend. @example const target = sameDatabase(env.driver) */
export function sameDatabase(driver: TestDriver): SameDatabase {
  const name = `same_${process.pid}_${Date.now().toString(36)}_${++counter}`;
  switch (driver.name) {
    case 'better-sqlite3': {
      const dir = mkdtempSync(join(tmpdir(), 'syncline-migrations-'));
      const path = join(dir, 'app.db');
      return {
        location: path,
        driver: () => sqlite({ path }),
        dispose: async () => rmSync(dir, { recursive: true, force: true }),
      };
    }
    case 'pglite': {
      sharedPglite ??= new PGlite();
      const instance = sharedPglite;
      return {
        location: name,
        driver: () => pglite({ instance, schema: name }),
        dispose: async () => {
          await instance.exec(`DROP SCHEMA IF EXISTS "${name}" CASCADE; SET search_path TO public`);
        },
      };
    }
    case 'sqlite-wasm':
      // In Node the WASM build is in memory only; reopening is tested on OPFS in test/browser.
      throw new Error('sameDatabase: SQLite WASM keeps a database across opens only in OPFS, in the browser');
    case 'postgres': {
      const connectionString = process.env.DATABASE_URL!;
      return {
        location: name,
        driver: () => postgres({ connectionString, schema: name }),
        dispose: async () => {
          const client = new pg.Client({ connectionString });
          await client.connect();
          try {
            await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
          } finally {
            await client.end();
          }
        },
      };
    }
  }
}

afterAll(async () => {
  await sharedPglite?.close();
  sharedPglite = undefined;
});
