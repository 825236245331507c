import type { Dialect } from '../dialect/dialect.js';
import { UsageError } from '../errors.js';
import { type MigrationOptions, runMigrations } from '../migrations/run-migrations.js';
import type { Schema } from '../schema/schema.js';
import type { Driver, DriverQuery, DriverResult, DriverSession } from './driver.js';
import { QueryScope } from './query-scope.js';
import { runTransaction, type Transaction } from './transaction.js';

type MaybePromise<T> = T | Promise<T>;

export interface OpenDatabaseOptions {
  /**
   * How the schema version is handled: by default a new database gets every table, and an older
   * one runs the schema's migration steps. `{ enabled: false }` leaves the database alone.
   */
  migrations?: MigrationOptions;
}

/**
 * A database opened on a driver, with the schema's tables ready. Queries run on any connection;
 * `transaction()` holds one connection until it ends.
 *
 * @example
 *   const db = await openDatabase(appSchema, sqlite({ path: 'app.db' }));
 *   const rows = await db.select().from(todos);
 *   await db.close();
 */
export class Database<TSchema extends Schema = Schema> extends QueryScope {
  readonly dialect: Dialect;
  private closed = false;

  constructor(
    readonly schema: TSchema,
    readonly driver: Driver,
  ) {
    super();
    this.dialect = driver.dialect;
  }

  protected runOnDriver(query: DriverQuery): MaybePromise<DriverResult> {
    if (this.closed) throw new UsageError('this database is closed; open it again with openDatabase()');
    return this.driver.query(query);
  }

  wrote(_table: string): void {
    // Table-change events and live queries build on this (see the live queries issue).
  }

  /**
   * Runs `fn` in a transaction: commits when it resolves, rolls back when it throws (and rethrows).
   * `tx.transaction()` inside nests a savepoint.
   */
  async transaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<R> {
    if (this.closed) throw new UsageError('this database is closed; open it again with openDatabase()');
    const session: DriverSession = await this.driver.acquire();
    let broken = false;
    try {
      const { result, written } = await runTransaction(session, this.dialect, fn, () => {
        broken = true;
      });
      for (const table of written) this.wrote(table);
      return result;
    } finally {
      session.release(broken);
    }
  }

  /** Closes the driver's connections. Queries after this fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.driver.close();
  }
}

/**
 * Opens a database on a driver and brings it to the schema's version: a new database gets every
 * table, index and constraint; an older one runs the schema's migration steps in order.
 *
 * @example
 *   const db = await openDatabase(appSchema, sqlite({ path: 'app.db' }));
 *   const server = await openDatabase(appSchema, postgres({ connectionString: process.env.DATABASE_URL }));
 */
export async function openDatabase<TSchema extends Schema>(
  schema: TSchema,
  driver: Driver,
  options: OpenDatabaseOptions = {},
): Promise<Database<TSchema>> {
  await driver.open();
  const db = new Database(schema, driver);
  if (options.migrations?.enabled !== false) {
    try {
      await runMigrations(db as Database, options.migrations);
    } catch (error) {
      await driver.close();
      throw error;
    }
  }
  return db;
}
